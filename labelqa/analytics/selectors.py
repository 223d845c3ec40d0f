"""Reads for analytics: the database aggregates, the pure core (stats, consensus, report) assembles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from django.db import connections, transaction
from django.db.models import Avg, Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Floor, Least

from labelqa.analytics.consensus import dawid_skene, dawid_skene_status
from labelqa.analytics.report import build_report
from labelqa.analytics.stats import bucket_index, calibration, threshold_curve, validate_edges
from labelqa.catalog.models import Consensus, Dataset, Prediction
from labelqa.review.selectors import aggregated_votes, computed_from_votes, excluded_reviewers, tally_status_filters
from labelqa.review.services import tallies_refresh

DEFAULT_EDGES = (80, 85, 90, 95, 100)
DEFAULT_MAX_ERROR_RATIO = 0.1
DEFAULT_CALIBRATION_BINS = 10
# Certified thresholds are searched on a 0.01-percent grid: finer than any bucket, and it bounds the work.
LEVEL_RESOLUTION = 100
# Added before a confidence is floored to its level: 80.10 is stored as 80.09999999999999 and times 100 would floor to
# 8009, a level below its own. Far above float error, far below the 0.01 step.
LEVEL_SLACK = 1e-6
# Enough for the hash of (class, bucket, level) groups of a few hundred classes; more spills to disk, still correct.
AGGREGATE_WORK_MEM = "64MB"


def _bucket_expression(edges: Sequence[float]) -> Case:
    """SQL for the bucket index of `confidence`: [edges[i], edges[i+1]), the last bucket closed on the right."""
    return Case(
        *(When(confidence__gte=edges[i], then=i) for i in range(len(edges) - 2, -1, -1)),
        output_field=IntegerField(),
    )


def _status_counts(policy: str) -> dict:
    """Aggregates counting reviewed/confirmed/disconfirmed/split images from their tallies under `policy`."""
    return {"total": Count("id"), **{name: Count("id", filter=q) for name, q in tally_status_filters(policy).items()}}


def report_for_dataset(
    dataset: Dataset,
    *,
    edges: Sequence[float] = DEFAULT_EDGES,
    max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO,
    consensus: str | None = None,
) -> dict:
    """Return the threshold report of DESIGN.md ("Report semantics") for a dataset."""
    return _report(dataset, edges, max_error_ratio, consensus)[0]


def _report(
    dataset: Dataset, edges: Sequence[float], max_error_ratio: float, consensus: str | None, label: str | None = None
) -> tuple[dict, dict[str, list]]:
    """Return the report (of one class when `label` is given) and the confidence levels it was built from."""
    edges = validate_edges(edges)
    consensus = _checked_consensus(dataset, consensus)
    # Votes are saved synchronously; tallies catch up here if a worker has not got to them yet.
    tallies_refresh(dataset_id=dataset.pk)
    predictions = _in_range(dataset, edges)
    if label is not None:
        predictions = predictions.filter(label=label)
    cells, levels = _cells_and_levels(dataset, predictions, edges, consensus)
    report = build_report(
        dataset=dataset.name,
        edges=edges,
        max_error_ratio=max_error_ratio,
        consensus=consensus,
        cells=cells,
        levels_by_label=levels,
    )
    return report, levels


def cell_counts(dataset: Dataset, *, edges: Sequence[float] = DEFAULT_EDGES) -> list[tuple[str, int, int, int]]:
    """Return (label, bucket index, reviewed, confirmed) of each non-empty class × bucket under the dataset's policy.

    The counts of `report_for_dataset`'s buckets, from one GROUP BY (label, bucket): what re-ranking batches needs,
    without the per-level groups and certified thresholds the report builds.
    """
    edges = validate_edges(edges)
    tallies_refresh(dataset_id=dataset.pk)
    in_range = _in_range(dataset, edges)
    if dataset.consensus == Consensus.DAWID_SKENE:
        cells, _levels = _dawid_skene_cells(dataset, in_range, edges)
    else:
        cells = (
            in_range.annotate(bucket=_bucket_expression(edges))
            .values("label", "bucket")
            .annotate(**_status_counts(dataset.consensus))
            .values_list("label", "bucket", "total", "reviewed", "confirmed")
            .order_by()
        )
    return [(label, bucket, reviewed, confirmed) for label, bucket, _total, reviewed, confirmed, *_ in cells]


def class_detail(
    dataset: Dataset,
    label: str,
    *,
    edges: Sequence[float] = DEFAULT_EDGES,
    max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO,
    consensus: str | None = None,
) -> dict | None:
    """Return one class's report entry and its threshold curve, or None when no prediction in range has the label.

    The entry is the class's row of `report_for_dataset` with the same parameters; the curve is
    `stats.threshold_curve` over the class's levels: (t, reviewed at or above t, upper error bound).
    """
    report, levels = _report(dataset, edges, max_error_ratio, consensus, label)
    if not report["classes"]:
        return None
    return {
        "dataset": dataset.name,
        "edges": report["edges"],
        "max_error_ratio": max_error_ratio,
        "consensus": report["consensus"],
        "entry": report["classes"][0],
        "curve": threshold_curve(levels.get(label, ())),
    }


def calibration_for_dataset(
    dataset: Dataset, *, label: str | None = None, consensus: str | None = None, n_bins: int = DEFAULT_CALIBRATION_BINS
) -> dict:
    """Return `stats.calibration` of the reviewed predictions (of one class, or all) with the policy and counts.

    "Correct" means confirmed under the consensus policy; splits count as wrong, as in the report.
    Under unanimous and majority the database groups the predictions by (bin, correct), so the
    work in Python is per bin, not per prediction.
    """
    consensus = _checked_consensus(dataset, consensus)
    tallies_refresh(dataset_id=dataset.pk)
    predictions = Prediction.objects.filter(dataset=dataset)
    if label is not None:
        predictions = predictions.filter(label=label)
    if consensus == Consensus.DAWID_SKENE:
        confidences, correct = _dawid_skene_outcomes(dataset, predictions)
    else:
        confidences, correct = _tally_outcomes(predictions, consensus, n_bins)
    table = calibration(confidences, correct, n_bins=n_bins)
    return {"label": label, "consensus": consensus, "reviewed": len(confidences), **table}


def disconfirmed_predictions(dataset: Dataset, label: str, *, consensus: str | None = None) -> QuerySet:
    """Return the class's disconfirmed predictions, most confident first, with their image and batch."""
    disconfirmed = disconfirmed_filter(_checked_consensus(dataset, consensus))
    return (
        Prediction.objects.filter(disconfirmed, dataset=dataset, label=label)
        .select_related("image", "batch", "gold")
        .order_by("-confidence", "id")
    )


