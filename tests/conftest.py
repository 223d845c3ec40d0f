"""Fixtures shared by the whole suite: the three roles and a small dataset (as healthchecks' hc/test.py does)."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.files.storage import FileSystemStorage
from django.db import connection

from labelqa import roles
from labelqa.catalog.services import predictions_import
from labelqa.celery import app as celery_app

PASSWORD = "correct-horse-battery-staple"
ROOT = Path(__file__).resolve().parents[1]


def make_user(username: str, role: str | None):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    if role:
        roles.grant_role(user, role)
    return user


@pytest.fixture
def reviewer(db):
    return make_user("alice", roles.REVIEWER)


@pytest.fixture
def reviewer2(db):
    return make_user("bob", roles.REVIEWER)


@pytest.fixture
def scientist(db):
    return make_user("carol", roles.SCIENTIST)


@pytest.fixture
def admin_user(db):
    return make_user("dave", roles.ADMIN)


def seed_csv(counts: dict[str, int], confidence=lambda label, i: 80 + (i * 7) % 20) -> bytes:
    """Return a headerless seed-format CSV with `counts[label]` images per label."""
    lines = []
    for label, n in counts.items():
        for i in range(n):
            lines.append(f"images/{label.lower()}-{i:04d}.jpg,{label},{confidence(label, i):.4f}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def pets(db, tmp_path):
    """A dataset of 30 Dog, 10 Cat and 26 Fox predictions (2, 1 and 2 batches of 25)."""
    predictions_import(
        dataset_name="pets",
        stream=io.BytesIO(seed_csv({"Dog": 30, "Cat": 10, "Fox": 26})),
        images_root=str(tmp_path),
    )
    from labelqa.catalog.models import Dataset

    return Dataset.objects.get(name="pets")


@pytest.fixture
def eager_celery(settings):
    """Run tasks in this process even when make test points Celery at Redis (no gpu worker runs in tests)."""
    # Read before the setting changes: Celery's conf reads Django settings lazily, so reading it afterwards would
    # give True and leave every later test (live workers included) running tasks in-process.
    previous = celery_app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def media_root(settings, tmp_path):
    """Keep stored files (thumbnails, uploads) under the test's tmp dir instead of var/media."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": f"{FileSystemStorage.__module__}.{FileSystemStorage.__qualname__}",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    return tmp_path / "media"


@pytest.fixture
def live_worker(media_root):
    """Start a `celery worker` process on the test database and the test's media root; stop it after the test."""
    assert not django_settings.CELERY_TASK_ALWAYS_EAGER, "a live worker needs CELERY_BROKER_URL (make test sets it)"
    assert connection.vendor == "postgresql", "a live worker needs DATABASE_URL to be PostgreSQL"
    celery_app.control.purge()  # tasks left by other tests point at rows that no longer exist
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "LABELQA_STORAGE": "local",
        "LABELQA_MEDIA_ROOT": str(media_root),
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
