"""Statistics of label review: intervals, buckets, thresholds, consensus, calibration.

Pure functions over plain numbers and numpy arrays: no Django, nothing of ours.
Confidence is in percent (0..100) everywhere except `calibration`, which takes fractions.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from itertools import pairwise
from numbers import Real

import numpy as np
from scipy.stats import beta

Z95 = 1.959964
CONSENSUS_POLICIES = ("unanimous", "majority", "dawid-skene")
# Lets a ratio that sits exactly on a limit pass despite float error (0.1 * 10 != 1.0).
EPSILON = 1e-9

Level = tuple[float, int, int, int]  # (confidence, total, reviewed, incorrect)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Return the Wilson score interval of successes/n, or None when n is 0."""
    _check_counts(successes, n)
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = _wilson_half_width(p, n, z)
    # At p = 0 or 1 a bound equals p exactly, which float error can miss by a hair.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def clopper_pearson_upper(failures: int, n: int, alpha: float = 0.05) -> float:
    """Return the one-sided (1 - alpha) Clopper-Pearson upper bound of failures/n."""
    _check_counts(failures, n)
    if failures == n:  # also n == 0: no evidence bounds nothing
        return 1.0
    return float(beta.ppf(1 - alpha, failures + 1, n - failures))


# One bucket per percentage point at the finest. Every bucket is a column per class on every page and export,
# so a longer list would make one request cost as much as thousands.
MAX_BUCKETS = 100


def validate_edges(edges: Iterable[Real]) -> list[float]:
    """Return bucket edges as numbers (integral ones as int), or raise ValueError saying why."""
    values = list(edges)
    if len(values) < 2:
        raise ValueError(f"bucket edges need at least two numbers (e.g. 80,85,90,95,100); got {len(values)}")
    if len(values) - 1 > MAX_BUCKETS:
        raise ValueError(
            f"at most {MAX_BUCKETS} buckets (one per percentage point); got {len(values) - 1}, "
            "e.g. use 80,81,…,100 for one-point buckets above 80"
        )
    for value in values:
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"bucket edge {value!r} is not a number; give percentages like 85")
        if not 0 <= value <= 100:
            raise ValueError(f"bucket edge {value} is outside 0..100; confidence is in percent")
    for low, high in pairwise(values):
        if not low < high:
            raise ValueError(f"bucket edges must be strictly increasing, but {low} is followed by {high}")
    return [_plain_number(value) for value in values]


def validate_max_error_ratio(max_error_ratio: float) -> float:
    """Return the ratio of incorrect to correct items allowed, or raise ValueError saying why."""
    if isinstance(max_error_ratio, bool) or not isinstance(max_error_ratio, Real):
        raise ValueError(f"max error ratio {max_error_ratio!r} is not a number; e.g. 0.1")
    if not (math.isfinite(max_error_ratio) and max_error_ratio >= 0):
        raise ValueError(f"max error ratio {max_error_ratio} must be >= 0, e.g. 0.1 for 1 wrong per 10 right")
    return max_error_ratio


def bucket_index(confidence: float, edges: Sequence[float]) -> int | None:
    """Return the bucket that holds confidence: [edges[i], edges[i+1]), the last one closed.

    Return None outside [edges[0], edges[-1]] (and for NaN).
    """
    if not edges[0] <= confidence <= edges[-1]:
        return None
    return min(bisect.bisect_right(edges, confidence) - 1, len(edges) - 2)


def threshold_walk(
    buckets: Sequence[tuple[int, int]], edges: Sequence[float], max_error_ratio: float
) -> tuple[float, bool]:
    """Return (threshold, withhold) by the seed's walk down from the highest bucket.

    Each bucket is (reviewed, incorrect), lowest first. A bucket passes when it is unreviewed
    or `incorrect <= max_error_ratio * (reviewed - incorrect)`. The first failing bucket sets
    the threshold to its high edge; when none fails the threshold is edges[0]. Withhold when
    the highest bucket fails: no confidence is good enough.
    """
    edges = validate_edges(edges)
    validate_max_error_ratio(max_error_ratio)
    if len(buckets) != len(edges) - 1:
        raise ValueError(f"{len(edges)} edges make {len(edges) - 1} buckets, got {len(buckets)}")
    top = len(buckets) - 1
    for i in range(top, -1, -1):
        reviewed, incorrect = buckets[i]
        if incorrect > max_error_ratio * (reviewed - incorrect) + EPSILON:
            return edges[i + 1], i == top
    return edges[0], False


