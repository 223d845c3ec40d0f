"""The analytics selectors against references computed row by row in Python from the same database."""

import io
from collections import defaultdict
from decimal import ROUND_FLOOR, Decimal

import pytest

from labelqa.analytics.report import build_report
from labelqa.analytics.selectors import (
    calibration_for_dataset,
    class_detail,
    disconfirmed_predictions,
    report_for_dataset,
)
from labelqa.analytics.stats import bucket_index, calibration, consensus_status, threshold_curve
from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Vote

# Confidences on and off the 0.01 grid, on bucket edges, at 100 and below the first edge.
CONFIDENCES = [79.99, 80, 80.004, 80.005, 80.0051, 84.999, 85, 89.5, 90.01, 94.994, 95, 97.123, 99.99, 100]
# (confirms, disconfirms) cycled over the predictions: unreviewed, confirmed, disconfirmed, split, majorities.
TALLIES = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 1), (1, 2), (3, 0), (2, 0), (0, 2)]


@pytest.fixture
def mixed(db, tmp_path):
    """Two classes whose predictions cover every tally and awkward confidences."""
    lines = []
    for label in ("Heron", "Egret"):
        for i in range(90):
            confidence = CONFIDENCES[i % len(CONFIDENCES)] if i < 60 else 50 + (i * 37 % 5000) / 100
            lines.append(f"{label.lower()}-{i:03d}.jpg,{label},{confidence}")
    predictions_import(dataset_name="mixed", stream=io.BytesIO("\n".join(lines).encode()), images_root=str(tmp_path))
    for n, prediction in enumerate(Prediction.objects.filter(dataset__name="mixed").order_by("id")):
        prediction.confirms, prediction.disconfirms = TALLIES[n % len(TALLIES)]
        prediction.save(update_fields=["confirms", "disconfirms"])
    return Dataset.objects.get(name="mixed")


def written_level(confidence: float) -> float:
    """The 0.01 level of the number as written, in decimal: binary floats put 80.10 a hair below 80.1."""
    return float(Decimal(repr(confidence)).quantize(Decimal("0.01"), rounding=ROUND_FLOOR))


def reference_report(dataset, edges, policy, max_error_ratio=0.1):
    """The report built from single rows, as the selector's SQL should aggregate them."""
    cells = defaultdict(lambda: [0, 0, 0, 0, 0])
    levels = defaultdict(list)
    for label, confidence, c, d in Prediction.objects.filter(dataset=dataset).values_list(
        "label", "confidence", "confirms", "disconfirms"
    ):
        index = bucket_index(confidence, edges)
        if index is None:
            continue
        status = consensus_status(c, d, policy)
        cell = cells[(label, index)]
        cell[0] += 1
        if status != "unreviewed":
            cell[1] += 1
            cell[("confirmed", "disconfirmed", "split").index(status) + 2] += 1
        reviewed = status != "unreviewed"
        levels[label].append((written_level(confidence), 1, int(reviewed), int(reviewed and status != "confirmed")))
    return build_report(
        dataset=dataset.name,
        edges=edges,
        max_error_ratio=max_error_ratio,
        consensus=policy,
        cells=[(label, index, *counts) for (label, index), counts in cells.items()],
        levels_by_label=levels,
    )


@pytest.mark.parametrize("policy", ["unanimous", "majority"])
@pytest.mark.parametrize("edges", [[80, 85, 90, 95, 100], [80.005, 85, 90, 95, 100], [50, 75, 100]])
def test_the_report_matches_the_row_by_row_reference(mixed, policy, edges):
    assert report_for_dataset(mixed, edges=edges, consensus=policy) == reference_report(mixed, edges, policy)


def test_class_detail_is_the_class_row_of_the_report_with_its_curve(mixed):
    report = report_for_dataset(mixed, consensus="majority")
    detail = class_detail(mixed, "Egret", consensus="majority")
    assert detail["entry"] == next(c for c in report["classes"] if c["label"] == "Egret")
    levels = [
        (written_level(conf), 1, int(c + d > 0), int(c + d > 0 and not c > d))
        for conf, c, d in Prediction.objects.filter(
            dataset=mixed, label="Egret", confidence__gte=80, confidence__lte=100
        ).values_list("confidence", "confirms", "disconfirms")
    ]
    assert detail["curve"] == threshold_curve(levels)


def test_class_detail_is_none_for_an_unknown_class(mixed):
    assert class_detail(mixed, "Unicorn") is None


