"""Report assembly from aggregated counts, JSON and CSV, no database."""

import csv
import io
import json

import pytest

from labelqa.analytics.report import build_report, report_to_csv

EDGES = [80, 85, 90, 95, 100]

# (label, bucket, total, reviewed, confirmed, disconfirmed, split), hand-made:
# Dog is DESIGN.md's example class: 28 of 30 confirmed, one split in 80-85, 90-95 empty,
# two unreviewed in 95-100. Cat fails its top bucket. Emu has predictions but no reviews.
CELLS = [
    ("Dog", 0, 3, 3, 2, 0, 1),
    ("Dog", 1, 5, 5, 5, 0, 0),
    ("Dog", 3, 24, 22, 21, 1, 0),
    ("Cat", 3, 4, 2, 1, 1, 0),
    ("Emu", 0, 2, 0, 0, 0, 0),
]


def make_report(cells=CELLS, **overrides):
    options = {
        "dataset": "pets",
        "edges": EDGES,
        "max_error_ratio": 0.1,
        "consensus": "unanimous",
        "cells": cells,
    }
    return build_report(**{**options, **overrides})


@pytest.fixture
def report():
    return make_report()


def by_label(report):
    return {entry["label"]: entry for entry in report["classes"]}


def test_report_has_exactly_the_designed_keys(report):
    assert list(report) == [
        "dataset",
        "edges",
        "max_error_ratio",
        "consensus",
        "classes",
        "totals",
        "class_average",
    ]
    class_keys = ["label", "total", "reviewed", "confirmed", "disconfirmed", "split"]
    class_keys += ["accuracy", "accuracy_ci95", "buckets", "threshold", "withhold"]
    assert all(list(entry) == class_keys for entry in report["classes"])
    assert list(report["totals"]) == class_keys[1:-2]
    bucket_keys = ["low", "high", "total", "reviewed", "incorrect", "accuracy", "accuracy_ci95"]
    assert list(report["totals"]["buckets"][0]) == bucket_keys
    assert list(report["class_average"]) == ["accuracy", "buckets"]


def test_report_echoes_its_settings(report):
    assert report["dataset"] == "pets"
    assert report["edges"] == EDGES
    assert report["max_error_ratio"] == 0.1
    assert report["consensus"] == "unanimous"


def test_report_sorts_classes_by_label(report):
    assert [entry["label"] for entry in report["classes"]] == ["Cat", "Dog", "Emu"]


def test_class_matches_the_design_example(report):
    dog = by_label(report)["Dog"]
    assert dog["total"] == 32
    assert (dog["reviewed"], dog["confirmed"], dog["disconfirmed"], dog["split"]) == (30, 28, 1, 1)
    assert dog["accuracy"] == 0.9333
    assert dog["accuracy_ci95"] == [0.787, 0.982]
    assert dog["buckets"][0] == {
        "low": 80,
        "high": 85,
        "total": 3,
        "reviewed": 3,
        "incorrect": 1,  # the split counts as incorrect
        "accuracy": 0.6667,
        "accuracy_ci95": [0.208, 0.939],
    }
    assert (dog["threshold"], dog["withhold"]) == (85, False)


def test_every_class_lists_every_bucket_and_empty_ones_have_no_accuracy(report):
    dog = by_label(report)["Dog"]
    assert len(dog["buckets"]) == len(EDGES) - 1
    assert dog["buckets"][2] == {
        "low": 90,
        "high": 95,
        "total": 0,
        "reviewed": 0,
        "incorrect": 0,
        "accuracy": None,
        "accuracy_ci95": None,
    }


def test_unreviewed_predictions_count_in_total_only(report):
    dog_top = by_label(report)["Dog"]["buckets"][3]
    assert (dog_top["total"], dog_top["reviewed"], dog_top["incorrect"]) == (24, 22, 1)
    assert dog_top["accuracy"] == 0.9545


def test_unreviewed_class_has_no_accuracy_and_keeps_the_lowest_threshold(report):
    emu = by_label(report)["Emu"]
    assert (emu["total"], emu["reviewed"]) == (2, 0)
    assert emu["accuracy"] is None
    assert emu["accuracy_ci95"] is None
    assert (emu["threshold"], emu["withhold"]) == (80, False)


def test_failing_top_bucket_withholds_the_class(report):
    cat = by_label(report)["Cat"]
    assert (cat["threshold"], cat["withhold"]) == (100, True)


def test_totals_add_up_every_class(report):
    totals = report["totals"]
    assert (totals["total"], totals["reviewed"], totals["confirmed"]) == (38, 32, 29)
    assert (totals["disconfirmed"], totals["split"]) == (2, 1)
    assert totals["accuracy"] == round(29 / 32, 4)
    assert [(b["total"], b["reviewed"], b["incorrect"]) for b in totals["buckets"]] == [
        (5, 3, 1),
        (5, 5, 0),
        (0, 0, 0),
        (28, 24, 2),
    ]


def test_class_average_skips_classes_without_reviews(report):
    average = report["class_average"]
    # Dog 28/30 and Cat 1/2; Emu has no reviews and is left out, not counted as 0.
    assert average["accuracy"] == round((28 / 30 + 1 / 2) / 2, 4) == 0.7167
    assert average["buckets"] == [0.6667, 1.0, None, round((21 / 22 + 1 / 2) / 2, 4)]


