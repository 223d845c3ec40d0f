"""Agreement between reviewers: Fleiss' kappa over confirm/disconfirm counts.

Pure Python: no Django, nothing of ours.
"""

from __future__ import annotations

from collections.abc import Sequence


def fleiss_kappa(counts: Sequence[tuple[int, int]], weights: Sequence[int] | None = None) -> float | None:
    """Return Fleiss' kappa of (confirms, disconfirms) per item, or None when it is undefined.

    Items with fewer than two votes carry no agreement and are left out; items may have different numbers
    of votes (each item's agreement is taken over its own pairs of votes). Undefined without an item of
    two votes or more, or when every vote falls in one category (chance agreement is then 1).
    `weights[i]`, when given, is how many items have the counts `counts[i]` (counts grouped by the database).
    """
    rated = []
    for (confirms, disconfirms), items in zip(counts, weights or [1] * len(counts), strict=True):
        if confirms < 0 or disconfirms < 0:
            raise ValueError(f"vote counts cannot be negative: {confirms}, {disconfirms}")
        if confirms + disconfirms >= 2 and items > 0:
            rated.append((confirms, disconfirms, items))
    if not rated:
        return None
    observed = sum(n * (c * (c - 1) + d * (d - 1)) / ((c + d) * (c + d - 1)) for c, d, n in rated)
    observed /= sum(n for *_, n in rated)
    votes = sum(n * (c + d) for c, d, n in rated)
    share = sum(n * c for c, _, n in rated) / votes
    chance = share**2 + (1 - share) ** 2
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)
