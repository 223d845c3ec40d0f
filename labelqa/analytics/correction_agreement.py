"""Agreement of the correction pass: which class reviewers gave a disconfirmed image.

Pure functions over plain strings and counts: no Django, nothing of ours.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

# Invisible and meaningless in a class name, but they make two spellings of it differ: a soft hyphen, a zero-width
# space, a word joiner, a byte-order mark. (Zero-width joiners stay: Persian and Indic scripts need them.)
INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff]")
# What a typed label (a correction, a gold item's truth) is refused for: control characters, C1 included (a terminal
# reads \x9b as ESC [), and the marks that reorder how text is shown ("gpj.exe"). Invisible on a page, they reach
# the exports.
HIDDEN_MARK = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def tidy_label(text: str) -> str:
    """Return a typed label in one spelling: composed (NFC), without invisible characters, whitespace collapsed.

    "golden  retriever ", "golden retriever" and "Café" typed with a combining accent must each count as one answer
    when answers are tallied.
    """
    return " ".join(INVISIBLE.sub("", unicodedata.normalize("NFC", text)).split())


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
