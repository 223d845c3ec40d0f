"""Read and validate prediction and vote files row by row, naming each bad line (no Django here)."""

from __future__ import annotations

import csv
import math
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

MAX_REPORTED_ERRORS = 100
PREDICTION_COLUMNS = ("image", "label", "confidence")
VOTE_COLUMNS = ("image", "reviewer", "verdict")
VERDICTS = {"confirm": True, "disconfirm": False}
CONFIDENCE_SCALES = ("auto", "percent", "fraction")
MAX_LABEL_LENGTH = 200
MAX_PATH_LENGTH = 1000


class RowsRejected(Exception):
    """A file had bad lines; `errors` names the first of them, `total` counts them all."""

    def __init__(self, errors: list[str], total: int):
        self.errors = errors
        self.total = total
        super().__init__(self.message())

    def message(self) -> str:
        more = self.total - len(self.errors)
        lines = self.errors + ([f"... and {more} more bad lines"] if more > 0 else [])
        return "\n".join(lines)


class ErrorList:
    """Collect `line N: problem` messages, keeping the first MAX_REPORTED_ERRORS and counting the rest."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.total = 0

    def add(self, line: int | None, problem: str) -> None:
        self.total += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"line {line}: {problem}" if line is not None else problem)

    def raise_if_any(self) -> None:
        if self.total:
            raise RowsRejected(self.errors, self.total)


@dataclass
class PredictionRow:
    line: int
    image: str
    label: str
    confidence: float  # as written in the file; scaled to percent by `scale_confidences`
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class VoteRow:
    line: int
    image: str
    reviewer: str
    confirm: bool


def normalise_image_path(raw: str) -> str:
    """Return `raw` as a clean relative path, or raise ValueError when it would leave the images root."""
    path = raw.strip().replace("\\", "/")
    if not path:
        raise ValueError("image path is empty")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise ValueError(f"image path {raw!r} is absolute; paths must be relative to the images root")
    clean = posixpath.normpath(path)
    if clean == ".." or clean.startswith("../") or "\x00" in clean:
        raise ValueError(f"image path {raw!r} escapes the images root")
    if len(clean) > MAX_PATH_LENGTH:
        raise ValueError(f"image path is longer than {MAX_PATH_LENGTH} characters")
    return clean


def text_lines(stream: IO[bytes]) -> Iterator[str]:
    """Decode a binary stream as UTF-8 (BOM optional) line by line, refusing binary or mis-encoded input."""
    first = True
    for number, raw in enumerate(stream, start=1):
        if first:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
            first = False
        if b"\x00" in raw:
            raise RowsRejected([f"line {number}: contains NUL bytes: this looks like a binary file, not a CSV"], 1)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RowsRejected(
                [
                    f"line {number}: is not valid UTF-8 text (byte {exc.start + 1}); "
                    "if this is a spreadsheet or a binary file, export it as a UTF-8 CSV"
                ],
                1,
            ) from None


def csv_records(stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) for each non-blank CSV record; quoted fields may hold commas and newlines."""
    lines = text_lines(stream)
    counter = _LineCounter(lines)
    reader = csv.reader(counter, strict=True)
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield counter.record_start, fields
    except csv.Error as exc:
        raise RowsRejected([f"line {counter.line}: {exc}"], 1) from None


class _LineCounter:
    """Iterate lines for csv.reader while remembering on which line each record started."""

    def __init__(self, lines: Iterable[str]):
        self._lines = iter(lines)
        self.line = 0
        self.record_start = 1
        self._in_record = False

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        text = next(self._lines)
        self.line += 1
        if not self._in_record:
            self.record_start = self.line
        # A record continues on the next line while its quotes are unbalanced.
        self._in_record = (self._in_record + text.count('"')) % 2 == 1
        return text


def _header_map(fields: list[str], required: tuple[str, ...]) -> dict[str, int] | None:
    names = [f.strip().lower() for f in fields]
    if all(column in names for column in required):
        return {name: i for i, name in enumerate(names)}
    return None


def parse_confidence(raw: str) -> float:
    """Return the number in `raw`, or raise ValueError saying why it is not a usable confidence."""
    text = raw.strip().removesuffix("%")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"confidence {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"confidence {raw!r} is not a finite number")
    if value < 0:
        raise ValueError(f"confidence {raw!r} is negative")
    if value > 100:
        raise ValueError(f"confidence {raw!r} is above 100")
    return value


