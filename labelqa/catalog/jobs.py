"""Claiming background jobs: one worker runs a job, and a job a killed worker left running is taken up again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.utils import timezone

from labelqa.catalog.models import BackgroundJob, ClassificationRun, ImportJob

# First key of each kind's advisory locks (the second is the job id), so they meet no other lock of ours.
LOCK_NAMESPACES: dict[type[BackgroundJob], int] = {ImportJob: 0x6C71, ClassificationRun: 0x6C72}  # "lq", "lr"
DATASET_RUNS_NAMESPACE = 0x6C73  # "ls": the second key is a dataset id


@contextmanager
def job_claimed(model: type[BackgroundJob], job_id: int) -> Iterator[bool]:
    """Claim the job for this worker and yield whether it did; the claim lasts until the block ends.

    A conditional update lets exactly one worker take a queued job, so a redelivered or duplicate task does nothing.
    On PostgreSQL the worker also holds an advisory lock on the job meanwhile: a job still `running` whose lock is
    free was left by a killed worker (the lock went with its connection) and is taken again; one whose lock is held
    belongs to a live worker. Without advisory locks (SQLite) only queued jobs are claimed.
    """
    key = (LOCK_NAMESPACES[model], job_id)
    holder = None
    if connection.vendor == "postgresql":
        holder = _advisory_lock(key, wait=False)
        if holder is None:
            yield False
            return
    try:
        claimable = [model.Status.QUEUED] + ([model.Status.RUNNING] if holder is not None else [])
        claimed = model.objects.filter(pk=job_id, status__in=claimable).update(
            status=model.Status.RUNNING, started_at=timezone.now()
        )
        yield claimed == 1
    finally:
        _advisory_unlock(key, holder)


@contextmanager
def dataset_turn(dataset_id: int, *, wait: bool) -> Iterator[bool]:
    """Take the dataset's turn for a classifier run and yield True, or yield False when another run has it.

    Two runs on one dataset at once (a form sent twice, two GPU workers) would compute the same images to do and
    the slower would fail on the first image the other saved; one after the other, the second finds them done.
    `wait` waits for the turn instead. Without advisory locks (SQLite, one process) the turn is always free.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = (DATASET_RUNS_NAMESPACE, dataset_id)
    holder = _advisory_lock(key, wait=wait)
    try:
        yield holder is not None
    finally:
        _advisory_unlock(key, holder)


def connection_reopened_if_lost() -> None:
    """Close this thread's database connection if it died, so that the next query opens a new one.

    A job that failed because its connection was dropped (a terminated backend, a failover) would otherwise record
    its failure on the dead connection, fail again, and stay `running` with no worker to finish it.
    """
    if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
        connection.close()


def _advisory_lock(key: tuple[int, int], *, wait: bool) -> object | None:
    """Take a session-level advisory lock; return the connection that holds it, or None when another holds it."""
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s::int, %s::int)", key)
        else:
            cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", key)
            if not cursor.fetchone()[0]:
                return None
    return connection.connection


def _advisory_unlock(key: tuple[int, int], holder: object | None) -> None:
    # A lock went with its connection when that died or was closed since: there is nothing to release.
    if holder is not None and connection.connection is holder and connection.is_usable():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", key)
