"""Spreadsheet-safe text cells, without Django."""

import pytest

from labelqa.analytics.spreadsheet import spreadsheet_text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=1+2", "'=1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-1+2", "'-1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-1", "-1"),
        ("+0.5", "+0.5"),
        ("-1e-3", "-1e-3"),
        ("cat", "cat"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_a_formula_start_gets_an_apostrophe_and_plain_numbers_and_text_do_not(text, shown):
    assert spreadsheet_text(text) == shown