def disconfirmed_filter(policy: str) -> Q:
    """Return the condition on a prediction's tally that makes it disconfirmed under `policy`.

    Dawid–Skene decides from posteriors over every vote; here the cheaper majority of the tally stands in.
    """
    if policy == Consensus.DAWID_SKENE:
        policy = Consensus.MAJORITY
    return tally_status_filters(policy)["disconfirmed"]


def _checked_consensus(dataset: Dataset, consensus: str | None) -> str:
    consensus = consensus or dataset.consensus
    if consensus not in Consensus.values:
        raise ValueError(f"consensus must be one of {', '.join(Consensus.values)}, not {consensus!r}")
    return consensus


def predictions_outside_edges(dataset: Dataset, edges: Sequence[float]) -> int:
    """Count the dataset's predictions the report leaves out: confidence below the first edge or above the last."""
    outside = Q(confidence__lt=edges[0]) | Q(confidence__gt=edges[-1])
    return Prediction.objects.filter(outside, dataset=dataset).count()


def _in_range(dataset: Dataset, edges: Sequence[float]) -> QuerySet:
    return Prediction.objects.filter(dataset=dataset, confidence__gte=edges[0], confidence__lte=edges[-1])


def _cells_and_levels(
    dataset: Dataset, in_range: QuerySet, edges: Sequence[float], consensus: str
) -> tuple[list[tuple], dict[str, list]]:
    if consensus == Consensus.DAWID_SKENE:
        return _dawid_skene_cells(dataset, in_range, edges)
    return _tally_cells(in_range, edges, consensus)


