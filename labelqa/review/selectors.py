"""Reads of the review flow."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from statistics import median
from typing import TypeVar

from django.core.cache import cache
from django.db.models import Case, Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery, When
from django.utils import timezone

from labelqa.analytics.agreement import fleiss_kappa
from labelqa.analytics.consensus import dawid_skene
from labelqa.catalog.models import Consensus, Dataset, Prediction
from labelqa.review.gold_selectors import grid_order, grid_predictions
from labelqa.review.models import Batch, Lease, ReviewerExclusion, Vote

T = TypeVar("T")
logger = logging.getLogger("labelqa")


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


def batch_items(lease: Lease) -> list[dict]:
    """Return the images of the lease's grid, with this reviewer's earlier verdict where there is one.

    The batch's images come in a stable order; gold items mixed into the lease sit among them at positions fixed
    per lease, marked up exactly like the others.
    """
    items = (
        grid_predictions(lease)
        .select_related("image")
        .annotate(
            my_confirms=Count("votes", filter=Q(votes__reviewer_id=lease.reviewer_id, votes__confirm=True)),
            my_votes=Count("votes", filter=Q(votes__reviewer_id=lease.reviewer_id)),
        )
    )
    return [
        {
            "prediction": p,
            "image": p.image,
            # An unusable image takes no vote: nobody can see it, so it is never pre-confirmed.
            "checked": not p.image.unusable and (p.my_votes == 0 or p.my_confirms > 0),
        }
        for p in grid_order(list(items), lease)
    ]


# Counting every open batch of a million-image dataset costs more than the rest of the grid; past this many,
# the grid says "over N left" instead of an exact figure.
REMAINING_COUNT_CAP = 1000


def reviewer_progress(reviewer, dataset: Dataset) -> dict:
    """Return how many batches of the dataset this reviewer submitted and how many remain open to them.

    `remaining` is exact up to REMAINING_COUNT_CAP; `more` says there are more than that.
    """
    submitted_by_me = Lease.objects.filter(reviewer=reviewer, submitted_at__isnull=False)
    submitted = submitted_by_me.filter(batch__dataset=dataset).count()
    # Remaining includes the batch on screen: only submitted batches are behind the reviewer.
    open_to_me = Batch.objects.filter(dataset=dataset, reviews_done__lt=dataset.reviews_per_item).exclude(
        pk__in=submitted_by_me.values("batch_id")
    )
    remaining = open_to_me[: REMAINING_COUNT_CAP + 1].count()
    more = remaining > REMAINING_COUNT_CAP
    return {"submitted": submitted, "remaining": min(remaining, REMAINING_COUNT_CAP), "more": more}


def _submitted_latest_first(reviewer) -> QuerySet:
    return Lease.objects.filter(reviewer=reviewer, submitted_at__isnull=False).order_by("-submitted_at")


def previous_batch_id(reviewer, *, exclude: int) -> int | None:
    """Return the batch this reviewer submitted last (other than `exclude`), to go back and change votes."""
    return _submitted_latest_first(reviewer).exclude(batch_id=exclude).values_list("batch_id", flat=True).first()


def last_submitted_batch(reviewer) -> Batch | None:
    """Return the batch this reviewer submitted last, with its dataset: the end of the queue offers it again."""
    lease = _submitted_latest_first(reviewer).select_related("batch__dataset").first()
    return lease.batch if lease else None


def live_leases_of_others(reviewer, now) -> QuerySet:
    """Unsubmitted, unexpired leases held by other reviewers: slots that are taken but not yet done."""
    return Lease.objects.filter(submitted_at__isnull=True, expires_at__gt=now).exclude(reviewer=reviewer)


def batches_on_others_grids(reviewer, *, dataset: Dataset | None, label: str | None, now) -> dict:
    """Return how many unfinished batches of the queue other reviewers' open grids hold, and when the first lease ends.

    Asked once leasing found nothing for the reviewer: the queue is then not done, only taken, while this is not 0.
    `count` is exact up to REMAINING_COUNT_CAP (`more` says there are more).
    """
    done_by_me = Lease.objects.filter(reviewer=reviewer, submitted_at__isnull=False).values("batch_id")
    others = live_leases_of_others(reviewer, now)
    waiting = Batch.objects.filter(
        reviews_done__lt=F("dataset__reviews_per_item"), pk__in=others.values("batch_id")
    ).exclude(pk__in=done_by_me)
    if dataset is not None:
        waiting = waiting.filter(dataset=dataset)
    if label:
        waiting = waiting.filter(label=label)
    count = waiting[: REMAINING_COUNT_CAP + 1].count()
    frees_at = others.filter(batch__in=waiting).aggregate(first=Min("expires_at"))["first"] if count else None
    return {"count": min(count, REMAINING_COUNT_CAP), "more": count > REMAINING_COUNT_CAP, "frees_at": frees_at}


def batches_open_to(reviewer, dataset: Dataset, now) -> QuerySet:
    """Return the dataset's unfinished batches this reviewer may be given, in leasing order.

    Left out: batches they finished or hold right now (another of their tabs may be mid-submit). Leasing adds the
    count of other reviewers' live leases under a row lock; the prefetch guess takes the first as it is.
    """
    mine = Lease.objects.filter(Q(submitted_at__isnull=False) | Q(expires_at__gt=now), reviewer=reviewer)
    return (
        Batch.objects.filter(dataset=dataset, reviews_done__lt=dataset.reviews_per_item)
        .exclude(pk__in=mine.values("batch_id"))
        .order_by("-priority", "reviews_done", "id")
    )


def likely_next_images(batch: Batch, reviewer) -> list[int]:
    """Return image ids of the batch this reviewer will most likely get next, so the page can prefetch them.

    A guess without locking (leasing decides), cheap enough to make on every grid.
    """
    upcoming = batches_open_to(reviewer, batch.dataset, timezone.now()).exclude(pk=batch.pk).values("id")[:1]
    return list(Prediction.objects.filter(batch_id=Subquery(upcoming)).values_list("image_id", flat=True))


# Dawid–Skene over a large dataset's votes takes seconds; pages that need it keep its result this long at most.
VOTES_CACHE_SECONDS = 600


def computed_from_votes(votes: QuerySet, name: str, compute: Callable[[list[tuple]], T]) -> T:
    """Return `compute` of the (prediction_id, reviewer_id, confirm) rows of `votes`, cached while they are unchanged.

    The key holds a fingerprint of the votes (count, last id, last change), so any new or changed vote computes
    it afresh; `name` must say what else the result depends on (the dataset, and exclusions where they matter).
    """
    fingerprint = votes.aggregate(n=Count("id"), last_id=Max("id"), last_change=Max("updated_at"))
    last_change = fingerprint["last_change"].timestamp() if fingerprint["last_change"] else 0
    key = f"{name}:{fingerprint['n']}:{fingerprint['last_id']}:{last_change}"
    # The cache only saves time: with a shared one down (Redis), the pages compute afresh rather than fail.
    try:
        result = cache.get(key)
    except Exception as exc:  # noqa: BLE001 - each cache backend raises its own errors
        logger.warning("Cache unreachable, computing %s afresh: %s", name, exc)
        result = None
    if result is None:
        result = compute(list(votes.values_list("prediction_id", "reviewer_id", "confirm").iterator(chunk_size=20000)))
        try:
            cache.set(key, result, VOTES_CACHE_SECONDS)
        except Exception:  # noqa: BLE001 - as above, already logged on the read
            pass
    return result


def excluded_reviewers(dataset: Dataset | int) -> QuerySet:
    """Return the ids (as a values queryset) of reviewers whose votes on the dataset are left out of aggregation."""
    dataset_id = dataset if isinstance(dataset, int) else dataset.pk
    return ReviewerExclusion.objects.filter(dataset_id=dataset_id).values("reviewer_id")


def aggregated_votes(dataset: Dataset) -> QuerySet:
    """Return the dataset's votes that count towards tallies and consensus: those of non-excluded reviewers."""
    excluded = excluded_reviewers(dataset.pk)
    return Vote.objects.filter(prediction__dataset_id=dataset.pk).exclude(reviewer_id__in=excluded)


