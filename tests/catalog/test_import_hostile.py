"""Hostile and odd prediction files: each is imported or refused with its lines named, on both paths, never a crash.

The Python reader (the SQLite path) and predictions_import on PostgreSQL (the COPY path) are held to the same answer.
"""

import csv
import io
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from labelqa.catalog import pg_import, rows
from labelqa.catalog.models import Dataset, Image, Prediction
from labelqa.catalog.rows import (
    MAX_COLUMNS,
    MAX_JSON_DEPTH,
    MAX_QUOTED_CHARS,
    ErrorList,
    RowsRejected,
    json_array_items,
    read_prediction_rows,
)
from labelqa.catalog.services import predictions_import
from labelqa.review.gold import gold_rate_set
from tests.catalog.test_import_postgres import copy_verdict, counts, python_verdict


def imported(data: bytes, **options) -> Dataset:
    predictions_import(dataset_name="h", stream=io.BytesIO(data), images_root="/data", **options)
    return Dataset.objects.get(name="h")


@pytest.mark.django_db
def test_more_metadata_columns_than_a_function_takes_arguments_are_kept():
    """PostgreSQL built the metadata with one call of at most 100 arguments: 51 extra columns crashed the import."""
    names = [f"c{i}" for i in range(120)]
    data = ("image,label,confidence," + ",".join(names) + "\na.jpg,Cat,90," + ",".join(names) + "\n").encode()
    dataset = imported(data)
    assert Image.objects.get(dataset=dataset).metadata == {name: name for name in names}


@pytest.mark.django_db
def test_a_header_of_more_columns_than_can_be_read_is_refused_on_its_line():
    header = "image,label,confidence," + ",".join(f"c{i}" for i in range(MAX_COLUMNS))
    data = f"{header}\na.jpg,Cat,90{',x' * MAX_COLUMNS}\n".encode()
    refusal = f"line 1: the header has {MAX_COLUMNS + 3:,} columns; at most {MAX_COLUMNS:,} can be read"
    assert copy_verdict(data)[0][0].startswith(refusal)
    assert python_verdict(data)[0][0].startswith(refusal)


@pytest.mark.django_db
def test_metadata_nested_past_the_limit_is_refused_and_below_it_kept():
    """Stored 900 deep, it made every page that loads the image answer 500 (RecursionError reading it back)."""
    deep = {"image": "a.jpg", "label": "Cat", "confidence": 50, "m": json.loads("[" * 900 + "]" * 900)}
    data = json.dumps(deep).encode() + b"\n"
    problem = f"line 1: nests arrays or objects more than {MAX_JSON_DEPTH} deep; flatten the metadata"
    errors = ErrorList()
    list(read_prediction_rows(io.BytesIO(data), errors, "jsonl"))
    assert copy_verdict(data)[0] == errors.errors == [problem]
    fine = {"image": "a.jpg", "label": "Cat", "confidence": 50, "m": json.loads("[" * 10 + "]" * 10)}
    assert Image.objects.get(dataset=imported(json.dumps(fine).encode())).metadata["m"] == fine["m"]


@pytest.mark.django_db
def test_a_quote_inside_an_unquoted_field_does_not_shift_the_line_numbers():
    """`Ca"t` is a plain character to the csv module; counting it as an opening quote named line 1 three times."""
    data = b'a.jpg,Ca"t,90\nb.jpg,Dog,abc\nc.jpg,"Cow ""big""",abc\nd.jpg,Cow,x\n'
    expected = [
        "line 2: confidence 'abc' is not a number",
        "line 3: confidence 'abc' is not a number",
        "line 4: confidence 'x' is not a number",
    ]
    assert copy_verdict(data)[0] == python_verdict(data)[0] == expected


@pytest.mark.django_db
def test_a_huge_bad_value_is_quoted_by_its_start_only():
    """A 1 MiB path was quoted whole: a 20 MB file of them made a 40 MB progress answer."""
    data = b"../" + b"x" * 2**20 + b".jpg,Cat,50\na.jpg,Cat," + b"9" * 2**20 + b"\n"
    errors = copy_verdict(data)[0]
    assert errors == python_verdict(data)[0]
    assert errors[0].startswith("line 1: image path '../xxx") and "…' escapes the images root" in errors[0]
    assert errors[1].startswith("line 2: confidence '999") and errors[1].endswith("…' is above 100")
    assert all(len(error) < MAX_QUOTED_CHARS + 60 for error in errors)


