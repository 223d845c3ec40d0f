"""Assemble the threshold report (DESIGN.md "Report semantics") from aggregated counts.

The database groups predictions by (class, bucket) and counts them; this module never sees
single rows. Pure Python over the statistics module: no Django, no database.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from numbers import Integral
from typing import Any

from labelqa.analytics.spreadsheet import spreadsheet_text
from labelqa.analytics.stats import (
    CONSENSUS_POLICIES,
    Level,
    certified_threshold,
    threshold_walk,
    validate_edges,
    validate_max_error_ratio,
    wilson_interval,
)

CELL_FIELDS = ("label", "bucket_index", "total", "reviewed", "confirmed", "disconfirmed", "split")
COUNT_FIELDS = CELL_FIELDS[2:]
REVIEWED, CONFIRMED = COUNT_FIELDS.index("reviewed"), COUNT_FIELDS.index("confirmed")
TOTALS_LABEL = "TOTALS"
AVERAGE_LABEL = "CLASS AVERAGE"

Counts = list[list[int]]  # per bucket: total, reviewed, confirmed, disconfirmed, split


def build_report(
    *,
    dataset: str,
    edges: Sequence[float],
    max_error_ratio: float,
    consensus: str,
    cells: Iterable[Mapping[str, Any] | Sequence[Any]],
    levels_by_label: Mapping[str, Iterable[Level]] | None = None,
) -> dict:
    """Return the report dict for counts per (class, bucket).

    Each cell is a mapping with CELL_FIELDS as keys or a tuple in that order; repeated
    (label, bucket) cells are summed. With `levels_by_label` (per class, the
    (confidence, total, reviewed, incorrect) of each distinct confidence) every class also
    gets a "certified" entry: the finer threshold of `stats.certified_threshold`.
    """
    edges = validate_edges(edges)
    validate_max_error_ratio(max_error_ratio)
    if consensus not in CONSENSUS_POLICIES:
        choices = ", ".join(CONSENSUS_POLICIES)
        raise ValueError(f"unknown consensus {consensus!r}; use one of {choices}")
    table = _count_table(cells, len(edges) - 1)
    classes = [_class_entry(label, table[label], edges, max_error_ratio) for label in sorted(table)]
    if levels_by_label is not None:
        for entry in classes:
            levels = levels_by_label.get(entry["label"], ())
            entry["certified"] = _rounded(certified_threshold(levels, max_error_ratio))
    return {
        "dataset": dataset,
        "edges": edges,
        "max_error_ratio": max_error_ratio,
        "consensus": consensus,
        "classes": classes,
        "totals": _summary(_sum_tables(table.values(), len(edges) - 1), edges),
        "class_average": _class_average(list(table.values()), len(edges) - 1),
    }


def report_to_csv(report: Mapping[str, Any]) -> str:
    """Return the report in the seed's wide layout: a row per class, TOTALS, CLASS AVERAGE."""
    edges = report["edges"]
    spans = [f"{low}-{high}" for low, high in pairwise(edges)]
    header = ["label", "total", "confirmed", "disconfirmed", "split", "% correct"]
    for span in spans:
        header += [f"{span} total", f"{span} incorrect", f"{span} % correct"]
    header += ["threshold", "withhold"]

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for entry in report["classes"]:
        withhold = "true" if entry["withhold"] else "false"
        writer.writerow(_csv_counts(spreadsheet_text(entry["label"]), entry) + [entry["threshold"], withhold])
    writer.writerow(_csv_counts(TOTALS_LABEL, report["totals"]) + ["", ""])
    average = report["class_average"]
    row = [AVERAGE_LABEL, "", "", "", "", _percent(average["accuracy"])]
    for accuracy in average["buckets"]:
        row += ["", "", _percent(accuracy)]
    writer.writerow(row + ["", ""])
    return out.getvalue()


def _count_table(cells: Iterable[Mapping[str, Any] | Sequence[Any]], n_buckets: int) -> dict[str, Counts]:
    """Return per label the summed counts of each bucket, checking every cell."""
    table: dict[str, Counts] = {}
    for cell in cells:
        values = [cell[field] for field in CELL_FIELDS] if isinstance(cell, Mapping) else cell
        label, index, *counts = values
        if not (isinstance(index, Integral) and 0 <= index < n_buckets):
            raise ValueError(f"cell {label!r}: bucket index {index!r} is not in 0..{n_buckets - 1}")
        total, reviewed, confirmed, disconfirmed, split = counts
        if min(counts) < 0 or reviewed > total or confirmed + disconfirmed + split != reviewed:
            raise ValueError(
                f"cell {label!r} bucket {index}: need counts >= 0, reviewed <= total and "
                f"confirmed + disconfirmed + split == reviewed; got "
                + ", ".join(f"{name}={value}" for name, value in zip(COUNT_FIELDS, counts, strict=True))
            )
        _add(table.setdefault(label, _empty(n_buckets))[index], counts)
    return table