def datasets_with_stale_tallies() -> list[int]:
    """Return the ids of datasets holding images whose tallies wait for a recount."""
    stale = Prediction.objects.filter(dataset=OuterRef("pk"), tally_stale=True)
    return list(Dataset.objects.filter(Exists(stale)).order_by("pk").values_list("pk", flat=True))


def reviewer_quality(dataset: Dataset) -> list[dict]:
    """Return, per reviewer who voted on the dataset, their workload, speed, agreement and estimated reliability.

    Agreement is the share of their votes that match what the *other* counted reviewers of the same image
    decided under the dataset's policy (majority for Dawid–Skene datasets), over images where the others did
    decide: a reviewer's own vote never agrees with itself, and with one review per image there is nothing to
    agree with. It reads the tallies, so call `tallies_refresh` first. Reliability is Dawid–Skene's accuracy
    over all the dataset's votes, excluded reviewers' too, so an excluded reviewer can be judged for inclusion
    again; it is None for a reviewer who shares no image with a counted reviewer.
    """
    votes = Vote.objects.filter(prediction__dataset=dataset)
    excluded = set(excluded_reviewers(dataset).values_list("reviewer_id", flat=True))
    confirmed, disconfirmed = _others_decided_filters(dataset.consensus)
    rows = (
        votes.values("reviewer_id", "reviewer__username")
        .alias(**_others_tallies(excluded))
        .annotate(
            votes=Count("id"),
            decided=Count("id", filter=confirmed | disconfirmed),
            agreed=Count("id", filter=(confirmed & Q(confirm=True)) | (disconfirmed & Q(confirm=False))),
            shared=Count("id", filter=Q(others_confirms__gt=0) | Q(others_disconfirms__gt=0)),
        )
        .order_by("reviewer__username")
    )
    durations: dict[int, list[float]] = defaultdict(list)
    leases = Lease.objects.filter(batch__dataset=dataset, submitted_at__isnull=False)
    for reviewer_id, created, submitted in leases.values_list("reviewer_id", "created_at", "submitted_at"):
        durations[reviewer_id].append((submitted - created).total_seconds())
    reliability = computed_from_votes(
        votes, f"reliability:{dataset.pk}", lambda rows: dawid_skene(rows).reviewer_accuracy
    )
    return [
        {
            "reviewer_id": row["reviewer_id"],
            "username": row["reviewer__username"],
            "votes": row["votes"],
            "batches": len(durations[row["reviewer_id"]]),
            "median_seconds": median(durations[row["reviewer_id"]]) if durations[row["reviewer_id"]] else None,
            "agreement": row["agreed"] / row["decided"] if row["decided"] else None,
            # With no image shared with another reviewer, Dawid–Skene's figure would be its prior, not evidence.
            "reliability": reliability.get(row["reviewer_id"]) if row["shared"] else None,
            "excluded": row["reviewer_id"] in excluded,
        }
        for row in rows
    ]


