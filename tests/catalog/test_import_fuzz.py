"""Fuzzing the prediction importers: any input either imports or is refused as RowsRejected naming its bad lines.

Never another exception, and a refused file changes no row. Both paths are fuzzed: the pure Python reader (the
SQLite path) and `predictions_import` on the suite's database (the COPY path on PostgreSQL).
"""

import csv
import io
import itertools
import json
import re

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from labelqa.catalog.models import Dataset, Image, Prediction
from labelqa.catalog.pg_import import odd_line_pattern
from labelqa.catalog.rows import (
    NO_ROWS_PROBLEM,
    ErrorList,
    RowsRejected,
    check_prediction,
    detect_format,
    read_prediction_rows,
    scale_confidences,
)
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Batch

ROOT = "s3://photos/set1"
FORMATS = ("auto", "csv", "jsonl", "gt")
# A refusal names each bad line (or JSON item); only these concern the file as a whole.
WHOLE_FILE_PROBLEMS = (
    NO_ROWS_PROBLEM,
    "a Ground Truth input file must be a JSON array of objects, starting with [",
    "the file goes on after the closing ] of its JSON array",
)
LINE_MESSAGE = re.compile(r"(line|item) \d+: \S")
MORE_LINES = re.compile(r"\.\.\. and \d+ more bad (lines|items)")
# A JSON array has items, not lines: a bad byte in it is named by its offset.
BAD_UTF8 = re.compile(r"the file is not valid UTF-8 text \(near byte \d+\); export it as UTF-8")

# Values near the edge of valid: the importers must say what is wrong with each, or accept it.
images = st.one_of(
    st.sampled_from(
        ["a.jpg", "dir/b.png", "./c.jpg", "../up.jpg", "/abs.jpg", "x/../../y.jpg", "C:/win.jpg", "", " ", "é.jpg"]
    ),
    st.text(min_size=0, max_size=30),
    st.just("p" * 1001),
)
labels = st.one_of(
    st.sampled_from(["Dog", "Cat", "", " ", '"Dog, big"', "<script>alert(1)</script>", "L" * 201, "Ünïcode"]),
    st.text(max_size=20),
)
confidences = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10, max_value=200).map(str),
    st.sampled_from(["", "nan", "inf", "-0", "1e2", "50%", "0x10", "1_0", "high", "0.5", "100", "100.0001"]),
)
json_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10), images, labels)
# Valid values, so that whole files import too and the success branch is fuzzed as well.
good_images = st.from_regex(r"[a-z]{1,6}(/[a-z0-9]{1,6})?\.jpg", fullmatch=True)
good_labels = st.sampled_from(["Dog", "Cat", "Fox", "Ünïcode", "Dog, big"])
good_confidences = st.one_of(st.floats(0, 100).map(repr), st.integers(0, 100).map(str))
COLUMNS = ["image", "label", "confidence", "note"]


@st.composite
def csv_files(draw) -> bytes:
    clean = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n"] if clean else ["\n", "\r\n", "\r"]))
    columns = draw(st.permutations(COLUMNS)) if draw(st.booleans()) else None
    parts = (good_images, good_labels, good_confidences) if clean else (images, labels, confidences)
    rows = draw(
        st.lists(st.tuples(*parts, st.text(max_size=5)), min_size=clean, max_size=8, unique_by=lambda row: row[0])
    )
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=newline)
    if columns:
        writer.writerow(columns)
    for row in rows:
        fields = [dict(zip(COLUMNS, row, strict=True))[c] for c in columns] if columns else list(row[:3])
        if clean:
            writer.writerow(fields)
        else:  # written by hand, unquoted, with fewer or more fields than expected
            cut = draw(st.integers(min_value=0, max_value=len(fields) + 1))
            text.write(",".join(fields[:cut] if cut <= len(fields) else [*fields, "extra"]) + newline)
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + text.getvalue()).encode()


