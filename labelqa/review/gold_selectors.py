"""Reads about gold items: what a lease's grid shows, and how each reviewer does on known answers."""

from __future__ import annotations

import random

from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Value

from labelqa.analytics.stats import wilson_interval
from labelqa.catalog.models import Dataset, Prediction
from labelqa.review.models import GoldItem, Lease, LeasedGold, Vote


def grid_predictions(lease: Lease) -> QuerySet:
    """Return the predictions on the lease's grid: its batch's and the gold items mixed into it.

    A batch image this reviewer was already shown as gold on another lease is left out, so that nobody sees a
    gold item twice (its earlier answer stands). `mixed_gold` marks the gold items this lease added.
    """
    # The lease's gold ids are read first: as a subquery inside the OR they would hide both arms from the
    # indexes, and PostgreSQL would scan every prediction of every dataset (200 ms at a million).
    gold_ids = list(LeasedGold.objects.filter(lease_id=lease.pk).values_list("prediction_id", flat=True))
    shown_elsewhere = LeasedGold.objects.filter(reviewer_id=lease.reviewer_id).exclude(lease_id=lease.pk)
    own = Q(batch_id=lease.batch_id) & ~Q(pk__in=shown_elsewhere.values("prediction_id"))
    is_gold = Q(pk__in=gold_ids)
    return Prediction.objects.filter(own | is_gold if gold_ids else own).annotate(
        mixed_gold=ExpressionWrapper(is_gold, output_field=BooleanField()) if gold_ids else Value(False)
    )


def grid_prediction_ids(lease: Lease) -> list[int]:
    """Return the ids of the predictions the lease's grid takes votes for: all it shows but unusable images."""
    return list(grid_predictions(lease).filter(image__unusable=False).values_list("id", flat=True))


def grid_order(items: list, lease: Lease) -> list:
    """Return the grid's predictions (from `grid_predictions`) in id order with the lease's gold items
    (`mixed_gold`) at random, per-lease stable positions.

    Seeding with the lease token keeps the layout (and so each image's key) the same across reloads.
    """
    own = sorted((i for i in items if not i.mixed_gold), key=lambda i: i.pk)
    gold = sorted((i for i in items if i.mixed_gold), key=lambda i: i.pk)
    rng = random.Random(lease.token.int)
    positions = set(rng.sample(range(len(items)), len(gold)))
    gold_iter, own_iter = iter(gold), iter(own)
    return [next(gold_iter) if index in positions else next(own_iter) for index in range(len(items))]


def gold_candidates(*, reviewer, dataset: Dataset, label: str) -> QuerySet:
    """Return the ids of the dataset's gold items of `label` this reviewer has never met, in random order.

    Met: voted on, shown as gold before, or in a batch they have held (they may be looking at it right now).
    """
    item = OuterRef("prediction_id")
    return (
        GoldItem.objects.filter(prediction__dataset=dataset, prediction__label=label)
        .exclude(Exists(Vote.objects.filter(reviewer=reviewer, prediction_id=item)))
        .exclude(Exists(LeasedGold.objects.filter(reviewer=reviewer, prediction_id=item)))
        .exclude(Exists(Lease.objects.filter(reviewer=reviewer, batch_id=OuterRef("prediction__batch_id"))))
        .order_by("?")
        .values_list("prediction_id", flat=True)
    )


def _graded_votes(dataset: Dataset) -> QuerySet:
    """Votes on the dataset's gold items cast after the item became gold.

    Earlier votes are not graded: an admin often marks an item because of them (the analytics strip shows the
    images reviewers disconfirmed), so grading them would reward exactly the answers that chose the item.
    """
    return Vote.objects.filter(
        prediction__dataset=dataset,
        prediction__gold__isnull=False,
        created_at__gte=F("prediction__gold__created_at"),
    )


def _accuracy(answered: int, correct: int) -> dict:
    return {
        "answered": answered,
        "correct": correct,
        "accuracy": correct / answered if answered else None,
        "ci95": wilson_interval(correct, answered),
    }


def _graded_counts(votes: QuerySet, key: str) -> dict:
    rows = (
        votes.values(key)
        .annotate(answered=Count("id"), correct=Count("id", filter=Q(confirm=F("prediction__gold__expect_confirm"))))
        .order_by()
    )
    return {row[key]: _accuracy(row["answered"], row["correct"]) for row in rows}


def gold_accuracy(dataset: Dataset) -> dict[int, dict]:
    """Return {reviewer id: answered, correct, accuracy, ci95 (Wilson 95%)} over their graded gold answers."""
    return _graded_counts(_graded_votes(dataset), "reviewer_id")


def gold_items(dataset: Dataset, *, limit: int) -> tuple[list[dict], int]:
    """Return the dataset's gold items (most recent first, at most `limit`), each with how reviewers did on it,
    and how many there are in all."""
    everything = GoldItem.objects.filter(prediction__dataset=dataset)
    shown = list(everything.select_related("prediction__image", "created_by").order_by("-created_at", "-pk")[:limit])
    graded = _graded_votes(dataset).filter(prediction_id__in=[g.prediction_id for g in shown])
    by_item = _graded_counts(graded, "prediction_id")
    return [{"gold": g, **by_item.get(g.prediction_id, _accuracy(0, 0))} for g in shown], everything.count()


def with_gold_accuracy(rows: list[dict], dataset: Dataset) -> list[dict]:
    """Return reviewer rows (each with `reviewer_id`) with their gold accuracy added as `gold`."""
    accuracy = gold_accuracy(dataset)
    return [{**row, "gold": accuracy.get(row["reviewer_id"], _accuracy(0, 0))} for row in rows]
