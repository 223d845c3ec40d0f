"""Import predictions into PostgreSQL in bulk: COPY into a staging table, validate with set-based SQL, insert.

The Python side streams the file once: it checks UTF-8 and NUL bytes block by block and hands blocks of CSV lines
to COPY untouched, so a million-row file never becomes a million Python objects. One regular expression per block
finds the lines whose fields are not already clean; only those come back from the staging table for
`check_prediction`. Blocks COPY would read differently from the csv module (quotes, stray carriage returns, lines with
other field counts) and JSON formats are parsed and checked by `rows.py` and written to COPY as CSV. Every error
message is made by the same `rows.py` functions the SQLite path uses, so both paths name the same lines with the
same words.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from itertools import chain
from typing import IO, Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from labelqa.catalog.key_checks import foreign_key_checks_skipped
from labelqa.catalog.models import IMAGE_PATH_UNIQUE, UNCHECKED_IMAGE, Dataset, Image, Prediction
from labelqa.catalog.rows import (
    MAX_FIELD_CHARS,
    MAX_REPORTED_ERRORS,
    MAX_REPORTED_KINDS,
    NO_ROWS_PROBLEM,
    PREDICTION_COLUMNS,
    PROBLEM_VALUE,
    SCALED_DIGITS,
    ErrorList,
    HeaderProblem,
    ProblemKind,
    ProgressCallback,
    RowsRejected,
    check_prediction,
    csv_prediction_records,
    csv_problem,
    duplicate_problem,
    existing_problem,
    fraction_problem,
    gold_problem,
    has_percent_sign,
    header_map,
    in_review_problem,
    percent_sign_problem,
    prediction_records,
    problem_kind,
    text_lines,
    voted_problem,
)
from labelqa.review.models import Batch, GoldItem, Lease, LeasedGold, Vote

BLOCK_BYTES = 8 * 2**20
COPY_FLUSH_CHARS = 2**20
FETCH_ROWS = 10_000
WORK_MEM = "256MB"
# Rows written per statement (whole labels, so it can be more): the import's progress moves once per part.
PART_ROWS = 200_000

# A field of a verbatim line that matches its pattern here is already what `check_prediction` would make of it, so
# SQL takes it as it is; every other line goes through `check_prediction` in Python (rare in real files, and exact
# either way). The lookaheads bound the length in bytes, which is never less than the length in characters.
PLAIN_FIELDS = {
    "image": rb"(?=[^,\n]{1,1000}[,\n])[A-Za-z0-9_][A-Za-z0-9_.+@=~ ()&-]*"
    rb"(?:/[A-Za-z0-9_+@=~ ()&-][A-Za-z0-9_.+@=~ ()&-]*)*(?<! )",
    # No "." or ".." between slashes or at either end: a class page's address would lead elsewhere.
    # Printable ASCII: a label with any other character (a C1 control, a text-direction mark) is checked in Python.
    "label": rb"(?=[^,\n]{1,200}[,\n])(?!(?:[^,\n]*/)?\.\.?(?:/|[,\n]))[!-+\--~](?:[ -+\--~]*[!-+\--~])?",
    "conf": rb"(?:100(?:\.0*)?|[0-9]{1,2}(?:\.[0-9]*)?|\.[0-9]+)",
}
METADATA_FIELD = rb"[^,\n]*"
# A function takes at most 100 arguments: the metadata object is built from objects of 50 columns each, joined.
JSONB_PAIRS_PER_CALL = 50


def odd_line_pattern(names: list[str]) -> re.Pattern[bytes]:
    """Match each whole line (newline included) that is not a plain record with these columns."""
    plain = b",".join(PLAIN_FIELDS.get(name, METADATA_FIELD) for name in names)
    return re.compile(rb"^(?!" + plain + rb"\n)[^\n]*\n", re.MULTILINE)


@dataclass(frozen=True)
class CopyResult:
    imported: int
    skipped_below_min: int
    batches: int
    replaced: int


def predictions_copy(
    *,
    dataset: Dataset,
    stream: IO[bytes],
    file_format: str,
    confidence_scale: str,
    min_confidence: float | None,
    model_name: str,
    replace: bool,
    progress: ProgressCallback | None = None,
) -> CopyResult:
    """Stage, validate and insert a prediction file; raise RowsRejected (changing nothing) on any bad row.

    `progress(validated, imported, total)` hears of rows read once per COPY block, then once per phase.
    """
    reported = _RowsRead(progress)
    unit = "item" if file_format == "gt" else "line"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem')")
        (work_mem,) = cursor.fetchone()
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        # On an error the surrounding atomic block rolls all of this back, the setting and the temporaries too.
        meta_names = _stage(cursor.cursor, stream, file_format, dataset.images_root, reported)
        _check_odd_rows(cursor.cursor, meta_names)
        _materialise_rows(cursor, meta_names)
        # Every row is written when nothing is skipped or replaced, so the unique (dataset, path) index finds
        # repeated images on the way in, and the 1M-row GROUP BY is needed only to name them.
        optimistic = min_confidence is None and not replace
        validate = partial(_validate, cursor, dataset, confidence_scale, replace, unit)
        factor = validate(duplicates=not optimistic)
        write = partial(_write, cursor, dataset, factor, min_confidence, model_name, reported.callback)
        result = _write_or_name_duplicates(write, validate) if optimistic else write()
        cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
        _drop_temporaries(cursor)
    return result


def _drop_temporaries(cursor) -> None:
    # Dropped explicitly: inside an outer transaction ON COMMIT DROP would keep them past this import.
    cursor.execute(
        "DROP TABLE IF EXISTS lq_stage, lq_odd_line, lq_fix, lq_rows, lq_err, lq_replace, lq_label, lq_batch"
    )
    cursor.execute("DROP SEQUENCE IF EXISTS lq_line")


# Staging


class _RowsRead:
    """Count the rows handed to COPY and pass the count on; called per block, never per row."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback or _ignore_progress
        self.rows = 0

    def add(self, rows: int) -> None:
        self.rows += rows
        self.callback(self.rows, 0, None)