def read_prediction_rows(stream: IO[bytes], errors: ErrorList) -> Iterator[PredictionRow]:
    """Yield the valid rows of a prediction CSV (headerless seed format or headed); record the bad ones."""
    columns: dict[str, int] | None = None
    seen: dict[str, int] = {}
    for index, (line, fields) in enumerate(csv_records(stream)):
        if index == 0:
            columns = _header_map(fields, PREDICTION_COLUMNS)
            if columns is not None:
                continue
        row = _prediction_row(line, fields, columns, errors)
        if row is None:
            continue
        if row.image in seen:
            errors.add(line, f"image {row.image!r} already appears on line {seen[row.image]}")
            continue
        seen[row.image] = line
        yield row
    if not seen and not errors.total:
        errors.add(None, "the file holds no prediction rows; expected image,label,confidence")


def _prediction_row(
    line: int, fields: list[str], columns: dict[str, int] | None, errors: ErrorList
) -> PredictionRow | None:
    if columns is None:
        if len(fields) != 3:
            errors.add(line, f"expected 3 fields image,label,confidence but found {len(fields)}")
            return None
        raw_image, raw_label, raw_confidence = fields
        metadata: dict[str, str] = {}
    else:
        if len(fields) != len(columns):
            errors.add(line, f"expected {len(columns)} fields as in the header but found {len(fields)}")
            return None
        raw_image, raw_label, raw_confidence = (fields[columns[c]] for c in PREDICTION_COLUMNS)
        metadata = {name: fields[i] for name, i in columns.items() if name not in PREDICTION_COLUMNS}
    problems = []
    try:
        image = normalise_image_path(raw_image)
    except ValueError as exc:
        problems.append(str(exc))
    label = raw_label.strip()
    if not label:
        problems.append("label is empty")
    elif len(label) > MAX_LABEL_LENGTH:
        problems.append(f"label is longer than {MAX_LABEL_LENGTH} characters")
    try:
        confidence = parse_confidence(raw_confidence)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        errors.add(line, "; ".join(problems))
        return None
    return PredictionRow(line, image, label, confidence, metadata)


def scale_confidences(rows: list[PredictionRow], scale: str, errors: ErrorList) -> None:
    """Turn confidences into percent in place; `auto` reads them as percent when any value exceeds 1."""
    if scale not in CONFIDENCE_SCALES:
        raise ValueError(f"confidence scale must be one of {', '.join(CONFIDENCE_SCALES)}, not {scale!r}")
    if scale == "auto":
        scale = "percent" if any(r.confidence > 1 for r in rows) else "fraction"
    if scale == "fraction":
        for row in rows:
            if row.confidence > 1:
                errors.add(row.line, f"confidence {row.confidence} is above 1 but the scale is fraction")
            row.confidence *= 100


def read_vote_rows(stream: IO[bytes], errors: ErrorList) -> Iterator[VoteRow]:
    """Yield the valid rows of a vote CSV with header image,reviewer,verdict; record the bad ones."""
    columns = None
    seen: dict[tuple[str, str], int] = {}
    for index, (line, fields) in enumerate(csv_records(stream)):
        if index == 0:
            columns = _header_map(fields, VOTE_COLUMNS)
            if columns is None:
                errors.add(line, "the first line must be the header image,reviewer,verdict")
                return
            continue
        if len(fields) != len(columns):
            errors.add(line, f"expected {len(columns)} fields as in the header but found {len(fields)}")
            continue
        raw_image, reviewer, verdict = (fields[columns[c]].strip() for c in VOTE_COLUMNS)
        problems = []
        try:
            image = normalise_image_path(raw_image)
        except ValueError as exc:
            problems.append(str(exc))
        if not reviewer:
            problems.append("reviewer is empty")
        if verdict.lower() not in VERDICTS:
            problems.append(f"verdict {verdict!r} must be confirm or disconfirm")
        if problems:
            errors.add(line, "; ".join(problems))
            continue
        key = (image, reviewer)
        if key in seen:
            errors.add(line, f"reviewer {reviewer!r} already voted on {image!r} on line {seen[key]}")
            continue
        seen[key] = line
        yield VoteRow(line, image, reviewer, VERDICTS[verdict.lower()])
    if not seen and not errors.total:
        errors.add(None, "the file holds no votes; expected a header image,reviewer,verdict and rows below it")
