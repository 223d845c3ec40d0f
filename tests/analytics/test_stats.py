"""Pure statistics: hand-computed tables and properties, no database."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import beta

from labelqa.analytics.stats import (
    bucket_index,
    calibration,
    certified_threshold,
    clopper_pearson_upper,
    consensus_status,
    reviews_needed_for_margin,
    threshold_curve,
    threshold_walk,
    validate_edges,
    validate_max_error_ratio,
    wilson_interval,
)

EDGES = [80, 85, 90, 95, 100]


def rounded(interval, digits=3):
    return tuple(round(bound, digits) for bound in interval)


# Wilson intervals


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (28, 30, (0.787, 0.982)),  # DESIGN.md's Dog class
        (2, 3, (0.208, 0.939)),  # DESIGN.md's Dog 80-85 bucket
        (5, 5, (0.566, 1.0)),
        (0, 10, (0.0, 0.278)),
    ],
)
def test_wilson_interval_matches_hand_computed_table(successes, n, expected):
    assert rounded(wilson_interval(successes, n)) == expected


def test_wilson_interval_is_none_without_reviews():
    assert wilson_interval(0, 0) is None


def test_wilson_interval_rejects_more_successes_than_trials():
    with pytest.raises(ValueError, match="3 of 2"):
        wilson_interval(3, 2)


@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_holds_the_observed_share_within_0_1(counts):
    successes, n = counts
    low, high = wilson_interval(successes, n)
    assert 0.0 <= low <= successes / n <= high <= 1.0


# Clopper-Pearson


def test_clopper_pearson_without_errors_has_the_closed_form():
    # With no failures the bound solves (1 - p)^n = alpha.
    for n in (1, 10, 29, 500):
        assert clopper_pearson_upper(0, n) == pytest.approx(1 - 0.05 ** (1 / n))


def test_clopper_pearson_needs_29_clean_reviews_for_a_10_percent_bound():
    assert round(clopper_pearson_upper(0, 29), 4) == 0.0981
    assert round(clopper_pearson_upper(0, 28), 4) == 0.1015
    assert math.ceil(math.log(0.05) / math.log(1 - 0.1)) == 29


def test_clopper_pearson_with_errors_uses_the_beta_quantile():
    assert clopper_pearson_upper(1, 10) == pytest.approx(beta.ppf(0.95, 2, 9))
    assert round(clopper_pearson_upper(1, 10), 4) == 0.3942


@pytest.mark.parametrize(("failures", "n"), [(0, 0), (7, 7)])
def test_clopper_pearson_is_one_without_evidence_or_when_all_failed(failures, n):
    assert clopper_pearson_upper(failures, n) == 1.0


# Buckets and edges


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [
        (80, 0),
        (84.99, 0),
        (85, 1),  # a bucket's low edge belongs to it
        (94.999, 2),
        (99.99, 3),
        (100, 3),  # the last bucket is closed on the right
        (79.99, None),
        (100.01, None),
        (float("nan"), None),
    ],
)
def test_bucket_index_follows_half_open_buckets(confidence, expected):
    assert bucket_index(confidence, EDGES) == expected


edge_lists = st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=8, unique=True).map(sorted)


@given(edge_lists, st.floats(-10, 110, allow_nan=False))
def test_bucket_index_agrees_with_the_edges(edges, confidence):
    index = bucket_index(confidence, edges)
    if index is None:
        assert confidence < edges[0] or confidence > edges[-1]
    else:
        last = index == len(edges) - 2
        assert edges[index] <= confidence
        assert confidence < edges[index + 1] or (last and confidence == edges[-1])


def test_one_bucket_per_percentage_point_is_the_finest_allowed():
    assert len(validate_edges(range(101))) == 101


def test_validate_edges_keeps_integral_edges_as_ints():
    edges = validate_edges([80.0, 82.5, 90, 100])
    assert edges == [80, 82.5, 90, 100]
    assert [type(edge) for edge in edges] == [int, float, int, int]


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ([80], "at least two"),
        ([80, 90, 85], "strictly increasing, but 90 is followed by 85"),
        ([80, 80, 90], "strictly increasing"),
        ([-5, 50], "outside 0..100"),
        ([80, 101], "outside 0..100"),
        ([80, float("nan")], "not a number"),
        ([80, "90"], "not a number"),
        ([True, 90], "not a number"),
        ([edge / 2 for edge in range(201)], "at most 100 buckets .one per percentage point.; got 200"),
    ],
)
def test_validate_edges_says_what_is_wrong(edges, message):
    with pytest.raises(ValueError, match=message):
        validate_edges(edges)


@pytest.mark.parametrize("ratio", [-0.1, float("nan"), float("inf"), "0.1", None])
def test_validate_max_error_ratio_rejects_what_is_not_a_ratio(ratio):
    with pytest.raises(ValueError, match="max error ratio"):
        validate_max_error_ratio(ratio)


# The seed's threshold walk


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        # (reviewed, incorrect) per bucket, lowest first
        ([(10, 0), (10, 0), (10, 0), (10, 0)], (80, False)),  # all pass: edges[0]
        ([(10, 5), (0, 0), (10, 0), (10, 0)], (85, False)),  # empty bucket passes, 80-85 fails
        ([(10, 0), (10, 3), (10, 0), (10, 0)], (90, False)),  # a middle failure
        ([(10, 0), (10, 0), (10, 0), (10, 2)], (100, True)),  # top fails: withhold
        ([(0, 0), (0, 0), (0, 0), (0, 0)], (80, False)),  # nothing reviewed: nothing fails
        ([(10, 9), (11, 1), (11, 1), (11, 1)], (85, False)),  # 1 of 11 at 0.1 is on the limit
    ],
)
def test_threshold_walk(buckets, expected):
    assert threshold_walk(buckets, EDGES, 0.1) == expected


def test_threshold_walk_passes_a_ratio_on_the_limit_despite_float_error():
    # 0.57 * 100 is 56.99999999999999 in floating point.
    assert threshold_walk([(157, 57)], [90, 100], 0.57) == (90, False)
    assert threshold_walk([(158, 58)], [90, 100], 0.57) == (100, True)


def test_threshold_walk_needs_one_bucket_per_pair_of_edges():
    with pytest.raises(ValueError, match="5 edges make 4 buckets, got 3"):
        threshold_walk([(1, 0)] * 3, EDGES, 0.1)


# Certified thresholds

NINE_TO_ONE = 1 / 9  # target error 10%


def clean_reviews(count, start=90.0):
    return [(start + i / 10, 1, 1, 0) for i in range(count)]


def test_certified_threshold_accepts_29_clean_reviews_at_a_10_percent_target():
    result = certified_threshold(clean_reviews(29), NINE_TO_ONE)
    assert result["threshold"] == 90
    assert result["reviewed"] == 29
    assert result["incorrect"] == 0
    assert result["observed_error"] == 0.0
    assert round(result["error_upper95"], 4) == 0.0981
    assert result["target_error"] == pytest.approx(0.1)
    assert result["insufficient_evidence"] is False


def test_certified_threshold_refuses_28_clean_reviews_at_a_10_percent_target():
    result = certified_threshold(clean_reviews(28), NINE_TO_ONE)
    assert result["threshold"] is None
    assert result["insufficient_evidence"] is True
    assert result["coverage"] == 0.0
    # The evidence shown is all the class has.
    assert (result["reviewed"], result["incorrect"]) == (28, 0)
    assert round(result["error_upper95"], 4) == 0.1015


def test_certified_threshold_needs_32_clean_reviews_for_the_ratio_0_1():
    assert certified_threshold(clean_reviews(31), 0.1)["threshold"] is None
    assert certified_threshold(clean_reviews(32), 0.1)["threshold"] == 90


def test_certified_threshold_coverage_counts_unreviewed_predictions():
    levels = [
        (90, 40, 29, 0),  # 29 of 40 predictions reviewed, all right
        (99, 10, 0, 0),  # unreviewed, above the threshold
        (50, 50, 0, 0),  # unreviewed, below it
    ]
    result = certified_threshold(levels, NINE_TO_ONE)
    assert result["threshold"] == 90
    assert result["coverage"] == pytest.approx(50 / 100)


def test_certified_threshold_takes_the_lowest_qualifying_confidence_past_a_failing_top():
    # One error at the very top fails t = 99, yet 1 error in 101 below certifies t = 90.
    levels = [(99, 1, 1, 1), (90, 100, 100, 0)]
    assert certified_threshold(levels, NINE_TO_ONE)["threshold"] == 90


def test_certified_threshold_never_starts_below_the_lowest_review():
    levels = [(95, 30, 30, 0), (70, 100, 0, 0)]
    result = certified_threshold(levels, NINE_TO_ONE)
    assert result["threshold"] == 95
    assert result["coverage"] == pytest.approx(30 / 130)


def test_certified_threshold_is_the_lowest_of_several_qualifying_confidences():
    # 40 clean reviews at 90.0 .. 93.9: every t up to 91.1 keeps 29 or more of them and qualifies.
    result = certified_threshold(clean_reviews(40), NINE_TO_ONE)
    assert result["threshold"] == 90
    assert (result["reviewed"], result["coverage"]) == (40, 1.0)


def test_certified_threshold_honours_min_reviewed():
    result = certified_threshold(clean_reviews(40), NINE_TO_ONE, min_reviewed=50)
    assert result["insufficient_evidence"] is True


def test_certified_threshold_without_reviews_is_insufficient():
    result = certified_threshold([(90, 10, 0, 0)], 0.1)
    assert result["threshold"] is None
    assert result["reviewed"] == 0
    assert result["observed_error"] is None
    assert result["error_upper95"] == 1.0
    assert result["insufficient_evidence"] is True


def test_threshold_curve_sums_repeats_skips_unreviewed_levels_and_runs_downwards():
    levels = [(85, 1, 1, 0), (99, 2, 2, 0), (95, 3, 2, 1), (90, 5, 0, 0), (99, 1, 1, 0)]
    curve = threshold_curve(levels)
    assert [(t, n) for t, n, _ in curve] == [(99, 3), (95, 5), (85, 6)]
    assert [bound for _, _, bound in curve] == pytest.approx(
        [clopper_pearson_upper(0, 3), clopper_pearson_upper(1, 5), clopper_pearson_upper(1, 6)]
    )


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 20)).map(lambda t: (max(t), min(t))),
        min_size=1,
        max_size=30,
    )
)
def test_threshold_curve_agrees_with_the_scalar_bound(reviews):
    levels = [(float(i), reviewed, reviewed, wrong) for i, (reviewed, wrong) in enumerate(reviews)]
    expected, n, k = [], 0, 0
    for t in range(len(reviews) - 1, -1, -1):
        reviewed, wrong = reviews[t]
        n, k = n + reviewed, k + wrong
        if reviewed:
            expected.append((t, n, clopper_pearson_upper(k, n)))
    curve = threshold_curve(levels)
    assert [(t, n) for t, n, _ in curve] == [(t, n) for t, n, _ in expected]
    assert [b for *_, b in curve] == pytest.approx([b for *_, b in expected])


def test_threshold_curve_rejects_more_errors_than_reviews():
    with pytest.raises(ValueError, match="incorrect <= reviewed"):
        threshold_curve([(90, 5, 2, 3)])


# Consensus


@pytest.mark.parametrize(
    ("confirms", "disconfirms", "unanimous", "majority"),
    [
        (2, 1, "split", "confirmed"),
        (1, 2, "split", "disconfirmed"),
        (1, 1, "split", "split"),
        (0, 3, "disconfirmed", "disconfirmed"),
        (3, 0, "confirmed", "confirmed"),
        (0, 0, "unreviewed", "unreviewed"),
    ],
)
def test_consensus_status(confirms, disconfirms, unanimous, majority):
    assert consensus_status(confirms, disconfirms, "unanimous") == unanimous
    assert consensus_status(confirms, disconfirms, "majority") == majority


@pytest.mark.parametrize("policy", ["dawid-skene", "Unanimous", ""])
def test_consensus_status_rejects_other_policies(policy):
    with pytest.raises(ValueError, match="unanimous or majority"):
        consensus_status(1, 0, policy)


# Reviews needed


def test_reviews_needed_before_any_review_assumes_an_even_split():
    # At p = 0.5 the half-width is z / (2 sqrt(N + z^2)): N >= z^2 / (4 m^2) - z^2 = 380.3.
    assert reviews_needed_for_margin(0, 0) == 381


def test_reviews_needed_after_all_correct():
    # At p = 1 the half-width is z^2 / (2 (N + z^2)): N >= z^2 / (2 m) - z^2 = 34.6.
    assert reviews_needed_for_margin(30, 30) == 5


def test_reviews_needed_is_zero_when_the_margin_is_met():
    assert reviews_needed_for_margin(500, 1000) == 0


@given(
    st.integers(0, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.floats(0.01, 0.5),
)
def test_reviews_needed_is_the_least_that_meets_the_margin(counts, margin):
    successes, n = counts
    extra = reviews_needed_for_margin(successes, n, margin)
    p = successes / n if n else 0.5

    def half_width(size):
        z2 = 1.959964**2
        return 1.959964 / (1 + z2 / size) * math.sqrt(p * (1 - p) / size + z2 / (4 * size**2))

    assert half_width(n + extra) <= margin + 1e-9
    if extra > 0 and n + extra > 1:
        assert half_width(n + extra - 1) > margin + 1e-9


def test_reviews_needed_rejects_a_margin_of_zero():
    with pytest.raises(ValueError, match="margin"):
        reviews_needed_for_margin(1, 2, margin=0)


# Calibration


def test_calibration_bins_and_ece():
    result = calibration([0.05, 0.95, 1.0, 0.5], [True, True, False, True], n_bins=2)
    low, high = result["bins"]
    assert low == {"low": 0.0, "high": 0.5, "count": 1, "mean_confidence": 0.05, "accuracy": 1.0}
    assert high["count"] == 3  # 1.0 falls in the last, closed bin
    assert high["mean_confidence"] == pytest.approx(2.45 / 3)
    assert high["accuracy"] == pytest.approx(2 / 3)
    # (1 * |1 - 0.05| + 3 * |2/3 - 2.45/3|) / 4
    assert result["ece"] == pytest.approx(0.35)


def test_calibration_leaves_empty_bins_without_accuracy():
    bins = calibration([0.91, 0.95], [True, True])["bins"]
    assert len(bins) == 10
    assert bins[0] == {"low": 0.0, "high": 0.1, "count": 0, "mean_confidence": None, "accuracy": None}


def test_calibration_without_data_has_no_ece():
    assert calibration([], [])["ece"] is None


def test_calibration_asks_for_fractions():
    with pytest.raises(ValueError, match="divide percentages by 100"):
        calibration([95.0], [True])
