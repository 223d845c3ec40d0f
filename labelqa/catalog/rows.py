"""Read and validate prediction and vote files row by row, naming each bad line (no Django here)."""

from __future__ import annotations

import codecs
import csv
import heapq
import json
import math
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from labelqa.analytics.correction_agreement import HIDDEN_MARK, INVISIBLE, tidy_label

MAX_REPORTED_ERRORS = 100
# Past the first 100 lines, a file's problems are summed up by kind, most frequent first: 130 lines with a bad
# confidence would otherwise hide the one path that leaves the images root.
MAX_REPORTED_KINDS = 10
# The values a problem quotes or counts (a path, a label, a line number): without them, lines share a kind. PostgreSQL
# applies the same pattern to the problems it stores (pg_import).
PROBLEM_VALUE = "'[^']*'|\"[^\"]*\"|[0-9]+"
PREDICTION_COLUMNS = ("image", "label", "confidence")
VOTE_COLUMNS = ("image", "reviewer", "verdict")
GOLD_COLUMNS = ("image", "truth")
VERDICTS = {"confirm": True, "disconfirm": False}
CONFIDENCE_SCALES = ("auto", "percent", "fraction")
SCALED_DIGITS = 10  # decimals kept of a fraction turned into percent
# csv: headerless image,label,confidence or headed; jsonl: one object per line; gt: a Ground Truth
# custom-labeling input file, a JSON array of {"s3_image_url", "label", "confidence"} objects.
PREDICTION_FORMATS = ("auto", "csv", "jsonl", "gt")
GT_IMAGE_KEY = "s3_image_url"
# A single JSON item larger than this is refused rather than buffered without bound.
MAX_JSON_ITEM_CHARS = 16 * 2**20
# A CSV field may be as long as a JSON item: the csv module's default of 128 KiB refused a long metadata value in
# Python while PostgreSQL's COPY took it (pg_import sends a block with a longer field to the Python reader).
# Process-wide, as the csv module keeps it.
MAX_FIELD_CHARS = MAX_JSON_ITEM_CHARS
csv.field_size_limit(MAX_FIELD_CHARS)
# Columns of a headed file: PostgreSQL stages each in a column of its own (a table holds at most 1,600).
MAX_COLUMNS = 1000
# Arrays and objects in a JSON record's metadata: Python's JSON reading recurses once per level, and a value nested
# hundreds deep, stored, made every page that loads its image fail.
MAX_JSON_DEPTH = 32
# How much of a bad value a message quotes: a 20 MB path is named by its start.
MAX_QUOTED_CHARS = 80
MAX_LABEL_LENGTH = 200
# C0 controls and DEL: they would break a grid's caption, a CSV export or a class page's address.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
# What else a label may not hold: C1 controls, text-direction marks (as typed labels) and the Unicode line breaks.
HIDDEN_IN_LABEL = re.compile(f"{HIDDEN_MARK.pattern}|[\u2028\u2029]")
MAX_PATH_LENGTH = 1000
# A confidence as programs write them: ASCII digits, an optional sign, fraction and exponent.
DECIMAL_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
# An importer's progress report: (rows validated, rows imported, rows in all or None while the file is still read).
# Importers call it per block of rows or per phase, so a slow callback never slows the per-row work.
ProgressCallback = Callable[[int, int, "int | None"], None]


def quoted(value: str) -> str:
    """The value as a message quotes it: in Python's quotes, cut to its first MAX_QUOTED_CHARS characters."""
    return repr(value if len(value) <= MAX_QUOTED_CHARS else value[: MAX_QUOTED_CHARS - 1] + "…")


def problem_kind(problem: str) -> str:
    """Return the problem with the values it names left out, so that lines with the same problem count together."""
    return re.sub(PROBLEM_VALUE, "…", problem)