@pytest.mark.parametrize("policy", ["unanimous", "majority"])
@pytest.mark.parametrize("n_bins", [10, 7, 20])
def test_calibration_matches_the_pure_function_over_the_rows(mixed, policy, n_bins):
    rows = [
        (conf / 100, consensus_status(c, d, policy) == "confirmed")
        for conf, c, d in Prediction.objects.filter(dataset=mixed).values_list("confidence", "confirms", "disconfirms")
        if c + d
    ]
    expected = calibration([r[0] for r in rows], [r[1] for r in rows], n_bins=n_bins)
    got = calibration_for_dataset(mixed, consensus=policy, n_bins=n_bins)
    assert len(got["bins"]) == n_bins
    assert got["reviewed"] == len(rows) == sum(b["count"] for b in got["bins"])
    for mine, theirs in zip(got["bins"], expected["bins"], strict=True):
        assert mine["count"] == theirs["count"]
        assert mine["accuracy"] == pytest.approx(theirs["accuracy"])
        assert mine["mean_confidence"] == pytest.approx(theirs["mean_confidence"])
    assert got["ece"] == pytest.approx(expected["ece"])


def test_calibration_of_one_class_counts_only_its_reviewed_predictions(mixed):
    got = calibration_for_dataset(mixed, label="Heron")
    assert got["label"] == "Heron"
    expected = Prediction.objects.filter(dataset=mixed, label="Heron").exclude(confirms=0, disconfirms=0).count()
    assert got["reviewed"] == expected


def test_calibration_without_reviews_has_empty_bins(pets):
    got = calibration_for_dataset(pets)
    assert got["reviewed"] == 0 and got["ece"] is None
    assert [b["count"] for b in got["bins"]] == [0] * 10


def test_calibration_under_dawid_skene_counts_each_reviewed_prediction(pets, reviewer):
    from tests.analytics.test_analytics_pages import review_first_batches

    review_first_batches(pets, reviewer)
    got = calibration_for_dataset(pets, consensus="dawid-skene")
    assert got["reviewed"] == 66


@pytest.mark.parametrize("policy", ["unanimous", "dawid-skene"])
def test_a_two_decimal_confidence_is_its_own_threshold_level(tmp_path, reviewer, policy):
    lines = "".join(f"a{i}.jpg,Dog,80.10\n" for i in range(40))
    predictions_import(dataset_name="levels", stream=io.BytesIO(lines.encode()), images_root=str(tmp_path))
    dataset = Dataset.objects.get(name="levels")
    predictions = Prediction.objects.filter(dataset=dataset)
    Vote.objects.bulk_create([Vote(prediction=p, reviewer=reviewer, confirm=True) for p in predictions])
    predictions.update(confirms=1)
    (dog,) = report_for_dataset(dataset, consensus=policy)["classes"]
    assert dog["certified"]["threshold"] == 80.1, "80.10 * 100 is 8009.999999999999 in binary"


@pytest.mark.parametrize(
    ("policy", "tallies"),
    [("unanimous", {(0, 1), (0, 2)}), ("majority", {(0, 1), (0, 2), (1, 2)})],
)
def test_disconfirmed_predictions_follow_the_policy(mixed, policy, tallies):
    shown = list(disconfirmed_predictions(mixed, "Heron", consensus=policy))
    assert shown and {(p.confirms, p.disconfirms) for p in shown} == tallies
    assert all(p.label == "Heron" for p in shown)
    assert [p.confidence for p in shown] == sorted((p.confidence for p in shown), reverse=True)


@pytest.mark.parametrize(
    ("value", "index", "n_bins"), [(0.7 - 1e-16, 7, 10), (0.3, 2, 10), (1.0, 9, 10), (0.57, 56, 100), (0.57, 57, 100)]
)
def test_a_group_mean_is_moved_into_the_bin_the_database_chose(value, index, n_bins):
    from labelqa.analytics.selectors import _inside_bin

    moved = _inside_bin(value, index, n_bins)
    assert min(int(moved * n_bins), n_bins - 1) == index
    assert abs(moved - value) < 1e-12


def test_dawid_skene_runs_once_until_a_vote_or_an_exclusion_changes(pets, reviewer, reviewer2, admin_user, monkeypatch):
    from labelqa.analytics import selectors
    from labelqa.review.models import Vote
    from labelqa.review.services import reviewer_exclude
    from tests.analytics.test_analytics_pages import review_first_batches

    runs = []
    real = selectors.dawid_skene
    monkeypatch.setattr(selectors, "dawid_skene", lambda votes: runs.append(len(votes)) or real(votes))
    review_first_batches(pets, reviewer)
    first = report_for_dataset(pets, consensus="dawid-skene")
    assert calibration_for_dataset(pets, consensus="dawid-skene")["reviewed"] == first["totals"]["reviewed"]
    assert runs == [66]

    vote = Vote.objects.filter(reviewer=reviewer).order_by("pk").first()
    vote.confirm = not vote.confirm
    vote.save()
    report_for_dataset(pets, consensus="dawid-skene")
    assert runs == [66, 66], "a changed vote must recompute"

    reviewer_exclude(dataset=pets, reviewer=reviewer, by=admin_user)
    assert report_for_dataset(pets, consensus="dawid-skene")["totals"]["reviewed"] == 0
    assert runs == [66, 66, 0], "an exclusion must recompute"
