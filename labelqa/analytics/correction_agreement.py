"""Agreement of the correction pass: which class reviewers gave a disconfirmed image.

Pure functions over plain strings and counts: no Django, nothing of ours.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping


def tidy_label(text: str) -> str:
    """Return a typed label with its whitespace trimmed and runs of it collapsed to one space.

    "golden  retriever " and "golden retriever" must count as one answer when answers are tallied.
    """
    return " ".join(text.split())


def agreed_label(answers: Mapping[str, int] | Iterable[str]) -> str:
    """Return the most common label among the answers, or "" when there is none or the most common ones tie.

    `answers` is either the labels themselves or a mapping of label to how many reviewers gave it.
    Empty labels (skips) are not answers.
    """
    counts = Counter(answers)  # a mapping's values are taken as the counts
    counts.pop("", None)
    counts = +counts  # drops labels counted zero times
    ranked = counts.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return ""
    return ranked[0][0]