@dataclass(frozen=True)
class ProblemKind:
    text: str  # the problem, its values left out
    count: int
    first: int | None  # the first line (or item) with it; None for a problem of the whole file

    def describe(self, unit: str) -> str:
        return f"{self.count} × {self.text}" + (f" (first on {unit} {self.first})" if self.first is not None else "")


class RowsRejected(Exception):
    """A file had bad lines (or items, `unit`); `errors` names the first of them, `total` counts them all.

    `kinds` sums the problems up by kind, most frequent first (the first MAX_REPORTED_KINDS): the message lists
    them once more problems were found than `errors` names.
    """

    def __init__(self, errors: list[str], total: int, unit: str = "line", kinds: list[ProblemKind] | None = None):
        self.errors = errors
        self.total = total
        self.unit = unit
        self.kinds = kinds or []
        super().__init__(self.message())

    def summary(self) -> list[str]:
        """The lines that follow the named problems: how many more there are and, then, their kinds."""
        more = self.total - len(self.errors)
        if more <= 0:
            return []
        lines = [f"... and {more} more bad {self.unit}s"]
        if self.kinds:
            lines.append(f"the {self.total} bad {self.unit}s by problem, most frequent first:")
            lines += [f"  {kind.describe(self.unit)}" for kind in self.kinds]
        return lines

    def message(self) -> str:
        return "\n".join(self.errors + self.summary())


class ErrorList:
    """Collect `line N: problem` messages, keeping the MAX_REPORTED_ERRORS first by line and counting the rest.

    Checks run in passes (fields, then images against the dataset), so problems arrive out of line order; they are
    reported in line order, problems of the whole file first. `unit` names what N counts: lines of a text file, or
    items of a JSON array ("item N: problem").
    """

    def __init__(self, unit: str = "line") -> None:
        self.unit = unit
        self.total = 0
        # A max-heap on (line, arrival) by negation: its root is the kept problem to drop for an earlier line.
        self._kept: list[tuple[int, int, str]] = []
        self._kinds: dict[str, tuple[int, int | None]] = {}  # kind: (count, first line)

    def add(self, line: int | None, problem: str) -> None:
        self.total += 1
        kind = problem_kind(problem)
        count, first = self._kinds.get(kind, (0, line))
        self._kinds[kind] = (count + 1, first if first is None or line is None else min(first, line))
        text = f"{self.unit} {line}: {problem}" if line is not None else problem
        entry = (-(line if line is not None else 0), -self.total, text)
        if len(self._kept) < MAX_REPORTED_ERRORS:
            heapq.heappush(self._kept, entry)
        elif entry > self._kept[0]:
            heapq.heapreplace(self._kept, entry)

    @property
    def errors(self) -> list[str]:
        return [text for _, _, text in sorted(self._kept, reverse=True)]

    @property
    def kinds(self) -> list[ProblemKind]:
        kinds = [ProblemKind(text, count, first) for text, (count, first) in self._kinds.items()]
        return sorted(kinds, key=lambda k: (-k.count, k.first if k.first is not None else -1))[:MAX_REPORTED_KINDS]

    def raise_if_any(self) -> None:
        if self.total:
            # The kinds only add to what the named lines say once some go unnamed.
            raise RowsRejected(self.errors, self.total, self.unit, self.kinds if self.total > len(self._kept) else [])


@dataclass
class PredictionRow:
    line: int
    image: str
    label: str
    confidence: float  # as written in the file; scaled to percent by `scale_confidences`
    metadata: dict[str, str] = field(default_factory=dict)
    percent_sign: bool = False  # written as "85%": the file is on the percent scale


@dataclass
class RawPrediction:
    """A prediction as written in the file, before its fields are checked."""

    line: int
    image: str
    label: str
    confidence: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class VoteRow:
    line: int
    image: str
    reviewer: str
    confirm: bool


@dataclass
class GoldRow:
    line: int
    image: str
    truth: str