def _ignore_progress(validated: int, imported: int, total: int | None) -> None:
    pass


def _create_stage(cursor, meta_names: list[str]) -> None:
    extra = "".join(f", m{i} text" for i in range(len(meta_names)))
    _drop_temporaries(cursor)
    cursor.execute("CREATE TEMP SEQUENCE lq_line")
    cursor.execute(
        "CREATE TEMP TABLE lq_stage (line bigint NOT NULL DEFAULT nextval('lq_line'), err text, image text, "
        f"label text, conf text, meta jsonb, pct bool{extra})"
    )
    cursor.execute("CREATE TEMP TABLE lq_odd_line (line bigint PRIMARY KEY)")


def _stage(cursor, stream: IO[bytes], file_format: str, images_root: str, reported: _RowsRead) -> list[str]:
    """Fill lq_stage from the file; return the names of the CSV metadata columns held in m0, m1, …"""
    if file_format != "csv":
        _create_stage(cursor, [])
        errors = _StagedErrors()
        records = prediction_records(stream, errors, file_format, images_root)
        _copy_records(cursor, errors, records, reported)
        return []
    return _stage_csv(cursor, stream, reported)


def _stage_csv(cursor, stream: IO[bytes], reported: _RowsRead) -> list[str]:
    """Read the head of a CSV in Python, then COPY plain blocks verbatim and parse the rest in Python."""
    line = 0
    while True:
        data = stream.readline()
        if not data:
            _create_stage(cursor, [])
            return []
        line += 1
        text = next(text_lines([data], line))  # drops a BOM from line 1 itself
        if '"' in text or "\r" in text.removesuffix("\r\n"):
            # A quoted head may span lines, and a lone CR breaks a record for the csv module: let it find
            # records and the header, and name the problems as the Python reader does.
            _create_stage(cursor, [])
            _copy_csv_slow(cursor, chain([data], stream), line, None, reported, detect_header=True)
            return []
        try:
            fields = next(csv.reader([text]))
        except csv.Error as exc:  # a field longer than the csv module takes
            raise RowsRejected([f"line {line}: {csv_problem(exc)}"], 1) from None
        if any(f.strip() for f in fields):
            break
    try:
        columns = header_map(fields)
    except HeaderProblem:  # the Python reader names the problem, as for a quoted head
        _create_stage(cursor, [])
        _copy_csv_slow(cursor, chain([data], stream), line, None, reported, detect_header=True)
        return []
    bom = b""  # the BOM COPY must not see, given back to the Python reader, which drops it itself
    if columns is None:
        pending = data.removeprefix(b"\xef\xbb\xbf") if line == 1 else data
        bom = data[: len(data) - len(pending)]
        names, first = ["image", "label", "conf"], line
    else:
        pending, first = b"", line + 1
        names = [_stage_column(f.strip().lower(), columns) for f in fields]
    meta_names = [n for n in columns or {} if n not in PREDICTION_COLUMNS]
    _create_stage(cursor, meta_names)
    copy_sql = f"COPY lq_stage ({', '.join(names)}) FROM STDIN (FORMAT csv)"
    odd_line = odd_line_pattern(names)
    for block in _blocks(stream, pending):
        verbatim = _verbatim_block(block, len(names) - 1, odd_line)
        if verbatim is None:
            text = bom + block if first == 1 else block
            _copy_csv_slow(cursor, chain(io.BytesIO(text), stream), first, columns, reported, detect_header=False)
            return meta_names
        plain, odd = verbatim
        cursor.execute("SELECT setval('lq_line', %s, false)", [first])
        with cursor.copy(copy_sql) as copy:
            copy.write(plain)
        if odd:
            with cursor.copy("COPY lq_odd_line (line) FROM STDIN") as copy:
                copy.write("".join(f"{first + i}\n" for i in odd))
        rows = plain.count(b"\n")
        first += rows
        reported.add(rows)
    return meta_names


