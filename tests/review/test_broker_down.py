"""Redis stopped: reviewers keep working (votes are saved in PostgreSQL), aggregation catches up when it returns.

Runs its own redis-server on a free port (never the shared one), gunicorn and a `celery worker` with beat.
"""

import time

import pytest

from labelqa.catalog.models import ClassificationRun, ImportJob, Prediction
from labelqa.catalog.services import QUEUE_DOWN
from labelqa.review.models import Vote
from tests.live import (
    free_port,
    http_login,
    http_open_batch,
    live_env,
    output_of,
    start_celery_worker,
    start_gunicorn,
    start_redis,
    stop,
    wait_until,
)

# What a submit may take with the broker gone, on a 2-core machine shared with other jobs: the request's own
# work plus one refused connection and one 0.1 s retry (measured here: 0.06-0.25 s).
SUBMIT_BUDGET_S = 1.0


def submit(session, url: str, ids: list[int], lease: str) -> float:
    """Post the batch with its first image unchecked; return the seconds it took."""
    started = time.monotonic()
    response = session.post(
        url,
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"], "lease": lease, "confirm": ids[1:]},
        allow_redirects=False,
        timeout=30,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 302 and response.headers["Location"].startswith("/review/next/")
    return elapsed


def tallies_match_votes(ids: list[int]) -> bool:
    tallies = Prediction.objects.filter(pk__in=ids, tally_stale=False).values_list("pk", "confirms", "disconfirms")
    return len(tallies) == len(ids) and all((c, d) == ((0, 1) if pk == ids[0] else (1, 0)) for pk, c, d in tallies)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_votes_are_saved_while_redis_is_down_and_tallies_catch_up_when_it_returns(pets, reviewer, tmp_path):
    port = free_port()
    env = live_env(f"redis://127.0.0.1:{port}/0", LABELQA_TALLY_SWEEP_SECONDS="1")
    redis = start_redis(port, tmp_path / "redis.log")
    server, base = start_gunicorn(env, tmp_path / "gunicorn.log")
    worker = None
    try:
        session = http_login(base, reviewer.username)
        stop(redis)  # the broker dies while the site is up

        voted, seconds = [], []
        for _ in range(2):
            url, ids, lease = http_open_batch(session, base)
            seconds.append(submit(session, url, ids, lease))
            voted.append(ids)
        assert max(seconds) < SUBMIT_BUDGET_S, f"submits took {seconds} s with the broker down"
        assert Vote.objects.filter(prediction_id__in=sum(voted, [])).count() == sum(map(len, voted))
        assert Prediction.objects.filter(tally_stale=True).count() == sum(map(len, voted)), "tallies wait"
        assert "broker unreachable" in output_of(server)

        # Redis comes back (empty: it keeps nothing on disk); the worker's beat sweep counts the stale rows.
        redis = start_redis(port, tmp_path / "redis-again.log")
        worker = start_celery_worker(env, tmp_path / "worker.log", "--beat", "--schedule", str(tmp_path / "beat"))
        for ids in voted:
            wait_until(lambda ids=ids: tallies_match_votes(ids), timeout=60, what="the sweep", process=worker)

        # The web process publishes again on its first try after the outage (its pooled connection was stale).
        url, ids, lease = http_open_batch(session, base)
        assert submit(session, url, ids, lease) < SUBMIT_BUDGET_S
        wait_until(lambda: tallies_match_votes(ids), timeout=60, what="the refresh after the outage", process=worker)
        assert output_of(server).count("broker unreachable") == 2, "only the two submits during the outage failed"
    finally:
        stop(worker)
        stop(server)
        stop(redis)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_an_upload_and_a_classifier_run_fail_clearly_while_redis_is_down(admin_user, tmp_path):
    media = tmp_path / "media"
    env = live_env(f"redis://127.0.0.1:{free_port()}/0", LABELQA_STORAGE="local", LABELQA_MEDIA_ROOT=str(media))
    server, base = start_gunicorn(env, tmp_path / "gunicorn.log")  # no Redis at all
    try:
        session = http_login(base, admin_user.username)
        session.get(f"{base}/datasets/")
        form = {"csrfmiddlewaretoken": session.cookies["csrftoken"], "dataset": "down"}
        started = time.monotonic()
        page = session.post(
            f"{base}/datasets/",
            data={**form, "file_format": "auto", "confidence_scale": "auto", "images_root": str(tmp_path)},
            files={"file": ("p.csv", b"cat-1.jpg,Cat,91\ncat-2.jpg,Cat,97\n", "text/csv")},
            timeout=30,
        )
        assert time.monotonic() - started < SUBMIT_BUDGET_S * 2
        assert page.status_code == 200 and "/datasets/imports/" in page.url
        job = ImportJob.objects.get()
        assert (job.status, job.errors) == (ImportJob.Status.FAILED, [QUEUE_DOWN])
        assert "could not be reached" in page.text
        assert "failed: nothing was imported (1 problem)</p>" in page.text, "no advice to fix lines of the file"
        assert not Prediction.objects.exists()
        assert not [p for p in media.rglob("*") if p.is_file()], "the stored upload is not left behind"

        page = session.post(f"{base}/datasets/classify/", data={**form, "source": str(tmp_path)}, timeout=30)
        assert page.status_code == 200 and "/datasets/runs/" in page.url
        run = ClassificationRun.objects.get()
        assert (run.status, run.error) == (ClassificationRun.Status.FAILED, QUEUE_DOWN)
        assert "could not be reached" in page.text
        assert output_of(server).count("broker unreachable") == 2
    finally:
        stop(server)