@pytest.mark.django_db
def test_a_first_line_longer_than_the_csv_module_reads_by_default_is_checked_as_any_other():
    """Its 1 MiB field crashed the COPY path's head reader (the csv module stops at 128 KiB unless told)."""
    data = b"a.jpg," + b"L" * 2**20 + b",50\nb.jpg,Dog,abc\n"
    assert (
        copy_verdict(data)[0]
        == python_verdict(data)[0]
        == [
            "line 1: label is longer than 200 characters",
            "line 2: confidence 'abc' is not a number",
        ]
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "label",
    ["a\x85b", "\u202egpj.exe", "x\u2028y", "\u200b", "\u00ad\u200b"],
    ids=["C1 control", "text-direction mark", "line separator", "zero-width space", "only invisible"],
)
def test_a_label_with_hidden_characters_is_refused_as_typed_ones_are(label):
    data = f"a.jpg,{label},90\n".encode()
    [problem] = copy_verdict(data)[0]
    assert python_verdict(data)[0] == [problem]
    assert problem.startswith(f"line 1: label {label!r} ")
    assert problem.endswith(("invisible control character or text-direction mark", "only invisible characters"))


@pytest.mark.django_db
def test_a_percentage_in_a_file_said_to_hold_fractions_is_refused():
    """0.5% was stored as 50: the explicit scale multiplied what the file had written as a percentage already."""
    data = b"a.jpg,Cat,0.5%\nb.jpg,Dog,0.9\nc.jpg,Dog,2\n"
    expected = [
        "line 1: confidence 0.5% is written as a percentage but the scale is fraction; use the percent scale",
        "line 3: confidence 2.0 is above 1 but the scale is fraction",
    ]
    assert copy_verdict(data, "fraction")[0] == python_verdict(data, "fraction")[0] == expected
    dataset = imported(b"a.jpg,Cat,0.5%\nb.jpg,Dog,90\n", confidence_scale="percent")  # the two agree: kept as written
    assert sorted(Prediction.objects.filter(dataset=dataset).values_list("confidence", flat=True)) == [0.5, 90.0]


@pytest.mark.django_db
def test_a_second_byte_order_mark_is_kept_as_the_python_reader_keeps_it():
    data = b'\xef\xbb\xbf\xef\xbb\xbfa.jpg,"Cat",90\n'
    assert Image.objects.get(dataset=imported(data)).path == "\ufeffa.jpg"


def test_a_utf16_file_is_named_as_such_not_as_binary():
    data = "image,label,confidence\na.jpg,Cat,90\n".encode("utf-16")
    assert python_verdict(data)[0] == ["line 1: the file is UTF-16 text; save or export it as UTF-8"]


def test_a_ground_truth_item_with_a_raw_control_character_says_where():
    with pytest.raises(RowsRejected) as refused:
        list(json_array_items(io.BytesIO(b'[{"s3_image_url": "s3://b/a.jpg", "label": "C\x01at"}]')))
    assert refused.value.errors == ["item 1: not valid JSON (Invalid control character at character 45 of the item)"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--dataset", "x" * 101], "Ensure this value has at most 100 characters (it has 101)"),
        (["--dataset", "s3", "--images-root", "s3://"], "'s3://' names no bucket; write s3://bucket/prefix"),
        (["--dataset", "s3", "--images-root", "s3:///x"], "'s3:///x' names no bucket"),
    ],
)
def test_a_dataset_name_or_root_it_cannot_have_is_refused_in_one_line(tmp_path, options, problem):
    path = tmp_path / "p.csv"
    path.write_bytes(b"a.jpg,Cat,90\n")
    with pytest.raises(CommandError, match=f"nothing was imported: .*{re.escape(problem)}"):
        call_command("import_predictions", str(path), *options)
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_the_upload_form_refuses_a_relative_images_root(admin_user):
    """The worker would look it up in whatever directory it runs in; the command resolves one from where it runs."""
    client = Client()
    client.force_login(admin_user)
    form = {"dataset": "rel", "images_root": "labelqa/catalog/demo", "file_format": "auto", "confidence_scale": "auto"}
    form["file"] = io.BytesIO(b"a.jpg,Cat,90\n")
    form["file"].name = "p.csv"
    response = client.post("/datasets/", form)
    assert response.status_code == 200
    assert response.context["form"].errors["images_root"] == [
        "labelqa/catalog/demo is a relative path; give the directory's whole path, starting with /"
    ]
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_the_upload_and_classify_forms_refuse_a_new_name_with_a_direction_mark_on_its_field(admin_user, tmp_path):
    client = Client()
    client.force_login(admin_user)
    form = {"dataset": "pets\u202egpj", "images_root": str(tmp_path), "file_format": "auto", "confidence_scale": "auto"}
    form["file"] = io.BytesIO(b"a.jpg,Cat,90\n")
    form["file"].name = "p.csv"
    [problem] = client.post("/datasets/", form).context["form"].errors["dataset"]
    assert problem.startswith("A new dataset name may not contain C1 control characters or text-direction marks")
    response = client.post("/datasets/classify/", {"dataset": "pets\u202egpj", "source": str(tmp_path)})
    assert response.context["form"].errors["dataset"] == [problem]
    assert not Dataset.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["export_report", "export_labels"])