def threshold_curve(levels: Iterable[Level], alpha: float = 0.05) -> list[tuple[float, int, float]]:
    """Return (t, reviewed at or above t, upper error bound) for each reviewed t, highest first.

    `levels` are (confidence, total, reviewed, incorrect) of one class; repeated confidences
    are summed. The bound is the one-sided (1 - alpha) Clopper-Pearson upper bound.
    """
    curve = _curve(levels, alpha)
    return list(zip(curve["t"].tolist(), curve["reviewed"].tolist(), curve["upper"].tolist(), strict=True))


def certified_threshold(
    levels: Iterable[Level],
    max_error_ratio: float,
    alpha: float = 0.05,
    min_reviewed: int = 1,
) -> dict:
    """Return the lowest confidence whose reviewed items above it certify the error target.

    The target error rate is r / (1 + r) for the ratio r of incorrect to correct. A candidate
    t is a confidence with at least one reviewed item; it qualifies when the one-sided
    (1 - alpha) Clopper-Pearson upper bound of the error among reviewed items at or above t
    is <= target and at least `min_reviewed` items back it. The bound is not monotone in t,
    so every t is scanned. It is a pointwise bound: it does not pay for choosing t from the
    same data, so treat it as strong evidence rather than a formal guarantee.

    Without a qualifying t, threshold is None and insufficient_evidence True; reviewed,
    incorrect and the errors then describe all reviewed items of the class and coverage is 0.
    Even error-free data needs n >= ln(alpha) / ln(1 - target) reviewed items: 29 for a 10%
    target at alpha 0.05, 32 for the ratio 0.1 (target 9.1%).

    Coverage is the share of all the class's predictions in `levels`, reviewed or not,
    at or above the threshold.
    """
    validate_max_error_ratio(max_error_ratio)
    target = max_error_ratio / (1 + max_error_ratio)
    curve = _curve(levels, alpha)
    result = {
        "threshold": None,
        "reviewed": 0,
        "incorrect": 0,
        "observed_error": None,
        "error_upper95": 1.0,
        "coverage": 0.0,
        "target_error": target,
        "insufficient_evidence": True,
    }
    if not curve["t"].size:
        return result
    ok = (curve["upper"] <= target + EPSILON) & (curve["reviewed"] >= min_reviewed)
    qualifying = np.flatnonzero(ok)
    # Rows run highest t first: the last qualifying row is the lowest t, and the last row
    # of all holds every reviewed item, the evidence to show when nothing qualifies.
    row = qualifying[-1] if qualifying.size else -1
    reviewed, incorrect = int(curve["reviewed"][row]), int(curve["incorrect"][row])
    result.update(
        reviewed=reviewed,
        incorrect=incorrect,
        observed_error=incorrect / reviewed,
        error_upper95=float(curve["upper"][row]),
    )
    if qualifying.size:
        result.update(
            threshold=_plain_number(curve["t"][row]),
            coverage=float(curve["coverage"][row]),
            insufficient_evidence=False,
        )
    return result


def consensus_status(confirms: int, disconfirms: int, policy: str) -> str:
    """Return unreviewed, confirmed, disconfirmed or split for one item's votes.

    `unanimous` needs every vote to agree; `majority` needs more than half, ties split.
    """
    if confirms < 0 or disconfirms < 0:
        raise ValueError(f"vote counts cannot be negative: {confirms}, {disconfirms}")
    votes = confirms + disconfirms
    if policy == "unanimous":
        confirmed, disconfirmed = disconfirms == 0, confirms == 0
    elif policy == "majority":
        confirmed, disconfirmed = 2 * confirms > votes, 2 * disconfirms > votes
    else:
        raise ValueError(f"unknown consensus policy {policy!r}; use unanimous or majority")
    if votes == 0:
        return "unreviewed"
    if confirmed:
        return "confirmed"
    return "disconfirmed" if disconfirmed else "split"