def json_objects(image_key: str, *, clean: bool, url_prefix: str = ""):
    if clean:
        return st.fixed_dictionaries(
            {
                image_key: good_images.map(lambda path: url_prefix + path),
                "label": good_labels,
                "confidence": st.one_of(st.floats(0, 100), st.integers(0, 100), good_confidences),
            },
            optional={"note": json_values},
        )
    keys = st.sampled_from([image_key, "image", "label", "confidence", "note"])
    return st.one_of(
        st.fixed_dictionaries(
            {image_key: images, "label": labels, "confidence": st.one_of(confidences, st.floats(), st.integers())}
        ),
        st.dictionaries(keys, json_values, max_size=4),
        json_values,
    )


def json_lists(draw, image_key: str, url_prefix: str = "") -> list:
    """A list of objects: all valid (image names unique) or any mix, half the time each."""
    if draw(st.booleans()):
        objects = json_objects(image_key, clean=True, url_prefix=url_prefix)
        return draw(st.lists(objects, min_size=1, max_size=6, unique_by=lambda o: o[image_key]))
    return draw(st.lists(json_objects(image_key, clean=False), max_size=6))


# Each was once an unhandled exception on the COPY path: text PostgreSQL cannot store, and values Python's json
# module gives up on with something other than JSONDecodeError.
HOSTILE_JSON_LINES = [
    "{",
    "not json",
    "[1]",
    "",
    '{"image": "a.jpg", "label": "\\u0000", "confidence": 90}',
    '{"image": "a.jpg", "label": "\\ud800", "confidence": 90}',
    '{"image": "a.jpg", "label": "Dog", "confidence": 90, "note": NaN}',
    '{"image": "a.jpg", "label": "Dog", "confidence": 90, "note": ' + "9" * 5000 + "}",
    '{"image": "a.jpg", "label": "Dog", "confidence": 90, "note": ' + "[" * 2000 + "]" * 2000 + "}",
]


@st.composite
def jsonl_files(draw) -> bytes:
    lines = [json.dumps(o) for o in json_lists(draw, "image")]
    if draw(st.integers(0, 3)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(HOSTILE_JSON_LINES)))
    return "\n".join(lines).encode()


@st.composite
def gt_files(draw) -> bytes:
    text = json.dumps(json_lists(draw, "s3_image_url", url_prefix=f"{ROOT}/"))
    if draw(st.booleans()):  # cut off anywhere
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


def with_format(data: st.SearchStrategy, file_format: str) -> st.SearchStrategy:
    """Pair files with their own format, or (a quarter of the time) with any other one."""
    return st.tuples(data, st.sampled_from([file_format] * 3 + [f for f in FORMATS if f != file_format]))


# (file, format to import it as): random bytes as any format, and the near-valid files as (mostly) their own.
files = st.one_of(
    st.tuples(st.binary(max_size=600), st.sampled_from(FORMATS)),
    with_format(csv_files(), "csv"),
    with_format(jsonl_files(), "jsonl"),
    with_format(gt_files(), "gt"),
)


def assert_names_its_lines(refusal: RowsRejected) -> None:
    assert refusal.errors and refusal.total >= len(refusal.errors)
    for message in refusal.message().splitlines():
        whole_file = message in WHOLE_FILE_PROBLEMS or BAD_UTF8.fullmatch(message)
        assert LINE_MESSAGE.match(message) or MORE_LINES.fullmatch(message) or whole_file, message


@settings(max_examples=150, deadline=None)
@given(file=files, scale=st.sampled_from(["auto", "percent", "fraction"]))
def test_the_python_reader_accepts_or_names_the_bad_lines_of_any_input(file, scale):
    data, file_format = file
    if file_format == "auto":
        file_format = detect_format(data[:4096])
    errors = ErrorList(unit="item" if file_format == "gt" else "line")
    try:
        rows = list(read_prediction_rows(io.BytesIO(data), errors, file_format, ROOT))
        scale_confidences(rows, scale, errors)
        errors.raise_if_any()
    except RowsRejected as refusal:
        event("refused")
        assert_names_its_lines(refusal)
    else:
        event("imported")
        assert rows and all(0 <= row.confidence <= 100 and row.label and row.image for row in rows)


def counts() -> tuple[int, int, int, int]:
    return Dataset.objects.count(), Image.objects.count(), Prediction.objects.count(), Batch.objects.count()