def _stage_column(name: str, columns: dict[str, int]) -> str:
    if name == "confidence":
        return "conf"
    if name in ("image", "label"):
        return name
    return f"m{[n for n in columns if n not in PREDICTION_COLUMNS].index(name)}"


def _blocks(stream: IO[bytes], pending: bytes) -> Iterator[bytes]:
    """Yield blocks of whole lines of about BLOCK_BYTES each."""
    while True:
        block = pending + stream.read(BLOCK_BYTES)
        pending = b""
        if not block:
            return
        if not block.endswith(b"\n"):
            block += stream.readline()
        yield block


def _verbatim_block(block: bytes, expected_commas: int, odd_line: re.Pattern[bytes]) -> tuple[bytes, list[int]] | None:
    """Return the block ready for COPY and the offsets of its lines that are not plain records, or None.

    None when COPY would read the block differently from the csv module: quotes, NUL, a lone CR, invalid UTF-8, or
    a line (blank lines included) with another number of fields.
    """
    if b'"' in block or b"\x00" in block:
        return None
    # A field longer than the csv module takes: only a block longer than that can hold one (blocks end on a line).
    if len(block) > MAX_FIELD_CHARS and any(len(f) > MAX_FIELD_CHARS for f in re.split(rb"[,\n]", block)):
        return None
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if b"\r" in block:
            return None
    if not block.endswith(b"\n"):
        block += b"\n"
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the Python reader names the line
    odd, line, counted = [], 0, 0
    for match in odd_line.finditer(block):
        if match.group().count(b",") != expected_commas:
            return None
        line += block.count(b"\n", counted, match.start())
        counted = match.start()
        odd.append(line)
    return block, odd


def _copy_csv_slow(
    cursor, lines: Iterable[bytes], first_line: int, columns, reported: _RowsRead, *, detect_header: bool
) -> None:
    errors = _StagedErrors()
    records = csv_prediction_records(lines, errors, first_line=first_line, columns=columns, detect_header=detect_header)
    _copy_records(cursor, errors, records, reported)