def reviews_needed_for_margin(successes: int, n: int, margin: float = 0.05, z: float = Z95) -> int:
    """Return how many more reviews bring the Wilson half-width down to margin.

    Assume the observed proportion holds (0.5 before any review). The half-width falls
    monotonically with the sample size, so a doubling then bisecting search finds the least.
    """
    _check_counts(successes, n)
    if not 0 < margin <= 0.5:
        raise ValueError(f"margin {margin} must lie in (0, 0.5], e.g. 0.05 for +/-5 points")
    p = successes / n if n else 0.5

    def enough(size: int) -> bool:
        return _wilson_half_width(p, size, z) <= margin + EPSILON

    low = high = max(n, 1)  # an interval needs at least one review
    while not enough(high):
        low, high = high + 1, 2 * high
    while low < high:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid + 1
    return high - n


# "Reviews needed" (class pages, batch priorities) aims at a Wilson interval of +/- 5 points.
REVIEW_MARGIN = 0.05


def bucket_reviews_needed(bucket: dict) -> int:
    """Return how many more reviews bring a report bucket's accuracy interval to +/- REVIEW_MARGIN."""
    return reviews_needed_for_margin(bucket["reviewed"] - bucket["incorrect"], bucket["reviewed"], REVIEW_MARGIN)


def calibration(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> dict:
    """Return a reliability table and the expected calibration error (ECE).

    Confidences are fractions in [0, 1], cut into n_bins equal-width bins (the last closed).
    Each bin has low, high, count, mean_confidence and accuracy (None when empty); ECE is
    the count-weighted mean of |accuracy - mean_confidence| (None without data).
    """
    conf = np.asarray(confidences, dtype=float)
    hits = np.asarray(correct, dtype=float)
    if conf.shape != hits.shape or conf.ndim != 1:
        raise ValueError("confidences and correct must be flat sequences of the same length")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if conf.size and not (np.all(conf >= 0) and np.all(conf <= 1)):
        raise ValueError("confidences must be fractions in [0, 1]; divide percentages by 100")
    index = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(index, weights=hits, minlength=n_bins) / count
    filled = count > 0
    gaps = np.abs(accuracy[filled] - mean_conf[filled])
    bins = [
        {
            "low": i / n_bins,
            "high": (i + 1) / n_bins,
            "count": int(count[i]),
            "mean_confidence": float(mean_conf[i]) if filled[i] else None,
            "accuracy": float(accuracy[i]) if filled[i] else None,
        }
        for i in range(n_bins)
    ]
    ece = float(np.sum(gaps * count[filled]) / conf.size) if conf.size else None
    return {"bins": bins, "ece": ece}


def _curve(levels: Iterable[Level], alpha: float) -> dict[str, np.ndarray]:
    """Return cumulative counts and bounds per reviewed confidence, highest first."""
    table = np.asarray(list(levels), dtype=float).reshape(-1, 4)
    if np.any(table[:, 1:] < 0) or np.any(table[:, 3] > table[:, 2]):
        raise ValueError("each level needs 0 <= incorrect <= reviewed and a non-negative total")
    if np.any(table[:, 2] > table[:, 1]):
        raise ValueError("a level cannot have more reviewed items than predictions")
    t, inverse = np.unique(table[:, 0], return_inverse=True)
    sums = np.zeros((t.size, 3))
    np.add.at(sums, inverse, table[:, 1:])
    t, sums = t[::-1], sums[::-1]
    total, reviewed, incorrect = np.cumsum(sums, axis=0).T
    # Any reviewed row implies grand_total >= 1; the floor only guards the empty class.
    grand_total = max(total[-1], 1.0) if total.size else 1.0
    keep = sums[:, 1] > 0  # unreviewed confidences carry no evidence of their own
    reviewed, incorrect = reviewed[keep], incorrect[keep]
    some_right = incorrect < reviewed
    # beta.ppf needs b > 0; all-wrong rows get 1.0, the bound's own value there.
    upper = np.where(
        some_right,
        beta.ppf(1 - alpha, incorrect + 1, np.where(some_right, reviewed - incorrect, 1)),
        1.0,
    )
    return {
        "t": t[keep],
        "reviewed": reviewed.astype(int),
        "incorrect": incorrect.astype(int),
        "upper": upper,
        "coverage": total[keep] / grand_total,
    }


def _wilson_half_width(p: float, n: int, z: float) -> float:
    z2 = z * z
    return z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))


def _check_counts(part: int, n: int) -> None:
    if not 0 <= part <= n:
        raise ValueError(f"expected 0 <= count <= n, got {part} of {n}")


def _plain_number(value: Real) -> float:
    """Return value as a Python number, integral values as int so JSON shows 85, not 85.0."""
    return int(value) if float(value).is_integer() else float(value)
