"""Reads of the review flow."""

from __future__ import annotations

from django.db.models import Count, F, Q
from django.utils import timezone

from labelqa.catalog.models import Dataset, Prediction
from labelqa.review.models import Batch, Lease


def datasets_with_work(reviewer) -> list[dict]:
    """Return each dataset with batches this reviewer could still get, with counts per label."""
    done_by_me = Lease.objects.filter(reviewer=reviewer, submitted_at__isnull=False).values("batch_id")
    open_batches = (
        Batch.objects.filter(reviews_done__lt=F("dataset__reviews_per_item"))
        .exclude(pk__in=done_by_me)
        .values("dataset_id", "label")
        .annotate(batches=Count("id"))
        .order_by("label")
    )
    labels: dict[int, list] = {}
    for row in open_batches:
        labels.setdefault(row["dataset_id"], []).append(row)
    datasets = Dataset.objects.filter(pk__in=labels).order_by("name")
    return [
        {"dataset": d, "labels": labels[d.pk], "batches": sum(r["batches"] for r in labels[d.pk])} for d in datasets
    ]


def batch_for_reviewer(batch_id: int, reviewer) -> tuple[Batch, Lease | None] | None:
    """Return the batch with the reviewer's lease on it (None when they hold none), or None if no such batch."""
    batch = Batch.objects.select_related("dataset").filter(pk=batch_id).first()
    if batch is None:
        return None
    lease = Lease.objects.filter(batch=batch, reviewer=reviewer).first()
    return batch, lease


def batch_items(batch: Batch, reviewer) -> list[dict]:
    """Return the batch's images in a stable order, with this reviewer's earlier verdict where there is one."""
    items = (
        Prediction.objects.filter(batch=batch)
        .select_related("image")
        .order_by("id")
        .annotate(
            my_confirms=Count("votes", filter=Q(votes__reviewer=reviewer, votes__confirm=True)),
            my_votes=Count("votes", filter=Q(votes__reviewer=reviewer)),
        )
    )
    return [
        {
            "prediction": p,
            "image": p.image,
            "checked": p.my_votes == 0 or p.my_confirms > 0,
        }
        for p in items
    ]


def reviewer_progress(reviewer, dataset: Dataset) -> dict:
    """Return how many batches of the dataset this reviewer submitted and how many remain open to them."""
    submitted = Lease.objects.filter(reviewer=reviewer, batch__dataset=dataset, submitted_at__isnull=False).count()
    # Remaining includes the batch on screen: only submitted batches are behind the reviewer.
    remaining = (
        Batch.objects.filter(dataset=dataset, reviews_done__lt=F("dataset__reviews_per_item"))
        .exclude(pk__in=Lease.objects.filter(reviewer=reviewer, submitted_at__isnull=False).values("batch_id"))
        .count()
    )
    return {"submitted": submitted, "remaining": remaining, "now": timezone.now()}


def previous_batch_id(reviewer, *, exclude: int) -> int | None:
    """Return the batch this reviewer submitted last (other than `exclude`), to go back and change votes."""
    return (
        Lease.objects.filter(reviewer=reviewer, submitted_at__isnull=False)
        .exclude(batch_id=exclude)
        .order_by("-submitted_at")
        .values_list("batch_id", flat=True)
        .first()
    )


def likely_next_images(batch: Batch, reviewer) -> list[int]:
    """Return image ids of the batch this reviewer will most likely get next, so the page can prefetch them.

    A guess without locking (leasing decides), cheap enough to make on every grid.
    """
    done_by_me = Lease.objects.filter(reviewer=reviewer).values("batch_id")
    upcoming = (
        Batch.objects.filter(dataset_id=batch.dataset_id, reviews_done__lt=batch.dataset.reviews_per_item)
        .exclude(pk=batch.pk)
        .exclude(pk__in=done_by_me)
        .order_by("-priority", "reviews_done", "id")
        .values_list("id", flat=True)
        .first()
    )
    if upcoming is None:
        return []
    return list(Prediction.objects.filter(batch_id=upcoming).values_list("image_id", flat=True))
