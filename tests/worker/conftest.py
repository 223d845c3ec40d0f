"""Fixtures for tests that run real `celery worker` processes."""

import pytest
from django.conf import settings

from labelqa.celery import app
from tests.live import live_env, start_celery_worker, stop


@pytest.fixture
def start_worker(tmp_path):
    """Start `celery worker` processes on the test database and the suite's broker; stop them after the test.

    Keyword arguments become environment variables of the worker (e.g. a short visibility timeout).
    """
    assert not settings.CELERY_TASK_ALWAYS_EAGER, "live worker tests need CELERY_BROKER_URL (make test sets it)"
    assert not app.conf.task_always_eager, "an earlier test left Celery eager: tasks would never reach the worker"
    app.control.purge()  # tasks left by other tests point at rows that no longer exist
    workers = []

    def start(**env):
        log = tmp_path / f"worker-{len(workers)}.log"
        workers.append(start_celery_worker(live_env(settings.CELERY_BROKER_URL, **env), log))
        return workers[-1]

    yield start
    for worker in workers:
        stop(worker)


@pytest.fixture
def live_worker(start_worker):
    return start_worker()