def normalise_image_path(raw: str) -> str:
    """Return `raw` as a clean relative path, or raise ValueError when it would leave the images root."""
    path = raw.strip().replace("\\", "/")
    if not path:
        raise ValueError("image path is empty")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise ValueError(f"image path {quoted(raw)} is absolute; paths must be relative to the images root")
    clean = posixpath.normpath(path)
    if clean == ".." or clean.startswith("../") or "\x00" in clean:
        raise ValueError(f"image path {quoted(raw)} escapes the images root")
    if clean == ".":
        raise ValueError(f"image path {quoted(raw)} names the images root, not a file in it")
    if CONTROL_CHARACTER.search(clean):
        raise ValueError(f"image path {quoted(raw)} contains a control character (a line break, tab or the like)")
    if len(clean) > MAX_PATH_LENGTH:
        raise ValueError(f"image path is longer than {MAX_PATH_LENGTH} characters")
    return clean


def relative_to_root(url: str, root: str) -> str:
    """Return the part of an s3:// URL below `root` (s3://bucket/prefix), or raise ValueError if it is elsewhere."""
    base = root.rstrip("/") + "/"
    if not url.startswith(base):
        raise ValueError(f"image URL {quoted(url)} is not under the images root {root!r}")
    return url[len(base) :]


def nul_problem(line: int) -> RowsRejected:
    return RowsRejected([f"line {line}: contains NUL bytes: this looks like a binary file, not a CSV"], 1)


def utf8_problem(line: int, byte: int) -> RowsRejected:
    return RowsRejected(
        [
            f"line {line}: not valid UTF-8 text (byte {byte}); "
            "if this is a spreadsheet or a binary file, export it as a UTF-8 CSV"
        ],
        1,
    )


UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def text_lines(stream: Iterable[bytes], first_line: int = 1) -> Iterator[str]:
    """Decode a binary stream as UTF-8 (BOM optional) line by line, refusing binary or mis-encoded input."""
    for number, raw in enumerate(stream, start=first_line):
        if number == 1:
            if raw.startswith(UTF16_BOMS):  # its NUL bytes would say "binary file"
                raise RowsRejected(["line 1: the file is UTF-16 text; save or export it as UTF-8"], 1)
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if b"\x00" in raw:
            raise nul_problem(number)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise utf8_problem(number, exc.start + 1) from None


