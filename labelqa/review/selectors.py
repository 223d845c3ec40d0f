"""Reads of the review flow."""

from __future__ import annotations

from collections import defaultdict
from statistics import median

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from labelqa.analytics.agreement import fleiss_kappa
from labelqa.analytics.consensus import dawid_skene
from labelqa.catalog.models import Consensus, Dataset, Prediction
from labelqa.review.models import Batch, Lease, ReviewerExclusion, Vote


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
    return {"submitted": submitted, "remaining": remaining}


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


def excluded_reviewers(dataset: Dataset | int) -> QuerySet:
    """Return the ids (as a values queryset) of reviewers whose votes on the dataset are left out of aggregation."""
    dataset_id = dataset if isinstance(dataset, int) else dataset.pk
    return ReviewerExclusion.objects.filter(dataset_id=dataset_id).values("reviewer_id")


def aggregated_votes(dataset: Dataset | int) -> QuerySet:
    """Return the dataset's votes that count towards tallies and consensus: those of non-excluded reviewers."""
    dataset_id = dataset if isinstance(dataset, int) else dataset.pk
    excluded = excluded_reviewers(dataset_id)
    return Vote.objects.filter(prediction__dataset_id=dataset_id).exclude(reviewer_id__in=excluded)


def stale_tally_count(dataset: Dataset | int) -> int:
    """Return how many of the dataset's images have votes that the aggregation worker has not counted yet."""
    dataset_id = dataset if isinstance(dataset, int) else dataset.pk
    return Prediction.objects.filter(dataset_id=dataset_id, tally_stale=True).count()


def datasets_with_stale_tallies() -> list[int]:
    """Return the ids of datasets holding images whose tallies wait for a recount."""
    stale = Prediction.objects.filter(dataset=OuterRef("pk"), tally_stale=True)
    return list(Dataset.objects.filter(Exists(stale)).order_by("pk").values_list("pk", flat=True))


def reviewer_quality(dataset: Dataset) -> list[dict]:
    """Return, per reviewer who voted on the dataset, their workload, speed, agreement and estimated reliability.

    Agreement is the share of their votes that match the item's status under the dataset's policy (majority
    for Dawid–Skene datasets), over items that are confirmed or disconfirmed; it reads the tallies, so call
    `tallies_refresh` first. Reliability is Dawid–Skene's accuracy over all the dataset's votes, excluded
    reviewers' too, so an excluded reviewer can be judged for inclusion again.
    """
    votes = Vote.objects.filter(prediction__dataset=dataset)
    confirmed, disconfirmed = _decided_filters(dataset.consensus)
    rows = (
        votes.values("reviewer_id", "reviewer__username")
        .annotate(
            votes=Count("id"),
            decided=Count("id", filter=confirmed | disconfirmed),
            agreed=Count("id", filter=(confirmed & Q(confirm=True)) | (disconfirmed & Q(confirm=False))),
        )
        .order_by("reviewer__username")
    )
    durations: dict[int, list[float]] = defaultdict(list)
    leases = Lease.objects.filter(batch__dataset=dataset, submitted_at__isnull=False)
    for reviewer_id, created, submitted in leases.values_list("reviewer_id", "created_at", "submitted_at"):
        durations[reviewer_id].append((submitted - created).total_seconds())
    reliability = dawid_skene(
        list(votes.values_list("prediction_id", "reviewer_id", "confirm").iterator())
    ).reviewer_accuracy
    excluded = set(excluded_reviewers(dataset).values_list("reviewer_id", flat=True))
    return [
        {
            "reviewer_id": row["reviewer_id"],
            "username": row["reviewer__username"],
            "votes": row["votes"],
            "batches": len(durations[row["reviewer_id"]]),
            "median_seconds": median(durations[row["reviewer_id"]]) if durations[row["reviewer_id"]] else None,
            "agreement": row["agreed"] / row["decided"] if row["decided"] else None,
            "reliability": reliability.get(row["reviewer_id"]),
            "excluded": row["reviewer_id"] in excluded,
        }
        for row in rows
    ]


def _decided_filters(policy: str) -> tuple[Q, Q]:
    """Conditions on a vote's image for confirmed and disconfirmed under unanimous or majority."""
    c, d = F("prediction__confirms"), F("prediction__disconfirms")
    if policy == Consensus.UNANIMOUS:
        return Q(prediction__confirms__gt=0, prediction__disconfirms=0), Q(
            prediction__disconfirms__gt=0, prediction__confirms=0
        )
    return Q(prediction__confirms__gt=d), Q(prediction__disconfirms__gt=c)


def dataset_agreement(dataset: Dataset) -> dict:
    """Return Fleiss' kappa over the dataset's images with two or more counted votes, and how many there are."""
    groups = (
        Prediction.objects.filter(dataset=dataset)
        .alias(n=F("confirms") + F("disconfirms"))
        .filter(n__gte=2)
        .values_list("confirms", "disconfirms")
        .annotate(items=Count("id"))
        .order_by()
    )
    counts = [(c, d) for c, d, items in groups for _ in range(items)]
    return {"kappa": fleiss_kappa(counts), "items": len(counts)}