def _others_tallies(excluded: set[int]) -> dict:
    """A vote's image tallies without that vote: the other counted reviewers' confirms and disconfirms."""
    counted = ~Q(reviewer_id__in=excluded)
    return {
        "others_confirms": F("prediction__confirms") - Case(When(counted & Q(confirm=True), then=1), default=0),
        "others_disconfirms": F("prediction__disconfirms") - Case(When(counted & Q(confirm=False), then=1), default=0),
    }


def _others_decided_filters(policy: str) -> tuple[Q, Q]:
    """Conditions for "the other reviewers confirmed" and "… disconfirmed"; Dawid–Skene as the tally's majority."""
    policy = Consensus.MAJORITY if policy == Consensus.DAWID_SKENE else policy
    filters = tally_status_filters(policy, confirms="others_confirms", disconfirms="others_disconfirms")
    return filters["confirmed"], filters["disconfirmed"]


def tally_status_filters(policy: str, *, confirms: str = "confirms", disconfirms: str = "disconfirms") -> dict[str, Q]:
    """Conditions on a tally for reviewed, confirmed, disconfirmed and split under unanimous or majority.

    `confirms` and `disconfirms` name the counts: an image's own, or an annotation such as the other reviewers'.
    """
    c, d = F(confirms), F(disconfirms)
    if policy == Consensus.UNANIMOUS:
        confirmed = Q(**{f"{confirms}__gt": 0, disconfirms: 0})
        disconfirmed = Q(**{f"{disconfirms}__gt": 0, confirms: 0})
    elif policy == Consensus.MAJORITY:
        confirmed = Q(**{f"{confirms}__gt": d})
        disconfirmed = Q(**{f"{disconfirms}__gt": c})
    else:
        raise ValueError(f"policy {policy!r} is not computed from tallies")
    reviewed = Q(**{f"{confirms}__gt": 0}) | Q(**{f"{disconfirms}__gt": 0})
    split = reviewed & ~confirmed & ~disconfirmed
    return {"reviewed": reviewed, "confirmed": confirmed, "disconfirmed": disconfirmed, "split": split}


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
    groups = list(groups)
    kappa = fleiss_kappa([(c, d) for c, d, _ in groups], weights=[items for *_, items in groups])
    return {"kappa": kappa, "items": sum(items for *_, items in groups)}
