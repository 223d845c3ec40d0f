"""Celery tasks: thin, id-taking, idempotent shells over services. Only here are retry and ack settings."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from kombu.exceptions import OperationalError as BrokerUnreachable

from labelqa.analytics.services import batch_priorities_refresh
from labelqa.catalog.classification import classification_execute
from labelqa.catalog.deletion import dataset_files_delete
from labelqa.catalog.imports import import_job_execute
from labelqa.catalog.models import ClassificationRun, Dataset
from labelqa.catalog.services import thumbnails_make
from labelqa.catalog.storage import STORAGE_ERRORS
from labelqa.review.selectors import datasets_with_stale_tallies
from labelqa.review.services import tallies_refresh

logger = logging.getLogger(__name__)

# Re-ranking reads the dataset's whole report (about 0.7 s at a million predictions), so while reviewers keep
# submitting it runs at most once per this many seconds, after the votes that asked for it.
RERANK_DELAY_SECONDS = 10
# A classifier run whose dataset another run holds is sent again after this long.
RUN_TURN_RETRY_SECONDS = 30


# acks_late + reject_on_worker_lost: a worker killed mid-task leaves the message unacknowledged, so the broker
# hands it out again (after the visibility timeout on Redis); recomputing from votes makes the rerun harmless.
@shared_task(
    acks_late=True, reject_on_worker_lost=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5
)
def refresh_tallies(dataset_id: int) -> int:
    """Recompute the confirm/disconfirm tallies of a dataset's images whose votes changed; schedule a re-rank."""
    changed = tallies_refresh(dataset_id=dataset_id, wait=False)
    prioritised = Dataset.objects.filter(pk=dataset_id, prioritise_uncertain=True).exists()
    if prioritised and _first_in_rerank_window(dataset_id):
        rerank_batches.apply_async((dataset_id,), countdown=RERANK_DELAY_SECONDS)
    return changed


def _first_in_rerank_window(dataset_id: int) -> bool:
    """Whether this refresh is the first of its window, so schedules the re-rank (cache.add is atomic)."""
    try:
        return cache.add(f"rerank-scheduled:{dataset_id}", True, RERANK_DELAY_SECONDS)
    except Exception as exc:  # noqa: BLE001 - each cache backend raises its own errors
        # The tallies are counted; the order of batches waits for a refresh with the cache back.
        logger.warning("Cache unreachable, re-rank of dataset %s not scheduled: %s", dataset_id, exc)
        return False


@shared_task(
    acks_late=True, reject_on_worker_lost=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5
)
def rerank_batches(dataset_id: int) -> int:
    """Re-rank a dataset's open batches by the uncertainty of their cells (a no-op reset when switched off)."""
    return batch_priorities_refresh(dataset_id=dataset_id)


def enqueue(task, *args, consequence: str) -> bool:
    """Send `task(*args)`; when the broker cannot be reached, log it with its `consequence` and return False.

    Callers enqueue after their own writes have committed, so a dead broker never loses those writes and never
    turns a saved vote or upload into a 500. Without a broker the task runs inside delay(); its failure is logged
    here, not raised: the caller's work is in, and the task records or logs its own outcome.
    """
    try:
        task.delay(*args)
    except BrokerUnreachable as exc:
        logger.warning("Could not queue %s%r (broker unreachable: %s); %s", task.name, args, exc, consequence)
        return False
    except Exception:
        if not task.app.conf.task_always_eager:
            raise
        logger.exception("%s%r failed, run in-process (no broker)", task.name, args)
    return True


def refresh_tallies_enqueue(dataset_id: int) -> bool:
    """Queue a tally refresh for the dataset; False when the broker is unreachable.

    The caller's votes are already committed and their images stay marked stale, so nothing is lost:
    the next enqueue for the dataset, `sweep_stale_tallies` or `recompute_aggregates` counts them.
    """
    return enqueue(
        refresh_tallies,
        dataset_id,
        consequence="the votes are saved and their tallies stay marked stale until a sweep or the next vote "
        "recounts them.",
    )


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(DatabaseError,), retry_backoff=True)
def sweep_stale_tallies() -> int:
    """Recount every dataset that has stale tallies (periodic, from celery beat); return how many images changed."""
    return sum(refresh_tallies(dataset_id) for dataset_id in datasets_with_stale_tallies())


# Routed to the `gpu` queue (settings.CELERY_TASK_ROUTES); a killed worker's run is redelivered and resumes.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def classify_run(run_id: int) -> None:
    """Classify the images of a run that have no prediction yet; while another run has its dataset, wait queued."""
    eager = classify_run.app.conf.task_always_eager  # no other worker to take the run up later: wait in place
    run = classification_execute(run_id, wait_turn=eager)
    if run.status == ClassificationRun.Status.QUEUED:
        # Not holding a GPU worker, nor spending this task's time limit, while the other run goes on.
        classify_run.apply_async((run_id,), countdown=RUN_TURN_RETRY_SECONDS)


# Thumbnails are a cache: a killed worker's task is redelivered and skips the images already done.
@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(DatabaseError,), retry_backoff=True)
def thumbnails_run(dataset_id: int, flagged_again: bool = False, after: int = 0) -> int:
    """Make the thumbnails of a slice of a dataset's new images, flag those that cannot be shown, queue the rest.

    `flagged_again` checks the flagged images too. Without a broker (tasks run in-process) only the first slice is
    made here; the grid makes the rest on view.
    """
    limit = settings.LABELQA_THUMBNAILS_PER_TASK
    result = thumbnails_make(dataset_id=dataset_id, limit=limit, flagged_again=flagged_again, after=after)
    if result.more and not thumbnails_run.app.conf.task_always_eager:
        enqueue(
            thumbnails_run,
            dataset_id,
            flagged_again,
            result.last,
            consequence="the rest are made when the grid first shows them.",
        )
    return result.made + result.flagged


# Deleting what is already gone deletes nothing, so a redelivered or retried task is harmless.
@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=STORAGE_ERRORS, retry_backoff=True)
def dataset_files_delete_run(dataset_id: int) -> int:
    """Delete the cached thumbnails and zoom renditions of a dataset that was deleted."""
    return dataset_files_delete(dataset_id=dataset_id)


# Not retried: the import is one transaction, so a failure leaves nothing behind and is recorded on the job; a
# redelivered message finds the job claimed and does nothing.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3600 + 300)
def import_job_run(job_id: int) -> None:
    """Import the file of an upload job, all or nothing, writing its progress as it goes."""
    import_job_execute(job_id)
