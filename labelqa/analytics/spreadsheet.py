"""Text cells that spreadsheets show as text (no Django): CSV downloads are opened in Excel and LibreOffice.

A cell that begins with = or @ (or + or -, unless it is a plain number) runs as a formula when the file is opened,
and labels and file names come from outside: a model's label file, a bucket's object names. Such a cell gets a
leading apostrophe, which spreadsheets hide and read as "this is text" (OWASP's advice for CSV injection). JSON
formats carry values unchanged, for pipelines.
"""

import re

FORMULA_START = re.compile(r"[=@\t\r]|[+-](?![0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?$)")


def spreadsheet_text(text: str) -> str:
    """Return `text` as a spreadsheet will show it literally: with an apostrophe before a formula's start."""
    return "'" + text if FORMULA_START.match(text) else text