def csv_records(stream: Iterable[bytes], first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) for each non-blank CSV record; quoted fields may hold commas and newlines."""
    lines = text_lines(stream, first_line)
    counter = _LineCounter(lines, first_line - 1)
    reader = csv.reader(counter, strict=True)
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield counter.record_start, fields
    except csv.Error as exc:
        raise RowsRejected([f"line {counter.line}: {csv_problem(exc)}"], 1) from None


def csv_problem(exc: csv.Error) -> str:
    """Say what the csv module found in words a person exporting the file can act on."""
    if "new-line character seen in unquoted field" in str(exc):
        # The csv module's own advice ("universal-newline mode") is about Python, not about the file.
        return "a carriage return (CR) inside an unquoted field; save the file with LF or CRLF line ends"
    return str(exc)


class _LineCounter:
    """Iterate lines for csv.reader while remembering on which line each record started."""

    def __init__(self, lines: Iterable[str], before: int = 0):
        self._lines = iter(lines)
        self.line = before
        self.record_start = before + 1
        self._in_record = False

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        text = next(self._lines)
        self.line += 1
        if not self._in_record:
            self.record_start = self.line
        if '"' in text:  # most lines hold none: only these need reading quote by quote
            self._in_record = _ends_in_quotes(text, self._in_record)
        return text


def _ends_in_quotes(text: str, in_quotes: bool) -> bool:
    """Whether a quoted field is still open at the end of this line, as the csv module reads quotes.

    Only a quote that begins a field opens one: in `5" screen` or `Ca"t` it is a plain character, and counting it
    put every later line's number off by one.
    """
    field_start = not in_quotes
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if in_quotes:
            if char == '"':
                if text.startswith('"', i + 1):  # "" stands for one quote inside the field
                    i += 1
                else:
                    in_quotes = False
        elif char == '"' and field_start:
            in_quotes = True
        field_start = char == "," and not in_quotes
        i += 1
    return in_quotes


class HeaderProblem(ValueError):
    """A header names every required column but cannot be read as one; the message says what to change."""


def header_map(fields: list[str], required: tuple[str, ...] = PREDICTION_COLUMNS) -> dict[str, int] | None:
    """Return {column name: index} when `fields` is a header naming every required column, else None.

    Raises HeaderProblem when such a header names a column twice: which of the two holds the value is a guess.
    """
    names = [f.strip().lower() for f in fields]
    if not all(column in names for column in required):
        return None
    if len(names) > MAX_COLUMNS:
        raise HeaderProblem(
            f"the header has {len(names):,} columns; at most {MAX_COLUMNS:,} can be read: drop the ones not needed"
        )
    columns = {name: i for i, name in enumerate(names)}
    if len(columns) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise HeaderProblem(f"the header names {', '.join(map(repr, twice))} more than once; rename or drop the copy")
    return columns


def parse_confidence(raw: str) -> float:
    """Return the number in `raw`, or raise ValueError saying why it is not a usable confidence."""
    text = raw.strip().removesuffix("%").rstrip()
    if NON_FINITE.fullmatch(text):
        raise ValueError(f"confidence {quoted(raw)} is not a finite number")
    # Not float() alone: it would also take "1_0" as ten, and digits of other scripts.
    if not DECIMAL_NUMBER.fullmatch(text):
        raise ValueError(f"confidence {quoted(raw)} is not a number")
    value = float(text) + 0.0  # + 0.0 turns -0 into 0, which is how every reader of the column expects zero
    if value < 0:
        raise ValueError(f"confidence {quoted(raw)} is negative")
    if value > 100:
        raise ValueError(f"confidence {quoted(raw)} is above 100")
    return value


def has_percent_sign(raw_confidence: str) -> bool:
    return raw_confidence.rstrip().endswith("%")


def check_prediction(raw_image: str, raw_label: str, raw_confidence: str) -> tuple[str, str, float]:
    """Return the clean (image, label, confidence) of a record, or raise ValueError naming all its problems."""
    problems = []
    image = label = ""
    confidence = 0.0
    try:
        image = normalise_image_path(raw_image)
    except ValueError as exc:
        problems.append(str(exc))
    label = raw_label.strip()
    if not label:
        problems.append("label is empty")
    elif len(label) > MAX_LABEL_LENGTH:
        problems.append(f"label is longer than {MAX_LABEL_LENGTH} characters")
    elif {".", ".."} & set(label.split("/")):
        problems.append(f"label {label!r} cannot name a class: a '.' or '..' part makes its page's address a folder's")
    elif CONTROL_CHARACTER.search(label):
        problems.append(f"label {label!r} contains a control character (a line break, tab or the like)")
    elif HIDDEN_IN_LABEL.search(label):
        problems.append(f"label {label!r} contains an invisible control character or text-direction mark")
    elif not INVISIBLE.sub("", label).strip():
        problems.append(f"label {label!r} holds only invisible characters")
    try:
        confidence = parse_confidence(raw_confidence)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return image, label, confidence


def field_count_problem(found: int, columns: dict[str, int] | None) -> str | None:
    """Return why a CSV record with `found` fields does not fit the header (or the seed format), if it does not."""
    if columns is None:
        return None if found == 3 else f"expected 3 fields image,label,confidence but found {found}"
    return None if found == len(columns) else f"expected {len(columns)} fields as in the header but found {found}"


def csv_raw_record(line: int, fields: list[str], columns: dict[str, int] | None) -> RawPrediction:
    """Pick image, label, confidence and the metadata columns out of a record of the right length."""
    if columns is None:
        return RawPrediction(line, *fields)
    image, label, confidence = (fields[columns[c]] for c in PREDICTION_COLUMNS)
    metadata = {name: fields[i] for name, i in columns.items() if name not in PREDICTION_COLUMNS}
    return RawPrediction(line, image, label, confidence, metadata)


def csv_prediction_records(
    stream: Iterable[bytes],
    errors: ErrorList,
    *,
    first_line: int = 1,
    columns: dict[str, int] | None = None,
    detect_header: bool = True,
) -> Iterator[RawPrediction]:
    """Yield the records of a prediction CSV (headerless seed format or headed); record field-count errors.

    A caller that has read the head itself passes the line to go on from and the header it found.
    """
    for index, (line, fields) in enumerate(csv_records(stream, first_line)):
        if index == 0 and detect_header:
            try:
                columns = header_map(fields)
            except HeaderProblem as exc:
                errors.add(line, str(exc))
                return
            if columns is not None:
                continue
        problem = field_count_problem(len(fields), columns)
        if problem:
            errors.add(line, problem)
            continue
        yield csv_raw_record(line, fields, columns)


def _storage_problem(value: Any, depth: int = 0) -> str | None:
    """Return why a parsed JSON value cannot be stored in PostgreSQL text or jsonb, or None when it can."""
    if isinstance(value, str):
        if "\x00" in value:
            return "contains a NUL character (\\u0000), which text fields cannot hold"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate escape (such as \\ud800), which is not a character"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"holds {json.dumps(value)}, which is not a JSON number and cannot be stored"
    if isinstance(value, dict | list) and depth > MAX_JSON_DEPTH:
        return f"nests arrays or objects more than {MAX_JSON_DEPTH} deep; flatten the metadata"
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        return next((problem for item in value if (problem := _storage_problem(item, depth + 1))), None)
    return None


def _unreadable_json_problem(exc: ValueError | RecursionError) -> str:
    """Say why Python's json module gave up on a value that is well-formed JSON or nearly so."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at character {exc.pos + 1}"
    if isinstance(exc, RecursionError):
        return "arrays or objects nested too deeply"
    return "a number with too many digits"  # Python's guard against huge integer conversions


