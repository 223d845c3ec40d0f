"""Claiming background jobs: one worker runs a job, and a job a killed worker left running is taken up again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.utils import timezone

from labelqa.catalog.models import BackgroundJob, ClassificationRun, ImportJob

# First key of each kind's advisory locks (the second is the job id), so they meet no other lock of ours.
LOCK_NAMESPACES: dict[type[BackgroundJob], int] = {ImportJob: 0x6C71, ClassificationRun: 0x6C72}  # "lq", "lr"


@contextmanager
def job_claimed(model: type[BackgroundJob], job_id: int) -> Iterator[bool]:
    """Claim the job for this worker and yield whether it did; the claim lasts until the block ends.

    A conditional update lets exactly one worker take a queued job, so a redelivered or duplicate task does nothing.
    On PostgreSQL the worker also holds an advisory lock on the job meanwhile: a job still `running` whose lock is
    free was left by a killed worker (the lock went with its connection) and is taken again; one whose lock is held
    belongs to a live worker. Without advisory locks (SQLite) only queued jobs are claimed.
    """
    key = [LOCK_NAMESPACES[model], job_id]
    locked = False
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", key)
            locked = cursor.fetchone()[0]
        if not locked:
            yield False
            return
    try:
        claimable = [model.Status.QUEUED] + ([model.Status.RUNNING] if locked else [])
        claimed = model.objects.filter(pk=job_id, status__in=claimable).update(
            status=model.Status.RUNNING, started_at=timezone.now()
        )
        yield claimed == 1
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", key)
