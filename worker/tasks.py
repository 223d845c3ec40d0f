"""Celery tasks: thin, id-taking, idempotent shells over services. Only here are retry and ack settings."""
from celery import shared_task
from django.db import DatabaseError

from labelqa.review.services import tallies_refresh


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def refresh_tallies(dataset_id: int) -> int:
    """Recompute the confirm/disconfirm tallies of a dataset's images whose votes changed."""
    return tallies_refresh(dataset_id=dataset_id)