def json_raw_record(
    number: int, value: Any, image_key: str, images_root: str | None
) -> tuple[RawPrediction | None, str | None]:
    """Turn one JSON object into a record, or return why it cannot be one."""
    if not isinstance(value, dict):
        return None, f"expected a JSON object with {image_key}, label and confidence"
    # JSON can spell what PostgreSQL cannot store (a CSV is refused for NUL and invalid bytes the same way). A
    # confidence that is not a string is checked as a number below, with its own message.
    if problem := _storage_problem({k: v for k, v in value.items() if k != "confidence" or isinstance(v, str)}):
        return None, problem
    missing = [key for key in (image_key, "label", "confidence") if key not in value]
    if missing:
        return None, "missing " + ", ".join(repr(key) for key in missing)
    image, label, confidence = value[image_key], value["label"], value["confidence"]
    if not isinstance(image, str):
        return None, f"{image_key} must be a string"
    if not isinstance(label, str):
        return None, "label must be a string"
    if image_key == GT_IMAGE_KEY or image.startswith("s3://"):
        if not images_root or not images_root.startswith("s3://"):
            return None, f"image URL {image!r} needs an s3://bucket/prefix images root"
        try:
            image = relative_to_root(image, images_root)
        except ValueError as exc:
            return None, str(exc)
    # A number stays as written in JSON so that messages quote it as the file does.
    confidence = confidence if isinstance(confidence, str) else json.dumps(confidence)
    metadata = {key: v for key, v in value.items() if key not in (image_key, "label", "confidence")}
    return RawPrediction(number, image, label, confidence, metadata), None