def _tally_outcomes(predictions: QuerySet, policy: str, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a (confidence, correct) pair per reviewed prediction, rebuilt from per-(bin, outcome) groups.

    Each group stands in as its count of copies of its mean confidence: `stats.calibration` then
    finds the same bin counts, means and accuracies as over the rows themselves.
    """
    filters = tally_status_filters(policy)
    fraction = F("confidence") / 100.0
    groups = (
        predictions.filter(filters["reviewed"])
        .annotate(
            bin=Least(Floor(fraction * n_bins), Value(n_bins - 1), output_field=IntegerField()),
            correct=Case(When(filters["confirmed"], then=Value(True)), default=Value(False)),
        )
        .values("bin", "correct")
        .annotate(n=Count("id"), mean=Avg(fraction))
        .values_list("bin", "correct", "n", "mean")
        .order_by()
    )
    confidences, correct = [], []
    for index, is_correct, n, mean in groups:
        confidences.append(np.full(n, _inside_bin(mean, int(index), n_bins)))
        correct.append(np.full(n, bool(is_correct)))
    if not confidences:
        return np.empty(0), np.empty(0, dtype=bool)
    return np.concatenate(confidences), np.concatenate(correct)


def _inside_bin(value: float, index: int, n_bins: int) -> float:
    """Return value moved by the least amount into bin `index` as `stats.calibration` computes bins.

    The mean of values in a bin lies in it, but float rounding can carry it one ulp across an edge.
    """
    value = min(max(value, 0.0), 1.0)
    step = np.inf if min(int(value * n_bins), n_bins - 1) < index else -np.inf
    while min(int(value * n_bins), n_bins - 1) != index:
        value = float(np.nextafter(value, step))
    return value


def _dawid_skene_outcomes(dataset: Dataset, predictions: QuerySet) -> tuple[list[float], list[bool]]:
    status_of = dawid_skene_statuses(dataset)
    confidences, correct = [], []
    for pid, confidence in predictions.values_list("id", "confidence").iterator(chunk_size=20000):
        status = status_of.get(pid)
        if status is not None:
            confidences.append(confidence / 100)
            correct.append(status == "confirmed")
    return confidences, correct


def _tally_cells(in_range: QuerySet, edges: Sequence[float], policy: str) -> tuple[list[tuple], dict[str, list]]:
    """Return the (label, bucket) cells and per-label levels from one GROUP BY (label, bucket, level).

    A level (0.01-percent step) lies in one bucket unless an edge falls inside it, so the groups
    number about as many as the levels and each cell is the sum of its levels' groups: one pass
    over the predictions serves both, and no single prediction leaves the database.
    """
    groups = (
        in_range.annotate(
            bucket=_bucket_expression(edges), level=Floor(F("confidence") * LEVEL_RESOLUTION + LEVEL_SLACK)
        )
        .values("label", "bucket", "level")
        .annotate(**_status_counts(policy))
        .values_list("label", "bucket", "level", "total", "reviewed", "confirmed", "disconfirmed", "split")
        .order_by()
    )
    cells: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    levels: dict[str, list] = defaultdict(list)
    # Unrolled on purpose: this loop sees every level of every class (about 230,000 rows for 1M predictions).
    for label, bucket, level, total, reviewed, confirmed, disconfirmed, split in _fetch_aggregate(groups):
        cell = cells[(label, bucket)]
        cell[0] += total
        cell[1] += reviewed
        cell[2] += confirmed
        cell[3] += disconfirmed
        cell[4] += split
        levels[label].append((level / LEVEL_RESOLUTION, total, reviewed, reviewed - confirmed))
    return [(label, bucket, *counts) for (label, bucket), counts in cells.items()], dict(levels)


def _fetch_aggregate(queryset: QuerySet) -> list[tuple]:
    """Return the rows of a large GROUP BY, letting PostgreSQL hash its groups in memory.

    With the default 4 MB of work_mem, 10,001 levels per class spill the hash to disk or force
    a sort of every row; JIT compilation costs more than it saves on a query this short.
    SET LOCAL ends with the transaction, so the settings never leak to other queries.
    """
    connection = connections[queryset.db]
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return cursor.fetchall()


def _dawid_skene_cells(dataset, in_range, edges):
    """Cells under Dawid–Skene: statuses come from posteriors over all of the dataset's votes."""
    status_of = dawid_skene_statuses(dataset)
    cells: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    levels_acc: dict[tuple[str, float], list[int]] = defaultdict(lambda: [0, 0, 0])
    for pid, label, confidence in in_range.values_list("id", "label", "confidence").iterator(chunk_size=20000):
        status = status_of.get(pid)
        cell = cells[(label, bucket_index(confidence, edges))]
        level = levels_acc[(label, int(confidence * LEVEL_RESOLUTION + LEVEL_SLACK) / LEVEL_RESOLUTION)]
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


def dawid_skene_statuses(dataset: Dataset) -> dict[int, str]:
    """Return confirmed or disconfirmed per reviewed prediction, from Dawid–Skene over all the dataset's votes.

    The analytics page, its charts, the class pages and the labels export need it: computed once per state of
    the votes.
    """
    excluded = ",".join(map(str, sorted(excluded_reviewers(dataset).values_list("reviewer_id", flat=True))))
    return computed_from_votes(
        aggregated_votes(dataset),
        f"dawid-skene:{dataset.pk}:{excluded}",
        lambda rows: {pid: dawid_skene_status(p) for pid, p in dawid_skene(rows).item_posterior.items()},
    )
