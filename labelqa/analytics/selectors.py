"""Reads for analytics: the database aggregates, the pure core (stats, consensus, report) assembles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db.models import Case, Count, F, IntegerField, Q, When
from django.db.models.functions import Floor

from labelqa.analytics.consensus import dawid_skene, dawid_skene_status
from labelqa.analytics.report import build_report
from labelqa.analytics.stats import bucket_index, validate_edges
from labelqa.catalog.models import Consensus, Dataset, Prediction
from labelqa.review.models import Vote
from labelqa.review.services import tallies_refresh

DEFAULT_EDGES = (80, 85, 90, 95, 100)
DEFAULT_MAX_ERROR_RATIO = 0.1
# Certified thresholds are searched on a 0.01-percent grid: finer than any bucket, and it bounds the work.
LEVEL_RESOLUTION = 100


def _bucket_expression(edges: Sequence[float]) -> Case:
    """SQL for the bucket index of `confidence`: [edges[i], edges[i+1]), the last bucket closed on the right."""
    return Case(
        *(When(confidence__gte=edges[i], then=i) for i in range(len(edges) - 2, -1, -1)),
        output_field=IntegerField(),
    )


def _status_counts(policy: str) -> dict:
    """Aggregates counting reviewed/confirmed/disconfirmed/split images from their tallies under `policy`."""
    c, d = F("confirms"), F("disconfirms")
    if policy == Consensus.UNANIMOUS:
        confirmed = Q(confirms__gt=0, disconfirms=0)
        disconfirmed = Q(disconfirms__gt=0, confirms=0)
    elif policy == Consensus.MAJORITY:
        confirmed = Q(confirms__gt=d)
        disconfirmed = Q(disconfirms__gt=c)
    else:
        raise ValueError(f"policy {policy!r} is not computed from tallies")
    reviewed = Q(confirms__gt=0) | Q(disconfirms__gt=0)
    split = reviewed & ~confirmed & ~disconfirmed
    return {
        "total": Count("id"),
        "reviewed": Count("id", filter=reviewed),
        "confirmed": Count("id", filter=confirmed),
        "disconfirmed": Count("id", filter=disconfirmed),
        "split": Count("id", filter=split),
    }


def report_for_dataset(
    dataset: Dataset,
    *,
    edges: Sequence[float] = DEFAULT_EDGES,
    max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO,
    consensus: str | None = None,
) -> dict:
    """Return the threshold report of DESIGN.md ("Report semantics") for a dataset."""
    edges = validate_edges(edges)
    consensus = consensus or dataset.consensus
    if consensus not in Consensus.values:
        raise ValueError(f"consensus must be one of {', '.join(Consensus.values)}, not {consensus!r}")
    # Votes are saved synchronously; tallies catch up here if a worker has not got to them yet.
    tallies_refresh(dataset_id=dataset.pk)
    in_range = Prediction.objects.filter(dataset=dataset, confidence__gte=edges[0], confidence__lte=edges[-1])
    if consensus == Consensus.DAWID_SKENE:
        cells, levels = _dawid_skene_cells(dataset, in_range, edges)
    else:
        cells, levels = _tally_cells(in_range, edges, consensus)
    return build_report(
        dataset=dataset.name,
        edges=edges,
        max_error_ratio=max_error_ratio,
        consensus=consensus,
        cells=cells,
        levels_by_label=levels,
    )


def _tally_cells(in_range, edges, policy):
    counts = _status_counts(policy)
    cells = (
        in_range.annotate(bucket=_bucket_expression(edges))
        .values("label", "bucket")
        .annotate(**counts)
        .values_list("label", "bucket", "total", "reviewed", "confirmed", "disconfirmed", "split")
        .order_by()
    )
    level_rows = (
        in_range.annotate(level=Floor(F("confidence") * LEVEL_RESOLUTION))
        .values("label", "level")
        .annotate(total=counts["total"], reviewed=counts["reviewed"], confirmed=counts["confirmed"])
        .values_list("label", "level", "total", "reviewed", "confirmed")
        .order_by()
    )
    levels = defaultdict(list)
    for label, level, total, reviewed, confirmed in level_rows:
        levels[label].append((level / LEVEL_RESOLUTION, total, reviewed, reviewed - confirmed))
    return list(cells), dict(levels)


def _dawid_skene_cells(dataset, in_range, edges):
    """Cells under Dawid–Skene: statuses come from posteriors over all of the dataset's votes."""
    votes = Vote.objects.filter(prediction__dataset=dataset).values_list("prediction_id", "reviewer_id", "confirm")
    result = dawid_skene(list(votes.iterator(chunk_size=20000)))
    status_of = {pid: dawid_skene_status(p) for pid, p in result.item_posterior.items()}
    cells: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    levels_acc: dict[tuple[str, float], list[int]] = defaultdict(lambda: [0, 0, 0])
    for pid, label, confidence in in_range.values_list("id", "label", "confidence").iterator(chunk_size=20000):
        status = status_of.get(pid)
        cell = cells[(label, bucket_index(confidence, edges))]
        level = levels_acc[(label, int(confidence * LEVEL_RESOLUTION) / LEVEL_RESOLUTION)]
        cell[0] += 1
        level[0] += 1
        if status is not None:
            cell[1] += 1
            level[1] += 1
            cell[2 if status == "confirmed" else 3] += 1
            level[2] += status != "confirmed"
    levels = defaultdict(list)
    for (label, level), (total, reviewed, incorrect) in levels_acc.items():
        levels[label].append((level, total, reviewed, incorrect))
    return [(label, b, *counts) for (label, b), counts in cells.items()], dict(levels)
