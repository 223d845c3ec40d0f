"""Parsing of ids and indexes that arrive as request text (no Django here)."""

# PostgreSQL bigint holds every 18-digit number; longer ones cannot name a row.
MAX_ID_DIGITS = 18


def parse_id(text: str) -> int | None:
    """Return the non-negative integer written in ASCII digits, or None for anything else.

    `str.isdigit()` alone is not enough: it accepts digits such as "²" that `int()` refuses, and numbers past
    Python's 4300-digit conversion limit; either would turn bad input into a server error.
    """
    if text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
        return int(text)
    return None