def jsonl_prediction_records(
    stream: Iterable[bytes], errors: ErrorList, images_root: str | None = None
) -> Iterator[RawPrediction]:
    """Yield the records of a JSON Lines file, one object per line; blank lines are skipped."""
    for line, text in enumerate(text_lines(stream), start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            errors.add(line, f"not valid JSON ({_unreadable_json_problem(exc)})")
            continue
        # Ground Truth items one per line (or one alone, not in an array) name their image by URL.
        gt_item = isinstance(value, dict) and "image" not in value and GT_IMAGE_KEY in value
        record, problem = json_raw_record(line, value, GT_IMAGE_KEY if gt_item else "image", images_root)
        if problem:
            errors.add(line, problem)
        elif record:
            yield record


def gt_prediction_records(stream: IO[bytes], errors: ErrorList, images_root: str | None) -> Iterator[RawPrediction]:
    """Yield the records of a Ground Truth input file; its s3_image_url must lie under the images root."""
    if not images_root or not images_root.startswith("s3://"):
        raise ValueError(
            "a Ground Truth input file names its images by s3:// URL; "
            "give the dataset an images root of the form s3://bucket/prefix"
        )
    for item, value in json_array_items(stream):
        record, problem = json_raw_record(item, value, GT_IMAGE_KEY, images_root)
        if problem:
            errors.add(item, problem)
        elif record:
            yield record


def json_array_items(stream: IO[bytes], block: int = 2**20) -> Iterator[tuple[int, Any]]:
    """Yield (item number, value) of a JSON array read in blocks, never holding more than one item's text."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8-sig")()
    state = {"buf": "", "pos": 0, "eof": False, "offset": 0}

    def refill() -> bool:
        if state["eof"]:
            return False
        data = stream.read(block)
        state["eof"] = not data
        try:
            text = utf8.decode(data, final=state["eof"])
        except UnicodeDecodeError as exc:
            raise RowsRejected(
                [f"the file is not valid UTF-8 text (near byte {state['offset'] + exc.start + 1}); export it as UTF-8"],
                1,
            ) from None
        state["offset"] += len(data)
        state["buf"] = state["buf"][state["pos"] :] + text
        state["pos"] = 0
        return True

    def next_char() -> str:
        while True:
            buf, pos = state["buf"], state["pos"]
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            state["pos"] = pos
            if pos < len(buf):
                return buf[pos]
            if not refill():
                return ""

    def refuse(problem: str) -> RowsRejected:
        return RowsRejected([problem], 1)

    if next_char() != "[":
        raise refuse("a Ground Truth input file must be a JSON array of objects, starting with [")
    state["pos"] += 1
    item = 0
    if next_char() == "]":
        state["pos"] += 1
    else:
        while True:
            item += 1
            next_char()
            while True:
                try:
                    value, end = decoder.raw_decode(state["buf"], state["pos"])
                except json.JSONDecodeError as exc:
                    # The item may just be cut off by the block boundary: read on unless it is hopelessly long.
                    if len(state["buf"]) - state["pos"] < MAX_JSON_ITEM_CHARS and refill():
                        continue
                    if len(state["buf"]) - state["pos"] >= MAX_JSON_ITEM_CHARS:
                        raise refuse(
                            f"item {item}: runs past {MAX_JSON_ITEM_CHARS // 2**20} MiB of text without ending; "
                            "an item is one image's prediction"
                        ) from None
                    where = exc.pos - state["pos"] + 1  # some of json's messages end in "at" themselves
                    problem = f"{exc.msg.removesuffix(' at')} at character {where} of the item"
                    raise refuse(f"item {item}: not valid JSON ({problem})") from None
                except (ValueError, RecursionError) as exc:
                    raise refuse(f"item {item}: not valid JSON ({_unreadable_json_problem(exc)})") from None
                if end >= len(state["buf"]) and refill():
                    continue  # a number at the very end of the buffer may go on in the next block
                break
            state["pos"] = end
            yield item, value
            separator = next_char()
            state["pos"] += 1
            if separator == "]":
                break
            if separator != ",":
                raise refuse(f"item {item}: expected , or ] after it")
    if next_char():
        raise refuse("the file goes on after the closing ] of its JSON array")


def prediction_records(
    stream: IO[bytes], errors: ErrorList, file_format: str = "csv", images_root: str | None = None
) -> Iterator[RawPrediction]:
    """Yield the records of a prediction file in `file_format` (csv, jsonl or gt)."""
    if file_format == "jsonl":
        return jsonl_prediction_records(stream, errors, images_root)
    if file_format == "gt":
        return gt_prediction_records(stream, errors, images_root)
    return csv_prediction_records(stream, errors)


def read_prediction_rows(
    stream: IO[bytes], errors: ErrorList, file_format: str = "csv", images_root: str | None = None
) -> Iterator[PredictionRow]:
    """Yield the valid rows of a prediction file; record the bad ones (each named by its line or item)."""
    seen: dict[str, int] = {}
    for record in prediction_records(stream, errors, file_format, images_root):
        try:
            image, label, confidence = check_prediction(record.image, record.label, record.confidence)
        except ValueError as exc:
            errors.add(record.line, str(exc))
            continue
        if image in seen:
            errors.add(record.line, duplicate_problem(image, seen[image], errors.unit))
            continue
        seen[image] = record.line
        yield PredictionRow(record.line, image, label, confidence, record.metadata, has_percent_sign(record.confidence))
    if not seen and not errors.total:
        errors.add(None, NO_ROWS_PROBLEM)


NO_ROWS_PROBLEM = "the file holds no prediction rows; expected image,label,confidence"


def duplicate_problem(image: str, first: int, unit: str = "line") -> str:
    return f"image {image!r} already appears on {unit} {first}"


ALREADY_IN_DATASET = "is already in dataset"


def existing_problem(image: str, dataset_name: str) -> str:
    return f"image {image!r} {ALREADY_IN_DATASET} {dataset_name!r}"


def names_lines(problems: list[str]) -> bool:
    """Tell whether the problems are all about lines (or items) of the file, as ErrorList words them."""
    return bool(problems) and all(re.match(r"(?:line|item) \d+: ", problem) for problem in problems)


def replace_would_help(problems: list[str], replace: bool) -> bool:
    """Tell whether an import refused for images already in the dataset could go through with `replace`."""
    return not replace and any(ALREADY_IN_DATASET in problem for problem in problems)


def in_review_problem(image: str, dataset_name: str) -> str:
    return (
        f"image {image!r} in dataset {dataset_name!r} is on a grid a reviewer has open; "
        "import again once the reviewer has submitted it or its lease has run out"
    )


def gold_problem(image: str, dataset_name: str) -> str:
    return (
        f"image {image!r} in dataset {dataset_name!r} is a gold item, whose answer is about its label; "
        "unmark it on the gold page (/review/gold/) before replacing its prediction"
    )


def voted_problem(image: str, dataset_name: str) -> str:
    return (
        f"image {image!r} in dataset {dataset_name!r} already has votes; "
        "its prediction cannot be replaced without losing them"
    )


def fraction_problem(confidence: float) -> str:
    return f"confidence {confidence} is above 1 but the scale is fraction"


def percent_sign_problem(confidence: float) -> str:
    """A value written as a percentage in a file said to hold fractions: which of the two is meant is a guess."""
    return f"confidence {confidence}% is written as a percentage but the scale is fraction; use the percent scale"


JSON_ARRAY_START = re.compile(rb"\[\s*(?:[{\]]|\Z)")
JSON_OBJECT_START = re.compile(rb"\{\s*(?:[\"}]|\Z)")


def detect_format(head: bytes, name: str = "") -> str:
    """Return csv, jsonl or gt from a file's first bytes (a JSON array or object), else from its name's extension."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    # Not just the first character: a CSV's first image path may begin with [ or {, as in "[2020] a.jpg".
    if JSON_ARRAY_START.match(text):
        return "gt"
    if JSON_OBJECT_START.match(text):
        return "jsonl"
    suffix = name.lower().rpartition(".")[2] if "." in name else ""
    return {"jsonl": "jsonl", "ndjson": "jsonl", "json": "gt"}.get(suffix, "csv")


def scale_confidences(rows: list[PredictionRow], scale: str, errors: ErrorList) -> None:
    """Turn confidences into percent in place; `auto` reads them as percent when any exceeds 1 or has a % sign."""
    if scale not in CONFIDENCE_SCALES:
        raise ValueError(f"confidence scale must be one of {', '.join(CONFIDENCE_SCALES)}, not {scale!r}")
    if scale == "auto":
        scale = "percent" if any(r.confidence > 1 or r.percent_sign for r in rows) else "fraction"
    if scale == "fraction":
        for row in rows:
            if row.percent_sign:
                errors.add(row.line, percent_sign_problem(row.confidence))
            elif row.confidence > 1:
                errors.add(row.line, fraction_problem(row.confidence))
            # Rounded: 0.29 * 100 is 28.999999999999996 in binary and would fall below a bucket edge at 29.
            row.confidence = round(row.confidence * 100, SCALED_DIGITS)


def headed_records(
    stream: IO[bytes], errors: ErrorList, required: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, {column: stripped value}) of a CSV whose first line must name the `required` columns.

    A missing header or a record with the wrong number of fields is recorded in `errors`.
    """
    columns = None
    for index, (line, fields) in enumerate(csv_records(stream)):
        if index == 0:
            try:
                columns = header_map(fields, required)
            except HeaderProblem as exc:
                errors.add(line, str(exc))
                return
            if columns is None:
                errors.add(line, f"the first line must be the header {','.join(required)}")
                return
            continue
        if problem := field_count_problem(len(fields), columns):
            errors.add(line, problem)
            continue
        yield line, {name: fields[columns[name]].strip() for name in required}


def read_vote_rows(stream: IO[bytes], errors: ErrorList) -> Iterator[VoteRow]:
    """Yield the valid rows of a vote CSV with header image,reviewer,verdict; record the bad ones."""
    seen: dict[tuple[str, str], int] = {}
    for line, record in headed_records(stream, errors, VOTE_COLUMNS):
        raw_image, raw_reviewer, verdict = (record[c] for c in VOTE_COLUMNS)
        # As Django's login form reads a user name: full-width "ｊｏｈｎ" is john, not an account no one can sign into.
        reviewer = unicodedata.normalize("NFKC", raw_reviewer)
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


def read_gold_rows(stream: IO[bytes], errors: ErrorList) -> Iterator[GoldRow]:
    """Yield the valid rows of a gold CSV with header image,truth (the true label); record the bad ones."""
    seen: dict[str, int] = {}
    for line, record in headed_records(stream, errors, GOLD_COLUMNS):
        problems = []
        try:
            image = normalise_image_path(record["image"])
        except ValueError as exc:
            problems.append(str(exc))
        truth = tidy_label(record["truth"])  # as typed answers are tidied: reviewers are scored against it
        if not truth:
            problems.append("truth is empty; write the image's true label")
        elif len(truth) > MAX_LABEL_LENGTH:
            problems.append(f"truth is longer than {MAX_LABEL_LENGTH} characters")
        elif HIDDEN_MARK.search(truth):
            problems.append(f"truth {truth!r} holds a control character or text-direction mark; write it plainly")
        if problems:
            errors.add(line, "; ".join(problems))
            continue
        if image in seen:
            errors.add(line, duplicate_problem(image, seen[image]))
            continue
        seen[image] = line
        yield GoldRow(line, image, truth)
    if not seen and not errors.total:
        errors.add(None, "the file holds no gold items; expected a header image,truth and rows below it")
