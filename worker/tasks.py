"""Celery tasks: thin, id-taking, idempotent shells over services. Only here are retry and ack settings."""

from celery import shared_task
from django.db import DatabaseError

from labelqa.analytics.services import batch_priorities_refresh
from labelqa.catalog.classification import classification_execute
from labelqa.catalog.imports import import_job_execute
from labelqa.catalog.models import Dataset
from labelqa.review.services import tallies_refresh


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def refresh_tallies(dataset_id: int) -> int:
    """Recompute the confirm/disconfirm tallies of a dataset's images whose votes changed, then re-rank batches."""
    changed = tallies_refresh(dataset_id=dataset_id)
    if Dataset.objects.filter(pk=dataset_id, prioritise_uncertain=True).exists():
        batch_priorities_refresh(dataset_id=dataset_id)
    return changed


# Routed to the `gpu` queue (settings.CELERY_TASK_ROUTES); a killed worker's run is redelivered and resumes.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def classify_run(run_id: int) -> None:
    """Classify the images of a run that have no prediction yet."""
    classification_execute(run_id)


# Not retried: the import is one transaction, so a failure leaves nothing behind and is recorded on the job; a
# redelivered message finds the job claimed and does nothing.
@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3600 + 300)
def import_job_run(job_id: int) -> None:
    """Import the file of an upload job, all or nothing, writing its progress as it goes."""
    import_job_execute(job_id)