def _empty(n_buckets: int) -> Counts:
    return [[0] * len(COUNT_FIELDS) for _ in range(n_buckets)]


def _add(row: list[int], counts: Iterable[int]) -> None:
    row[:] = [have + more for have, more in zip(row, counts, strict=True)]


def _sum_tables(tables: Iterable[Counts], n_buckets: int) -> Counts:
    """Return the bucket-by-bucket sum of count tables."""
    total = _empty(n_buckets)
    for table in tables:
        for row, counts in zip(total, table, strict=True):
            _add(row, counts)
    return total


def _class_entry(label: str, counts: Counts, edges: list[float], max_error_ratio: float) -> dict:
    summary = _summary(counts, edges)
    walk_input = [(bucket["reviewed"], bucket["incorrect"]) for bucket in summary["buckets"]]
    threshold, withhold = threshold_walk(walk_input, edges, max_error_ratio)
    return {"label": label, **summary, "threshold": threshold, "withhold": withhold}


def _summary(counts: Counts, edges: list[float]) -> dict:
    """Return the counts, accuracy and buckets shared by a class and the totals."""
    total, reviewed, confirmed, disconfirmed, split = (sum(column) for column in zip(*counts, strict=True))
    buckets = [
        {
            "low": low,
            "high": high,
            "total": b_total,
            "reviewed": b_reviewed,
            "incorrect": b_reviewed - b_confirmed,  # splits count as incorrect
            **_accuracy(b_confirmed, b_reviewed),
        }
        for (b_total, b_reviewed, b_confirmed, _, _), (low, high) in zip(counts, pairwise(edges), strict=True)
    ]
    return {
        "total": total,
        "reviewed": reviewed,
        "confirmed": confirmed,
        "disconfirmed": disconfirmed,
        "split": split,
        **_accuracy(confirmed, reviewed),
        "buckets": buckets,
    }


def _accuracy(confirmed: int, reviewed: int) -> dict:
    interval = wilson_interval(confirmed, reviewed)
    return {
        "accuracy": _round(_ratio(confirmed, reviewed), 4),
        "accuracy_ci95": [round(bound, 3) for bound in interval] if interval else None,
    }


def _class_average(tables: list[Counts], n_buckets: int) -> dict:
    """Return the mean class accuracy overall and per bucket, over classes with reviews there."""

    overall = [_pooled_accuracy(rows) for rows in tables]
    per_bucket = [[_pooled_accuracy([rows[i]]) for rows in tables] for i in range(n_buckets)]
    return {
        "accuracy": _round(_mean(overall), 4),
        "buckets": [_round(_mean(column), 4) for column in per_bucket],
    }


def _pooled_accuracy(rows: Counts) -> float | None:
    """Return confirmed / reviewed over the rows, unrounded; None without reviews."""
    return _ratio(sum(row[CONFIRMED] for row in rows), sum(row[REVIEWED] for row in rows))


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _rounded(certified: dict) -> dict:
    """Return certified_threshold's answer with its shares rounded like the report's."""
    shares = ("observed_error", "error_upper95", "coverage", "target_error")
    return {key: _round(value, 4) if key in shares else value for key, value in certified.items()}


def _csv_counts(label: str, entry: Mapping[str, Any]) -> list:
    row = [label, entry["total"], entry["confirmed"], entry["disconfirmed"], entry["split"]]
    row.append(_percent(_ratio(entry["confirmed"], entry["reviewed"])))
    for bucket in entry["buckets"]:
        correct = bucket["reviewed"] - bucket["incorrect"]
        accuracy = _ratio(correct, bucket["reviewed"])
        row += [bucket["total"], bucket["incorrect"], _percent(accuracy)]
    return row


def _percent(share: float | None) -> str:
    """Return a share as a percentage with one decimal (93.3), blank when there is none."""
    return "" if share is None else f"{100 * share:.1f}"
