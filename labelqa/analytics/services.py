"""Writes driven by analytics: which batches reviewers should see first."""

from __future__ import annotations

from django.db import connection, transaction

from labelqa.analytics.selectors import DEFAULT_EDGES, cell_counts
from labelqa.analytics.stats import REVIEW_MARGIN, reviews_needed_for_margin
from labelqa.catalog.models import Dataset
from labelqa.catalog.services import chunks
from labelqa.review.models import Batch

PRIORITY_ROWS_PER_UPDATE = 1000


def batch_priorities_refresh(*, dataset_id: int) -> int:
    """Rank the dataset's open batches by how uncertain their class × bucket cells still are; return how many changed.

    A batch's priority is the mean, over its images, of the reviews its image's cell still needs to narrow the
    accuracy interval to ±5 points. With prioritisation off every priority is 0 and batches go in order.
    """
    dataset = Dataset.objects.get(pk=dataset_id)
    open_batches = Batch.objects.filter(dataset=dataset, reviews_done__lt=dataset.reviews_per_item)
    if not dataset.prioritise_uncertain:
        return open_batches.exclude(priority=0).update(priority=0)
    edges = DEFAULT_EDGES
    cells = [
        (label, edges[bucket], edges[bucket + 1], float(reviews_needed_for_margin(confirmed, reviewed, REVIEW_MARGIN)))
        for label, bucket, reviewed, confirmed in cell_counts(dataset, edges=edges)
    ]
    if not cells:
        return 0
    values = ", ".join(["(%s, %s, %s, %s)"] * len(cells))
    # Batches of images below the report's range keep the lowest priority (0).
    sql = f"""
        WITH cells(label, low, high, score) AS (VALUES {values}),
        ranked AS (
            SELECT p.batch_id, avg(cells.score) AS score
            FROM catalog_prediction p
            JOIN cells ON p.label = cells.label AND p.confidence >= cells.low
                AND (p.confidence < cells.high OR (cells.high = %s AND p.confidence <= cells.high))
            WHERE p.dataset_id = %s AND p.batch_id IS NOT NULL
            GROUP BY p.batch_id
        )
        SELECT b.id, coalesce(ranked.score, 0)
        FROM review_batch b LEFT JOIN ranked ON ranked.batch_id = b.id
        WHERE b.dataset_id = %s AND b.reviews_done < %s AND b.priority <> coalesce(ranked.score, 0)
    """
    params = [v for cell in cells for v in cell] + [edges[-1], dataset.pk, dataset.pk, dataset.reviews_per_item]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        changes = cursor.fetchall()
    # Read without locks, written in short transactions of changed rows only: leasing skips locked batches, so
    # one transaction over every open batch made reviewers' queues look empty for as long as the re-rank took.
    for part in chunks(changes, PRIORITY_ROWS_PER_UPDATE):
        _priorities_set(part)
    return len(changes)


def _priorities_set(priorities: list[tuple[int, float]]) -> None:
    values = ", ".join(["(%s, %s)"] * len(priorities))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"WITH v(id, priority) AS (VALUES {values}) "
            "UPDATE review_batch SET priority = v.priority FROM v WHERE review_batch.id = v.id",
            [x for pair in priorities for x in pair],
        )


def prioritisation_set(*, dataset: Dataset, enabled: bool) -> None:
    """Turn "prioritise uncertain buckets" on or off for a dataset and re-rank its batches now."""
    dataset.prioritise_uncertain = enabled
    dataset.save(update_fields=["prioritise_uncertain"])
    batch_priorities_refresh(dataset_id=dataset.pk)
