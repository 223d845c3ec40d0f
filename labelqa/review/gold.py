"""Writes about gold items: marking known answers, importing them, and mixing them into leased batches."""

from __future__ import annotations

import math
import random
from typing import IO

from django.db import transaction

from labelqa.analytics.correction_agreement import HIDDEN_MARK, tidy_label
from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.rows import ErrorList, read_gold_rows
from labelqa.catalog.services import dataset_for_import, predictions_of_rows
from labelqa.review.gold_selectors import gold_candidates
from labelqa.review.models import GoldItem, Lease, LeasedGold

# The grid's keyboard has 25 keys (1-0, Q-P, A-G) and DESIGN.md promises grids of at most 25 images.
MAX_GRID_IMAGES = 25


def truth_as_the_model_writes(truth: str, label: str) -> str:
    """Return the true label, spelt as the model's label when they differ only in case ("cat" for "Cat").

    Told apart, the two would make a gold item whose reviewers must disconfirm their own class.
    """
    return label if truth.casefold() == label.casefold() else truth


@transaction.atomic
def gold_mark(*, prediction: Prediction, expect_confirm: bool, truth: str = "", by=None) -> GoldItem:
    """Make the prediction a gold item (or change its answer): a reviewer who is right gives `expect_confirm`.

    `truth` is the true class when known; it must agree with the verdict (confirm exactly when it is the
    model's label). Under the dataset's row lock, as imports and a dataset's deletion take it.
    """
    if not Dataset.objects.select_for_update().filter(pk=prediction.dataset_id).exists():
        raise ValueError(f"the image {prediction.pk} is no longer in review: its dataset was deleted")
    truth = truth_as_the_model_writes(tidy_label(truth), prediction.label)
    if HIDDEN_MARK.search(truth):
        raise ValueError(f"the true label {truth!r} holds a control character or text-direction mark; type it plainly")
    if truth and (truth == prediction.label) != expect_confirm:
        verdict = "confirm" if truth == prediction.label else "disconfirm"
        raise ValueError(
            f"the true label {truth!r} means reviewers should {verdict} the model's label {prediction.label!r}"
        )
    if not truth:  # marked again with the same verdict and no truth (an admin action, an empty field): keep the known
        known = GoldItem.objects.filter(prediction=prediction, expect_confirm=expect_confirm).first()
        truth = known.truth if known is not None else ""
    answer = {"expect_confirm": expect_confirm, "truth": truth}
    gold, _ = GoldItem.objects.update_or_create(
        prediction=prediction, defaults=answer, create_defaults={**answer, "created_by": by}
    )
    return gold


@transaction.atomic
def gold_unmark(*, prediction: Prediction) -> bool:
    """Make the prediction an ordinary one again; return False when it was not gold.

    Where it was already shown as gold stays recorded, so nobody is shown it again should it become gold again.
    """
    deleted, _ = GoldItem.objects.filter(prediction=prediction).delete()
    return bool(deleted)


@transaction.atomic
def gold_import(*, dataset_name: str, stream: IO[bytes], by=None) -> int:
    """Mark the images of a CSV `image,truth` as gold, all or nothing; return how many rows were imported.

    The expected verdict is confirm when the truth is the model's label and disconfirm otherwise. An image that
    is gold already gets the file's truth.
    """
    dataset = dataset_for_import(dataset_name)
    errors = ErrorList()
    rows = list(read_gold_rows(stream, errors))
    prediction_of = predictions_of_rows(dataset, rows, errors)
    last_row_of = {prediction_of[row.image].pk: row for row in rows}  # an image named twice: its last row counts
    items = []
    for row in last_row_of.values():
        prediction = prediction_of[row.image]
        truth = truth_as_the_model_writes(row.truth, prediction.label)
        items.append(
            GoldItem(prediction=prediction, truth=truth, expect_confirm=truth == prediction.label, created_by=by)
        )
    # One upsert: an image that is gold already gets the file's truth and keeps when and by whom it was marked.
    GoldItem.objects.bulk_create(
        items,
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["prediction"],
        update_fields=["truth", "expect_confirm"],
    )
    return len(rows)


@transaction.atomic
def gold_rate_set(*, dataset: Dataset, rate: float) -> Dataset:
    """Set the share of each review grid given to gold items; raise ValidationError for a rate out of range."""
    dataset.gold_rate = rate
    dataset.full_clean(validate_unique=False, validate_constraints=False)
    dataset.save(update_fields=["gold_rate"])
    return dataset


def gold_count_for(batch_images: int, rate: float, draw: float) -> int:
    """Return how many gold images to add to a batch so that they are `rate` of the grid, on average.

    `draw` (uniform in [0, 1)) rounds the fractional part up with its probability, so small batches and low
    rates still average out to the rate; the grid's 25 places cap it.
    """
    if rate <= 0 or batch_images <= 0:
        return 0
    expected = _gold_for_rate(batch_images, rate)
    count = math.floor(expected) + (1 if draw < expected - math.floor(expected) else 0)
    return max(0, min(count, MAX_GRID_IMAGES - batch_images))


def _gold_for_rate(batch_images: int, rate: float) -> float:
    """The gold images beside a batch that make them `rate` of its grid, before the grid's 25 places cap them."""
    return rate / (1 - rate) * batch_images


def gold_share(batch_images: int, rate: float) -> float:
    """Return the share of a grid that gold fills, on average, beside a batch of `batch_images` at `rate`.

    Below the rate when the grid's 25 places leave too little room beside the batch.
    """
    if rate <= 0 or batch_images <= 0:
        return 0.0
    gold = min(_gold_for_rate(batch_images, rate), max(MAX_GRID_IMAGES - batch_images, 0))
    return gold / (batch_images + gold)


def gold_attach(*, lease: Lease, dataset: Dataset) -> None:
    """Mix gold items of the batch's label into a new lease at the dataset's rate.

    Called inside the leasing transaction. Two tabs of one reviewer leasing at once may pick the same item:
    the unique constraint keeps it on one lease only.
    """
    if dataset.gold_rate <= 0:
        return
    batch_images = Prediction.objects.filter(batch_id=lease.batch_id).count()
    wanted = gold_count_for(batch_images, dataset.gold_rate, random.random())
    if wanted == 0:
        return
    ids = gold_candidates(reviewer=lease.reviewer, dataset=dataset, label=lease.batch.label)[:wanted]
    LeasedGold.objects.bulk_create(
        [LeasedGold(lease=lease, prediction_id=pid, reviewer_id=lease.reviewer_id) for pid in ids],
        ignore_conflicts=True,
    )
