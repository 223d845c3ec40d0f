"""A real `celery worker` process, fed through Redis, writes its effect into the test database."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from labelqa.catalog.models import Prediction
from labelqa.celery import app
from labelqa.review.services import batch_lease, votes_submit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_worker():
    """Start a worker on the test database; stop it after the test."""
    assert not settings.CELERY_TASK_ALWAYS_EAGER, "the live worker test needs CELERY_BROKER_URL (make test sets it)"
    assert connection.vendor == "postgresql", "the live worker test needs DATABASE_URL to be PostgreSQL"
    app.control.purge()  # tasks left by other tests point at rows that no longer exist
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "labelqa",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_recomputes_tallies_after_votes_are_submitted(pets, reviewer, live_worker):
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    ids = list(Prediction.objects.filter(batch_id=lease.batch_id).values_list("id", flat=True))
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids[1:]))

    deadline = time.monotonic() + 60
    while Prediction.objects.filter(pk__in=ids, tally_stale=True).exists():
        assert live_worker.poll() is None, live_worker.stdout.read().decode()
        assert time.monotonic() < deadline, "the worker did not recompute the tallies within 60 s"
        time.sleep(0.2)
    tallies = dict(Prediction.objects.filter(pk__in=ids).values_list("id", "confirms"))
    assert tallies[ids[0]] == 0
    assert all(tallies[i] == 1 for i in ids[1:])
    assert Prediction.objects.get(pk=ids[0]).disconfirms == 1
