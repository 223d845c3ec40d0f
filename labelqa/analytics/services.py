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
    if not dataset.prioritise_uncertain:
        open_batches = Batch.objects.filter(dataset=dataset, reviews_done__lt=dataset.reviews_per_item)
        return _priorities_write(
            dataset, [(pk, 0.0) for pk in open_batches.exclude(priority=0).values_list("pk", flat=True)]
        )
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
        return _priorities_write(dataset, cursor.fetchall())


def _priorities_write(dataset: Dataset, priorities: list[tuple[int, float]]) -> int:
    """Write (batch id, priority) pairs read without locks, in short transactions; return how many there were.

    Leasing skips locked batches, so one transaction over every open batch made reviewers' queues look empty for
    as long as the re-rank took. Each part is written only while the switch is still as it was when the pairs were
    read: a re-rank that began before the switch went off must not leave its priorities behind the reset.
    """
    for part in chunks(priorities, PRIORITY_ROWS_PER_UPDATE):
        values = ", ".join(["(%s, %s)"] * len(part))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"WITH v(id, priority) AS (VALUES {values}) "
                "UPDATE review_batch SET priority = v.priority FROM v WHERE review_batch.id = v.id "
                "AND EXISTS (SELECT 1 FROM catalog_dataset d WHERE d.id = %s AND d.prioritise_uncertain = %s)",
                [*(x for pair in part for x in pair), dataset.pk, dataset.prioritise_uncertain],
            )
    return len(priorities)


def prioritisation_set(*, dataset: Dataset, enabled: bool) -> None:
    """Turn "prioritise uncertain buckets" on or off for a dataset and re-rank its batches now."""
    dataset.prioritise_uncertain = enabled
    dataset.save(update_fields=["prioritise_uncertain"])
    batch_priorities_refresh(dataset_id=dataset.pk)