class _StagedErrors(ErrorList):
    """Send the reader's per-record problems into lq_stage, where they sort by line with the SQL-found ones."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple] = []

    def add(self, line: int | None, problem: str) -> None:
        self.pending.append((line, problem, None, None, None, None, None))


def _copy_records(cursor, errors: _StagedErrors, records, reported: _RowsRead) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    with cursor.copy("COPY lq_stage (line, err, image, label, conf, meta, pct) FROM STDIN (FORMAT csv)") as copy:
        written = 0
        for record in records:
            written += 1
            if errors.pending:
                writer.writerows(errors.pending)
                errors.pending.clear()
            # Checked here, as the Python reader checks it: these records are in Python already.
            try:
                image, label, confidence = check_prediction(record.image, record.label, record.confidence)
            except ValueError as exc:
                writer.writerow((record.line, str(exc), None, None, None, None, None))
            else:
                metadata, pct = json.dumps(record.metadata), has_percent_sign(record.confidence)
                writer.writerow((record.line, None, image, label, repr(confidence), metadata, pct))
            if buffer.tell() > COPY_FLUSH_CHARS:
                copy.write(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
                reported.add(written)
                written = 0
        writer.writerows(errors.pending)
        copy.write(buffer.getvalue())
        reported.add(written)


# Validation


def _check_odd_rows(cursor, meta_names: list[str]) -> None:
    """Run `check_prediction` over the verbatim lines that were not plain records; write the outcome to lq_fix."""
    cursor.execute(
        "CREATE TEMP TABLE lq_fix "
        "(line bigint PRIMARY KEY, err text, image text, label text, conf float8, skip bool, pct bool)"
    )
    cursor.execute("SELECT EXISTS (SELECT 1 FROM lq_odd_line)")
    if not cursor.fetchone()[0]:
        return
    extra = "".join(f", s.m{i}" for i in range(len(meta_names)))
    odd = connection.connection.cursor(name="lq_odd")
    try:
        odd.execute(f"SELECT s.line, s.image, s.label, s.conf{extra} FROM lq_stage s JOIN lq_odd_line USING (line)")
        while rows := odd.fetchmany(FETCH_ROWS):
            _copy_fixes(cursor, rows)
    finally:
        odd.close()


def _copy_fixes(cursor, rows: list[tuple]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for line, image, label, conf, *extra in rows:
        fields = [image or "", label or "", conf or "", *(e or "" for e in extra)]
        if not any(f.strip() for f in fields):
            # A line of blank fields copied verbatim: the csv reader skips such records, so skip it too.
            writer.writerow((line, None, None, None, None, True, None))
            continue
        try:
            clean_image, clean_label, confidence = check_prediction(*fields[:3])
        except ValueError as exc:
            writer.writerow((line, str(exc), None, None, None, False, None))
        else:
            writer.writerow(
                (line, None, clean_image, clean_label, repr(confidence), False, has_percent_sign(fields[2]))
            )
    with cursor.copy("COPY lq_fix (line, err, image, label, conf, skip, pct) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


def _materialise_rows(cursor, meta_names: list[str]) -> None:
    """Build lq_rows: one row per record with its clean fields, or its problem in `err`."""
    if meta_names:
        pairs = [f"%s, coalesce(s.m{i}, '')" for i in range(len(meta_names))]
        objects = (
            f"jsonb_build_object({', '.join(pairs[start : start + JSONB_PAIRS_PER_CALL])})"
            for start in range(0, len(pairs), JSONB_PAIRS_PER_CALL)
        )
        meta = f"coalesce(s.meta, {' || '.join(objects)})"
    else:
        meta = "coalesce(s.meta, '{}'::jsonb)"
    cursor.execute(
        f"""
        CREATE TEMP TABLE lq_rows AS
        SELECT s.line,
               coalesce(s.err, f.err) AS err,
               CASE WHEN f.line IS NULL THEN s.image ELSE f.image END AS image,
               CASE WHEN f.line IS NULL THEN s.label ELSE f.label END AS label,
               CASE WHEN s.err IS NOT NULL THEN NULL WHEN f.line IS NULL THEN s.conf::float8 ELSE f.conf END AS conf,
               {meta} AS meta,
               CASE WHEN f.line IS NULL THEN coalesce(s.pct, false) ELSE f.pct END AS pct
        FROM lq_stage s LEFT JOIN lq_fix f ON f.line = s.line
        WHERE f.skip IS NOT TRUE
        """,
        meta_names or None,
    )


def _validate(cursor, dataset: Dataset, confidence_scale: str, replace: bool, unit: str, *, duplicates: bool) -> float:
    """Refuse the file if any row is bad, naming the first lines as the Python reader would; return the scale.

    Without `duplicates`, images repeated within the file are left to the unique index to find, unless another
    problem turns up: a repeat changes which rows the later checks see, so then every check runs again with them.
    """
    if not duplicates:
        factor, valid = _find_problems(cursor, dataset, confidence_scale, replace, duplicates=False)
        if not _any_error(cursor):
            _raise_errors(cursor, dataset, unit, valid)  # only when no row is left to import
            return factor
    factor, valid = _find_problems(cursor, dataset, confidence_scale, replace, duplicates=True)
    _raise_errors(cursor, dataset, unit, valid)
    return factor


PERCENT_SIGN = "%"  # lq_err.err of a fraction-scale row that was written as a percentage


class _Found(IntEnum):
    """Which check found a problem. Problems are listed by line, as the Python reader (ErrorList) lists them."""

    ROW = 1  # a bad field, or an image repeated within the file
    ABOVE_FRACTION = 2  # above 1 in a file on the fraction scale
    IN_DATASET = 3  # the image is in the dataset already
    VOTED = 4  # replacing was asked for, but the image has votes
    IN_REVIEW = 5  # replacing was asked for, but the image is on a grid a reviewer has open
    GOLD = 6  # replacing was asked for, but the image is a gold item


def _find_problems(
    cursor, dataset: Dataset, confidence_scale: str, replace: bool, *, duplicates: bool
) -> tuple[float, str]:
    """Fill lq_err; return the confidence factor and the SQL condition that picks the rows without problems."""
    cursor.execute("DROP TABLE IF EXISTS lq_err, lq_replace")
    cursor.execute("CREATE TEMP TABLE lq_err (phase int, line bigint, err text, image text, first bigint, conf float8)")
    cursor.execute(
        "INSERT INTO lq_err (phase, line, err) SELECT %s, line, err FROM lq_rows WHERE err IS NOT NULL", [_Found.ROW]
    )
    if duplicates:
        _find_duplicates(cursor)
    # Rows that are neither bad nor repeats are the ones the later checks see, as in the Python reader.
    valid = "r.err IS NULL"
    if _any_error(cursor):
        valid += " AND NOT EXISTS (SELECT 1 FROM lq_err e WHERE e.line = r.line)"
    if confidence_scale == "auto":
        confidence_scale = "percent" if _percent_scale_shown(cursor, valid) else "fraction"
    if confidence_scale == "fraction":
        # A value written as a percentage is refused as one (err marks it), before any check of its size.
        cursor.execute(
            "INSERT INTO lq_err (phase, line, err, conf) SELECT %s, r.line, CASE WHEN r.pct THEN %s END, r.conf "
            f"FROM lq_rows r WHERE {valid} AND (r.conf > 1 OR r.pct)",
            [_Found.ABOVE_FRACTION, PERCENT_SIGN],
        )
    _check_existing(cursor, dataset, valid, replace)
    return (100.0 if confidence_scale == "fraction" else 1.0), valid


def _percent_scale_shown(cursor, valid: str) -> bool:
    """Whether a value above 1, or one written with a % sign, shows the file is on the percent scale."""
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM lq_rows r WHERE {valid} AND r.conf > 1)")
    if cursor.fetchone()[0]:
        return True
    # Only records parsed in Python can hold a sign: COPY takes a confidence verbatim only when it is a bare number.
    # A row refused for another reason (a repeated image) may count too; that changes nothing, as its file is refused.
    cursor.execute("SELECT EXISTS (SELECT 1 FROM lq_fix WHERE pct) OR EXISTS (SELECT 1 FROM lq_stage WHERE pct)")
    return cursor.fetchone()[0]


def _any_error(cursor) -> bool:
    cursor.execute("SELECT EXISTS (SELECT 1 FROM lq_err)")
    return cursor.fetchone()[0]


def _find_duplicates(cursor) -> None:
    cursor.execute(
        """
        INSERT INTO lq_err (phase, line, image, first)
        SELECT %s, r.line, r.image, d.first
        FROM lq_rows r
        JOIN (SELECT image, min(line) AS first FROM lq_rows WHERE err IS NULL GROUP BY image HAVING count(*) > 1) d
          ON d.image = r.image
        WHERE r.err IS NULL AND r.line > d.first
        """,
        [_Found.ROW],
    )


def _check_existing(cursor, dataset: Dataset, valid: str, replace: bool) -> None:
    """Find rows naming images already in the dataset: refused, or with `replace` noted in lq_replace."""
    cursor.execute(
        "CREATE TEMP TABLE lq_replace (line bigint PRIMARY KEY, image_id bigint, prediction_id bigint, batch_id bigint)"
    )
    if not Image.objects.filter(dataset=dataset).exists():
        return
    image, prediction, vote, lease, leased_gold, gold, batch = (
        m._meta.db_table for m in (Image, Prediction, Vote, Lease, LeasedGold, GoldItem, Batch)
    )
    cursor.execute(
        f"""
        INSERT INTO lq_replace (line, image_id, prediction_id, batch_id)
        SELECT r.line, i.id, p.id, p.batch_id
        FROM lq_rows r
        JOIN {image} i ON i.dataset_id = %s AND i.path = r.image
        LEFT JOIN {prediction} p ON p.image_id = i.id
        WHERE {valid}
        """,
        [dataset.pk],
    )
    if not replace:
        cursor.execute(
            "INSERT INTO lq_err (phase, line, image) "
            "SELECT %s, r.line, r.image FROM lq_replace x JOIN lq_rows r USING (line)",
            [_Found.IN_DATASET],
        )
        return
    # Held until the import commits, as leasing and submitting hold them: no vote or lease reaches these images
    # between the checks below and the write. (Imported votes wait on the dataset's row, which the import holds.)
    cursor.execute(f"SELECT id FROM {batch} WHERE id IN (SELECT batch_id FROM lq_replace) ORDER BY id FOR UPDATE")
    _refuse_replacing(cursor, _Found.VOTED, f"EXISTS (SELECT 1 FROM {vote} v WHERE v.prediction_id = x.prediction_id)")
    # Moving an item out of an open grid would drop the reviewer's vote on it; and the lease holds its batch. A grid
    # shows gold items of other batches too.
    on_open_grid = f"""
        EXISTS (SELECT 1 FROM {lease} l WHERE l.batch_id = x.batch_id AND l.submitted_at IS NULL
                                          AND l.expires_at > %(now)s)
        OR EXISTS (SELECT 1 FROM {leased_gold} g JOIN {lease} l ON l.id = g.lease_id
                   WHERE g.prediction_id = x.prediction_id AND l.submitted_at IS NULL AND l.expires_at > %(now)s)
    """
    # The clock leasing reads, not now(): that is when the import's transaction began, minutes ago for a big file.
    _refuse_replacing(cursor, _Found.IN_REVIEW, on_open_grid, {"now": timezone.now()})
    # A gold item's answer is about its label: a new label would score reviewers against a stale answer.
    _refuse_replacing(cursor, _Found.GOLD, f"EXISTS (SELECT 1 FROM {gold} g WHERE g.prediction_id = x.prediction_id)")


def _refuse_replacing(cursor, phase: _Found, condition: str, params: dict | None = None) -> None:
    """Refuse to replace the rows of lq_replace (`x`) that meet `condition`, each for its first reason only.

    The reasons are checked in the order of their phases, as the Python reader checks them one after the other.
    """
    cursor.execute(
        f"""
        INSERT INTO lq_err (phase, line, image)
        SELECT %(phase)s, r.line, r.image
        FROM lq_replace x JOIN lq_rows r USING (line)
        WHERE ({condition})
          AND NOT EXISTS (SELECT 1 FROM lq_err e WHERE e.line = r.line AND e.phase >= %(first)s)
        """,
        {"phase": phase, "first": _Found.VOTED, **(params or {})},
    )


def _raise_errors(cursor, dataset: Dataset, unit: str, valid: str) -> None:
    cursor.execute("SELECT count(*) FROM lq_err")
    (total,) = cursor.fetchone()
    if not total:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM lq_rows r WHERE {valid})")
        if not cursor.fetchone()[0]:
            raise RowsRejected([NO_ROWS_PROBLEM], 1)
        return
    cursor.execute(
        "SELECT phase, line, err, image, first, conf FROM lq_err ORDER BY line, phase LIMIT %s", [MAX_REPORTED_ERRORS]
    )
    messages = []
    for phase, line, err, image, first, conf in cursor.fetchall():
        messages.append(f"{unit} {line}: {_problem(dataset, unit, phase, err, image, first, conf)}")
    raise RowsRejected(messages, total, unit, _problem_kinds(cursor, dataset, unit) if total > len(messages) else [])


def _problem_kinds(cursor, dataset: Dataset, unit: str) -> list[ProblemKind]:
    """Sum the problems up by kind as ErrorList does: a field's problem by its text without values, others by check.

    Each kind is named by the problem of its first line, its values left out (rows.problem_kind).
    """
    cursor.execute(
        """
        SELECT phase, err, image, first, conf, n, line
        FROM (
            SELECT e.*, count(*) OVER kind AS n, row_number() OVER (kind ORDER BY line) AS k
            FROM lq_err e
            WINDOW kind AS (PARTITION BY phase, err IS NULL, regexp_replace(err, %s, '…', 'g'))
        ) kinds
        WHERE k = 1
        ORDER BY n DESC, line
        LIMIT %s
        """,
        [PROBLEM_VALUE, MAX_REPORTED_KINDS],
    )
    return [
        ProblemKind(problem_kind(_problem(dataset, unit, phase, err, image, first, conf)), count, line)
        for phase, err, image, first, conf, count, line in cursor.fetchall()
    ]


def _problem(dataset: Dataset, unit: str, phase: int, err: str | None, image, first, conf) -> str:
    if phase == _Found.ROW:
        return err if err is not None else duplicate_problem(image, first, unit)
    if phase == _Found.ABOVE_FRACTION:
        return percent_sign_problem(conf) if err == PERCENT_SIGN else fraction_problem(conf)
    if phase == _Found.VOTED:
        return voted_problem(image, dataset.name)
    if phase == _Found.IN_REVIEW:
        return in_review_problem(image, dataset.name)
    if phase == _Found.GOLD:
        return gold_problem(image, dataset.name)
    return existing_problem(image, dataset.name)


# Writing


def _write_or_name_duplicates(write: Callable[[], CopyResult], validate: Callable[..., float]) -> CopyResult:
    """Write every row; if the unique path index refuses a repeated image, undo the write and name the repeats."""
    try:
        with transaction.atomic():
            return write()
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) != IMAGE_PATH_UNIQUE:
            raise
        validate(duplicates=True)  # raises RowsRejected naming the repeats
        raise


@contextmanager
def _foreign_keys_by_construction(cursor, dataset: Dataset) -> Iterator[None]:
    """Skip the per-row foreign key checks for the rows written inside, whose references hold by construction.

    They refer only to this dataset, held here against deletion as a key check would hold it, and to images and
    batches this transaction inserts.
    """
    cursor.execute(f"SELECT 1 FROM {Dataset._meta.db_table} WHERE id = %s FOR KEY SHARE", [dataset.pk])
    with foreign_key_checks_skipped():
        yield


def _write(
    cursor, dataset: Dataset, factor: float, min_confidence: float | None, model_name: str, progress: ProgressCallback
) -> CopyResult:
    """Insert images, predictions and batches from lq_rows, set-based; with lq_replace rows, update in place."""
    image, prediction, batch = (m._meta.db_table for m in (Image, Prediction, Batch))
    # Rounded as in `scale_confidences`: 0.29 * 100 is 28.999999999999996 in binary, which a bucket edge at 29 (or
    # --min-confidence 29) would leave out. Through text, which is the shortest exact form since PostgreSQL 12: a
    # float8's cast to numeric keeps 15 digits and would round some values unlike Python.
    conf = "r.conf" if factor == 1 else f"round((r.conf * %(factor)s)::text::numeric, {SCALED_DIGITS})::float8"
    kept = f"r.err IS NULL AND {conf} >= %(min)s"
    params: dict[str, Any] = {
        "factor": factor,
        "min": min_confidence if min_confidence is not None else float("-inf"),
        "size": dataset.batch_size,
        "seed": dataset.shuffle_seed,
        "ds": dataset.pk,
        "model": model_name,
    }
    # Resolved once here: inside the big statements the lookup would run once per row.
    cursor.execute(
        f"SELECT pg_get_serial_sequence('{image}', 'id')::regclass::oid, "
        f"pg_get_serial_sequence('{batch}', 'id')::regclass::oid"
    )
    params["image_seq"], params["batch_seq"] = cursor.fetchone()
    cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE {kept}) FROM lq_rows r WHERE r.err IS NULL", params)
    total, imported = cursor.fetchone()
    progress(total, 0, total)
    # The rows are written a part at a time, whole labels to a part, so that progress moves during the write.
    cursor.execute(
        f"""
        CREATE TEMP TABLE lq_label AS
        SELECT label, count(*) AS n,
               ((sum(count(*)) OVER (ORDER BY label COLLATE "C"))::bigint - count(*)) / %(part_rows)s AS part
        FROM lq_rows r WHERE {kept} GROUP BY label
        """,
        {**params, "part_rows": PART_ROWS},
    )
    # Batch ids are drawn first, per (label, batch number), so the big inserts below only join to them.
    cursor.execute(
        """
        CREATE TEMP TABLE lq_batch AS
        SELECT l.label, g.k, nextval(%(batch_seq)s::oid::regclass) AS id
        FROM lq_label l, generate_series(0, (l.n - 1) / %(size)s) AS g(k)
        ORDER BY l.label, g.k
        """,
        params,
    )
    cursor.execute(
        f"""
        INSERT INTO {batch} (id, dataset_id, label, reviews_done, created_at)
        SELECT id, %(ds)s, label, 0, now() FROM lq_batch ORDER BY id
        """,
        params,
    )
    batches = cursor.rowcount
    # Without statistics the planner reads all of lq_rows badly once per part (+30% for a million rows).
    cursor.execute("ANALYZE lq_rows, lq_label, lq_batch")
    cursor.execute("SELECT part, sum(n)::bigint FROM lq_label GROUP BY part ORDER BY part")
    parts = cursor.fetchall()
    cursor.execute("SELECT count(*) FROM lq_replace")
    replacing = cursor.fetchone()[0] > 0
    # Items of a label are shuffled by a seeded hash so that a batch mixes confidence levels. The partition only
    # groups equal labels, so byte order (COLLATE "C") serves and sorts a million rows a third faster.
    source = f"""
        SELECT r.line, r.image, r.label, {conf} AS conf, r.meta,
               (row_number() OVER (PARTITION BY r.label COLLATE "C"
                                   ORDER BY hashtextextended(r.image, %(seed)s), r.line) - 1) / %(size)s AS k
        FROM lq_rows r JOIN lq_label l ON l.label = r.label
        WHERE {kept} AND l.part = %(part)s
    """
    if not replacing:
        statement = f"""
            WITH v AS ({source}),
            w AS (SELECT v.*, nextval(%(image_seq)s::oid::regclass) AS image_id, b.id AS batch_id
                  FROM v JOIN lq_batch b ON b.label = v.label AND b.k = v.k),
            images AS (INSERT INTO {image} (id, dataset_id, path, problem, thumbnail, metadata)
                       SELECT image_id, %(ds)s, image, '', '', meta FROM w)
            INSERT INTO {prediction} (dataset_id, image_id, label, confidence, model_name, top_k, batch_id,
                                      confirms, disconfirms, tally_stale)
            SELECT %(ds)s, image_id, label, conf, %(model)s, '[]', batch_id, 0, 0, false FROM w
        """
        with _foreign_keys_by_construction(cursor, dataset):
            _write_parts(cursor, statement, params, parts, progress, total)
        return CopyResult(imported, total - imported, batches, 0)
    unchecked = ", ".join(f"{field} = %(unchecked_{field})s" for field in UNCHECKED_IMAGE)
    params |= {f"unchecked_{field}": value for field, value in UNCHECKED_IMAGE.items()}
    statement = f"""
        WITH v AS ({source}),
        w AS (SELECT v.*, x.prediction_id, x.image_id AS old_image,
                     coalesce(x.image_id, nextval(%(image_seq)s::oid::regclass)) AS image_id,
                     b.id AS batch_id
              FROM v JOIN lq_batch b ON b.label = v.label AND b.k = v.k LEFT JOIN lq_replace x ON x.line = v.line),
        images AS (INSERT INTO {image} (id, dataset_id, path, problem, thumbnail, metadata)
                   SELECT image_id, %(ds)s, image, '', '', meta FROM w WHERE old_image IS NULL),
        metadata AS (UPDATE {image} i SET metadata = w.meta, {unchecked} FROM w WHERE w.old_image = i.id),
        updated AS (UPDATE {prediction} p
                    SET label = w.label, confidence = w.conf, model_name = %(model)s, top_k = '[]',
                        batch_id = w.batch_id, confirms = 0, disconfirms = 0, tally_stale = false
                    FROM w WHERE w.prediction_id = p.id)
        INSERT INTO {prediction} (dataset_id, image_id, label, confidence, model_name, top_k, batch_id,
                                  confirms, disconfirms, tally_stale)
        SELECT %(ds)s, image_id, label, conf, %(model)s, '[]', batch_id, 0, 0, false FROM w WHERE prediction_id IS NULL
    """
    _write_parts(cursor, statement, params, parts, progress, total)
    cursor.execute(
        f"""
        SELECT b.id FROM {batch} b
        WHERE b.id IN (SELECT batch_id FROM lq_replace)
          AND NOT EXISTS (SELECT 1 FROM {prediction} p WHERE p.batch_id = b.id)
        """
    )
    # Through the ORM: it deletes the emptied batches' expired leases (and their gold) with them.
    Batch.objects.filter(pk__in=[row[0] for row in cursor.fetchall()]).delete()
    cursor.execute(f"SELECT count(*) FROM lq_replace x JOIN lq_rows r USING (line) WHERE {kept}", params)
    return CopyResult(imported, total - imported, batches, cursor.fetchone()[0])


def _write_parts(cursor, statement: str, params: dict, parts: list[tuple[int, int]], progress, total: int) -> None:
    """Run the write statement for each part of the labels, reporting the rows written after each."""
    written = 0
    for part, rows in parts:
        cursor.execute(statement, {**params, "part": part})
        written += rows
        progress(total, written, total)