def test_class_average_rounds_only_at_the_end():
    cells = [("A", 0, 3, 3, 2, 1, 0), ("B", 0, 3, 3, 1, 2, 0), ("C", 0, 3, 3, 1, 2, 0)]
    report = make_report(cells=cells, edges=[80, 100])
    # (2/3 + 1/3 + 1/3) / 3 = 0.44444..., where averaging rounded values gives 0.4445.
    assert report["class_average"]["accuracy"] == 0.4444


def test_edges_keep_integral_values_as_ints_in_json():
    report = make_report(edges=[80.0, 85.0, 90, 95, 100.0])
    assert json.dumps(report["edges"]) == "[80, 85, 90, 95, 100]"
    assert json.dumps(by_label(report)["Dog"]["threshold"]) == "85"


def test_report_is_strict_json(report):
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_cells_may_be_mappings_and_repeats_are_summed(report):
    fields = ("label", "bucket_index", "total", "reviewed", "confirmed", "disconfirmed", "split")
    as_dicts = [dict(zip(fields, cell, strict=True)) for cell in CELLS]
    assert make_report(cells=as_dicts) == report
    halves = [("Dog", 1, 2, 2, 2, 0, 0), ("Dog", 1, 3, 3, 3, 0, 0)]
    assert make_report(cells=[c for c in CELLS if c[:2] != ("Dog", 1)] + halves) == report


def test_empty_report_still_lists_every_bucket():
    report = make_report(cells=[])
    assert report["classes"] == []
    assert report["totals"]["total"] == 0
    assert report["totals"]["accuracy"] is None
    assert len(report["totals"]["buckets"]) == len(EDGES) - 1
    assert report["class_average"] == {"accuracy": None, "buckets": [None] * 4}


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (("Dog", 4, 1, 1, 1, 0, 0), "bucket index 4 is not in 0..3"),
        (("Dog", 0, 1, 2, 2, 0, 0), "reviewed <= total"),
        (("Dog", 0, 3, 3, 1, 1, 0), "confirmed \\+ disconfirmed \\+ split == reviewed"),
    ],
)
def test_inconsistent_cells_are_refused(cell, message):
    with pytest.raises(ValueError, match=message):
        make_report(cells=[cell])


def test_unknown_consensus_is_refused():
    with pytest.raises(ValueError, match="unanimous, majority, dawid-skene"):
        make_report(consensus="vote")


def test_certified_thresholds_are_added_without_changing_other_fields(report):
    # Ratio 0.1 is a 9.1% target error: 32 clean reviews certify it.
    levels = {"Dog": [(99.5, 32, 32, 0), (90.0, 3, 1, 1)]}
    certified = make_report(levels_by_label=levels)
    for plain, extended in zip(report["classes"], certified["classes"], strict=True):
        assert {k: v for k, v in extended.items() if k != "certified"} == plain
    dog = by_label(certified)["Dog"]["certified"]
    assert dog["threshold"] == 99.5
    assert (dog["reviewed"], dog["incorrect"]) == (32, 0)
    assert dog["coverage"] == round(32 / 35, 4)
    assert dog["target_error"] == round(0.1 / 1.1, 4)
    assert by_label(certified)["Emu"]["certified"]["insufficient_evidence"] is True
    assert "certified" not in by_label(report)["Dog"]


def read_csv(text):
    return list(csv.reader(io.StringIO(text)))


def test_csv_has_the_seed_layout(report):
    header, *rows = read_csv(report_to_csv(report))
    expected = ["label", "total", "confirmed", "disconfirmed", "split", "% correct"]
    for span in ("80-85", "85-90", "90-95", "95-100"):
        expected += [f"{span} total", f"{span} incorrect", f"{span} % correct"]
    assert header == expected + ["threshold", "withhold"]
    assert [row[0] for row in rows] == ["Cat", "Dog", "Emu", "TOTALS", "CLASS AVERAGE"]
    assert all(len(row) == len(header) for row in rows)


def test_csv_class_rows(report):
    rows = {row[0]: row for row in read_csv(report_to_csv(report))}
    assert rows["Dog"] == [
        "Dog", "32", "28", "1", "1", "93.3",
        "3", "1", "66.7", "5", "0", "100.0", "0", "0", "", "24", "1", "95.5",
        "85", "false",
    ]  # fmt: skip
    assert rows["Emu"][5] == ""  # no reviews: blank, not 0
    assert rows["Cat"][-2:] == ["100", "true"]


def test_csv_totals_and_class_average_rows(report):
    rows = {row[0]: row for row in read_csv(report_to_csv(report))}
    assert rows["TOTALS"] == [
        "TOTALS", "38", "29", "2", "1", "90.6",
        "5", "1", "66.7", "5", "0", "100.0", "0", "0", "", "28", "2", "91.7",
        "", "",
    ]  # fmt: skip
    assert rows["CLASS AVERAGE"] == [
        "CLASS AVERAGE", "", "", "", "", "71.7",
        "", "", "66.7", "", "", "100.0", "", "", "", "", "", "72.7",
        "", "",
    ]  # fmt: skip
