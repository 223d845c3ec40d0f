"""Agreement between reviewers: Fleiss' kappa over confirm/disconfirm counts.

Pure Python: no Django, nothing of ours.
"""

from __future__ import annotations

from collections.abc import Sequence


def fleiss_kappa(counts: Sequence[tuple[int, int]]) -> float | None:
    """Return Fleiss' kappa of (confirms, disconfirms) per item, or None when it is undefined.

    Items with fewer than two votes carry no agreement and are left out; items may have different numbers
    of votes (each item's agreement is taken over its own pairs of votes). Undefined without an item of
    two votes or more, or when every vote falls in one category (chance agreement is then 1).
    """
    rated = []
    for confirms, disconfirms in counts:
        if confirms < 0 or disconfirms < 0:
            raise ValueError(f"vote counts cannot be negative: {confirms}, {disconfirms}")
        if confirms + disconfirms >= 2:
            rated.append((confirms, disconfirms))
    if not rated:
        return None
    observed = sum((c * (c - 1) + d * (d - 1)) / ((c + d) * (c + d - 1)) for c, d in rated) / len(rated)
    votes = sum(c + d for c, d in rated)
    share = sum(c for c, _ in rated) / votes
    chance = share**2 + (1 - share) ** 2
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)