dataset_names = (f"fuzz-{n}" for n in itertools.count())


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=files)
# Found by this test: a lone CR in the first line reached the csv module unguarded on the COPY path.
@example(file=(b"image,label,confidence\ra.jpg,Dog,90", "auto"))
def test_predictions_import_imports_or_refuses_any_input_and_a_refusal_changes_nothing(file):
    data, file_format = file
    before = counts()
    try:
        summary = predictions_import(
            dataset_name=next(dataset_names), stream=io.BytesIO(data), images_root=ROOT, file_format=file_format
        )
    except RowsRejected as refusal:
        event("refused")
        assert_names_its_lines(refusal)
        assert counts() == before
    else:
        event("imported")
        datasets, images_, predictions, _ = counts()
        assert (datasets, images_, predictions) == (
            before[0] + 1,
            before[1] + summary.imported,
            before[2] + summary.imported,
        )
        assert summary.imported > 0


# Fields as they stand in a line COPY takes verbatim (no comma, quote, line break or NUL): near-clean and random.
verbatim_text = st.text(st.characters(blacklist_characters=',"\n\r\x00', blacklist_categories=["Cs"]), max_size=14)
near_clean = {
    "image": st.from_regex(r"[A-Za-z0-9_. /()+~-]{1,16}", fullmatch=True),
    "label": st.from_regex(r"[ -+\--~é]{0,12}", fullmatch=True),
    "conf": st.from_regex(r"[0-9]{0,3}(\.[0-9]{0,2})?", fullmatch=True),
}
clean = {
    "image": st.from_regex(r"[a-z0-9_][a-z0-9_.()+~ -]{0,8}(/[a-z0-9_][a-z0-9_.]{0,6})?", fullmatch=True),
    "label": st.from_regex(r"[A-Z]([a-zé ]{0,8}[a-z])?", fullmatch=True),
    "conf": st.from_regex(r"[0-9]{1,2}(\.[0-9]{0,2})?|100", fullmatch=True),
}
verbatim_fields = {name: st.one_of(clean[name], clean[name], near_clean[name], verbatim_text) for name in near_clean}
verbatim_fields["m0"] = verbatim_text


SEED_COLUMNS = ["image", "label", "conf"]


@settings(max_examples=400, deadline=None)
@given(columns=st.permutations(list(verbatim_fields)), fields=st.fixed_dictionaries(verbatim_fields))
# Each a field one step from clean, which the pattern must leave to check_prediction.
@example(columns=SEED_COLUMNS, fields={"image": "a.jpg ", "label": "Dog", "conf": "90"})
@example(columns=SEED_COLUMNS, fields={"image": "a/./b.jpg", "label": "Dog", "conf": "90"})
@example(columns=SEED_COLUMNS, fields={"image": "p" * 1001, "label": "Dog", "conf": "90"})
@example(columns=SEED_COLUMNS, fields={"image": "a.jpg", "label": "L" * 201, "conf": "90"})
@example(columns=SEED_COLUMNS, fields={"image": "a.jpg", "label": "Dog ", "conf": "90"})
@example(columns=SEED_COLUMNS, fields={"image": "a.jpg", "label": "Dog", "conf": "100.01"})
@example(columns=SEED_COLUMNS, fields={"image": "a.jpg", "label": "Dog", "conf": "1e2"})
def test_a_line_the_copy_path_takes_as_it_is_is_what_check_prediction_makes_of_it(columns, fields):
    line = ",".join(fields[name] for name in columns).encode() + b"\n"
    if odd_line_pattern(columns).match(line):
        event("odd: checked in Python")
        return
    event("plain: taken as it is")
    assert check_prediction(fields["image"], fields["label"], fields["conf"]) == (
        fields["image"],
        fields["label"],
        float(fields["conf"]),
    )


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.one_of(st.none(), st.integers(min_value=1, max_value=10_000)), max_size=300))
def test_the_error_list_reports_the_first_lines_in_order_whatever_order_they_were_found_in(lines):
    errors = ErrorList()
    for number, line in enumerate(lines):
        errors.add(line, f"problem {number}")
    # Problems of the whole file first, then by line; the same line in the order found.
    expected = sorted(enumerate(lines), key=lambda item: (item[1] or 0, item[0]))[:100]
    assert errors.errors == [
        f"line {line}: problem {number}" if line is not None else f"problem {number}" for number, line in expected
    ]
    assert errors.total == len(lines)