def test_an_export_of_a_name_in_another_encoding_says_so(command):
    with pytest.raises(CommandError, match=r"no dataset named 'bad\\udcffname': a dataset's name is UTF-8 text"):
        call_command(command, "--dataset", "bad\udcffname", "--format", "csv")


@pytest.mark.django_db
def test_ground_truth_items_one_per_line_or_one_alone_import_as_json_lines():
    """A single item not wrapped in an array was read as JSON Lines and refused for lacking 'image'."""
    items = [{"s3_image_url": f"s3://photos/set1/{n}.jpg", "label": "Cat", "confidence": 0.9} for n in range(2)]
    lines = "".join(json.dumps(item) + "\n" for item in items).encode()
    predictions_import(dataset_name="gt", stream=io.BytesIO(lines), images_root="s3://photos/set1")
    assert sorted(Image.objects.values_list("path", flat=True)) == ["0.jpg", "1.jpg"]
    outside = json.dumps({"s3_image_url": "s3://other/x.jpg", "label": "Cat", "confidence": 0.9}).encode()
    with pytest.raises(RowsRejected) as refused:
        predictions_import(dataset_name="gt", stream=io.BytesIO(outside), images_root="s3://photos/set1")
    assert refused.value.errors == [
        "line 1: image URL 's3://other/x.jpg' is not under the images root 's3://photos/set1'"
    ]


@pytest.mark.django_db
def test_a_dataset_saved_before_these_checks_keeps_working():
    """A relative root or a name with a text-direction mark was accepted before; such a dataset must still take
    imports and setting changes, while new datasets and new roots are held to the checks."""
    legacy = Dataset.objects.create(name="legacy\u200e", images_root="data/images")
    gold_rate_set(dataset=legacy, rate=0.1)
    predictions_import(dataset_name=legacy.name, stream=io.BytesIO(b"a.jpg,Cat,50\n"), batch_size=10)
    legacy.refresh_from_db()
    assert (legacy.gold_rate, legacy.batch_size, legacy.predictions.count()) == (0.1, 10, 1)

    legacy.images_root = "other/images"
    with pytest.raises(ValidationError, match="other/images is a relative path"):
        legacy.full_clean()
    with pytest.raises(ValueError, match="A new dataset name may not contain"):
        predictions_import(dataset_name="new\u200e", stream=io.BytesIO(b"a.jpg,Cat,50\n"), images_root="/data")


@pytest.mark.django_db
def test_a_second_byte_order_mark_survives_a_first_block_read_in_python():
    """A quote anywhere in the first block sends it to the Python reader, which dropped the BOM a second time."""
    data = b'\xef\xbb\xbf\xef\xbb\xbfa.jpg,Cat,90\nb.jpg,"Dog",80\n'
    assert sorted(Image.objects.filter(dataset=imported(data)).values_list("path", flat=True)) == [
        "b.jpg",
        "\ufeffa.jpg",
    ]
    lone = b"\xef\xbb\xbf\xef\xbb\xbf\nb.jpg,Dog,80\n"
    assert (
        copy_verdict(lone)[0]
        == python_verdict(lone)[0]
        == ["line 1: expected 3 fields image,label,confidence but found 1"]
    )


@pytest.mark.django_db
def test_a_field_longer_than_the_limit_is_refused_on_both_paths(monkeypatch):
    """COPY took any length, the Python reader refused it: a block holding one now goes to the Python reader."""
    monkeypatch.setattr(pg_import, "MAX_FIELD_CHARS", 1000)
    csv.field_size_limit(1000)
    try:
        data = b"image,label,confidence,note\na.jpg,Cat,50," + b"x" * 1001 + b"\nb.jpg,Dog,x,n\n"
        assert copy_verdict(data)[0] == python_verdict(data)[0] == ["line 2: field larger than field limit (1000)"]
    finally:
        csv.field_size_limit(rows.MAX_FIELD_CHARS)
