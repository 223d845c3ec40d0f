"""export_report and export_labels on a small table whose answers are worked out by hand."""

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command, load_command_class

from labelqa.analytics.exports import labels_csv, labels_jsonl
from labelqa.analytics.management.commands import export_labels as export_labels_command
from labelqa.catalog.models import Dataset
from labelqa.catalog.services import predictions_import
from labelqa.review.corrections import correction_lease, correction_submit, corrections_open
from labelqa.review.models import Correction
from tests.conftest import make_user
from tests.live import ROOT, live_env

PREDICTIONS = """image,label,confidence
d1.jpg,Dog,81
d2.jpg,Dog,86
d3.jpg,Dog,96
d4.jpg,Dog,99
d5.jpg,Dog,100
c1.jpg,Cat,97
c2.jpg,Cat,50
"""
# d1: 2 confirms -> confirmed; d2: confirm+disconfirm -> split (unanimous) / split (majority tie);
# d3: 2 disconfirms; d4: 2 confirms + 1 disconfirm -> split (unanimous) / confirmed (majority);
# d5 unreviewed; c1 confirmed; c2 is below 80 and not in the report.
VOTES = """image,reviewer,verdict
d1.jpg,r1,confirm
d1.jpg,r2,confirm
d2.jpg,r1,confirm
d2.jpg,r2,disconfirm
d3.jpg,r1,disconfirm
d3.jpg,r2,disconfirm
d4.jpg,r1,confirm
d4.jpg,r2,confirm
d4.jpg,r3,disconfirm
c1.jpg,r1,confirm
c2.jpg,r1,disconfirm
"""


@pytest.fixture
def voted(db, tmp_path):
    predictions_import(dataset_name="zoo", stream=io.BytesIO(PREDICTIONS.encode()), images_root=str(tmp_path))
    votes = tmp_path / "votes.csv"
    votes.write_text(VOTES)
    call_command("import_votes", str(votes), "--dataset", "zoo")


def export(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_json_report_matches_the_hand_computed_table(voted):
    report = json.loads(export("export_report", "--dataset", "zoo", "--format", "json"))
    assert report["edges"] == [80, 85, 90, 95, 100]
    assert report["consensus"] == "unanimous" and report["max_error_ratio"] == 0.1
    (dog,) = (c for c in report["classes"] if c["label"] == "Dog")
    assert (dog["total"], dog["reviewed"], dog["confirmed"], dog["disconfirmed"], dog["split"]) == (5, 4, 1, 1, 2)
    assert dog["accuracy"] == 0.25
    buckets = [(b["low"], b["high"], b["total"], b["reviewed"], b["incorrect"], b["accuracy"]) for b in dog["buckets"]]
    assert buckets == [(80, 85, 1, 1, 0, 1.0), (85, 90, 1, 1, 1, 0.0), (90, 95, 0, 0, 0, None), (95, 100, 3, 2, 2, 0.0)]
    assert dog["threshold"] == 100 and dog["withhold"] is True
    (cat,) = (c for c in report["classes"] if c["label"] == "Cat")
    assert (cat["total"], cat["reviewed"], cat["confirmed"]) == (1, 1, 1)
    assert cat["threshold"] == 80 and cat["withhold"] is False
    assert report["totals"]["total"] == 6 and report["totals"]["reviewed"] == 5
    # Averages skip classes without data in a column instead of counting them as 0%.
    assert report["class_average"]["buckets"] == [1.0, 0.0, None, 0.5]
    assert report["class_average"]["accuracy"] == pytest.approx((0.25 + 1.0) / 2)


def test_majority_consensus_breaks_the_two_to_one_vote(voted):
    report = json.loads(export("export_report", "--dataset", "zoo", "--consensus", "majority"))
    (dog,) = (c for c in report["classes"] if c["label"] == "Dog")
    assert (dog["confirmed"], dog["disconfirmed"], dog["split"]) == (2, 1, 1)


def test_the_csv_report_has_the_seed_layout(voted, tmp_path):
    out = tmp_path / "report.csv"
    call_command("export_report", "--dataset", "zoo", "--format", "csv", "--edges", "80,90,100", "--out", str(out))
    rows = list(csv.reader(out.open()))
    assert rows[0][:6] == ["label", "total", "confirmed", "disconfirmed", "split", "% correct"]
    assert rows[0][6:9] == ["80-90 total", "80-90 incorrect", "80-90 % correct"]
    assert [r[0] for r in rows[1:]] == ["Cat", "Dog", "TOTALS", "CLASS AVERAGE"]


def test_bad_edges_are_refused_with_a_clear_message(voted):
    with pytest.raises(CommandError, match="strictly increasing"):
        export("export_report", "--dataset", "zoo", "--edges", "90,80")
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        export("export_report", "--dataset", "nope")
    for flag in ("--edges", "--max-error-ratio"):  # as `--edges "$EDGES"` gives with the variable unset
        with pytest.raises(CommandError, match=f"^{flag} is empty: give a value such as .*, or leave the flag out$"):
            export("export_report", "--dataset", "zoo", flag, " ")


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_labels_writes_each_confidence_as_stored(tmp_path, fmt):
    """Rounded to four places, 84.99999999999999 became 85.0: in the 85-90 bucket, where the report had 80-85."""
    stored = ["84.99999999999999", "99.73238372802734", "94.99999", "80"]
    text = "".join(f"i{n}.jpg,Dog,{value}\n" for n, value in enumerate(stored))
    predictions_import(dataset_name="precise", stream=io.BytesIO(text.encode()), images_root=str(tmp_path))
    out = export("export_labels", "--dataset", "precise", "--format", fmt)
    rows = csv.DictReader(io.StringIO(out)) if fmt == "csv" else map(json.loads, out.splitlines())
    assert [float(row["confidence"]) for row in rows] == [float(value) for value in stored]
    report = json.loads(export("export_report", "--dataset", "precise", "--format", "json"))
    assert [bucket["total"] for bucket in report["classes"][0]["buckets"]] == [2, 0, 1, 1]


@pytest.mark.parametrize("command", ["export_report", "export_labels"])
def test_an_out_path_that_cannot_be_written_is_refused_with_a_clear_message(voted, tmp_path, command):
    with pytest.raises(CommandError, match=r"cannot write .*missing/r\.csv: No such file or directory; give a file"):
        export(command, "--dataset", "zoo", "--format", "csv", "--out", str(tmp_path / "missing" / "r.csv"))
    with pytest.raises(CommandError, match="Is a directory$"):
        export(command, "--dataset", "zoo", "--format", "csv", "--out", str(tmp_path))


def test_export_labels_gives_one_row_per_image_with_its_status(voted):
    rows = list(csv.DictReader(io.StringIO(export("export_labels", "--dataset", "zoo", "--format", "csv"))))
    assert list(rows[0]) == ["image", "label", "confidence", "status", "confirms", "disconfirms", "corrected_label"]
    assert {r["corrected_label"] for r in rows} == {""}  # no correction pass has run
    assert [r["image"] for r in rows] == sorted(r["image"] for r in rows), "one row per image, in image order"
    status = {r["image"]: (r["status"], r["confirms"], r["disconfirms"]) for r in rows}
    assert status == {
        "c1.jpg": ("confirmed", "1", "0"),
        "c2.jpg": ("disconfirmed", "0", "1"),
        "d1.jpg": ("confirmed", "2", "0"),
        "d2.jpg": ("split", "1", "1"),
        "d3.jpg": ("disconfirmed", "0", "2"),
        "d4.jpg": ("split", "2", "1"),
        "d5.jpg": ("unreviewed", "0", "0"),
    }
    lines = export("export_labels", "--dataset", "zoo", "--format", "jsonl", "--consensus", "majority").splitlines()
    assert {json.loads(line)["image"]: json.loads(line)["status"] for line in lines}["d4.jpg"] == "confirmed"


def test_export_labels_ends_each_row_with_the_agreed_correction(voted, eager_celery, tmp_path):
    """d3 (disconfirmed) gets Wolf from two of three reviewers; c2's two answers tie, so it stays unresolved."""
    dataset = Dataset.objects.get(name="zoo")
    corrections_open(dataset=dataset, corrections_per_item=3)
    for name, labels in {"k1": ("Wolf", "Fox"), "k2": ("Wolf", "Cat"), "k3": ("Fox",)}.items():
        user = make_user(name, "reviewer")
        for label in labels:
            lease = correction_lease(reviewer=user, dataset=dataset)
            correction_submit(reviewer=user, token=str(lease.token), label=label)
    assert set(Correction.objects.values_list("prediction__image__path", "label")) == {
        ("d3.jpg", "Wolf"),
        ("d3.jpg", "Fox"),
        ("c2.jpg", "Fox"),
        ("c2.jpg", "Cat"),
    }
    rows = list(csv.reader(io.StringIO(export("export_labels", "--dataset", "zoo", "--format", "csv"))))
    assert rows[0][-1] == "corrected_label" and all(len(r) == 7 for r in rows)
    corrected = {r[0]: r[-1] for r in rows[1:]}
    assert corrected.pop("d3.jpg") == "Wolf" and set(corrected.values()) == {""}
    lines = export("export_labels", "--dataset", "zoo", "--format", "jsonl").splitlines()
    records = {json.loads(line)["image"]: json.loads(line) for line in lines}
    assert list(records["d3.jpg"]) == [
        "image",
        "label",
        "confidence",
        "status",
        "confirms",
        "disconfirms",
        "corrected_label",
    ]
    assert records["d3.jpg"]["corrected_label"] == "Wolf" and records["c2.jpg"]["corrected_label"] == ""

    # Three more reviewers confirm d3: by majority the model was right, so no correction stands beside "confirmed".
    votes = "image,reviewer,verdict\n" + "".join(f"d3.jpg,r{n},confirm\n" for n in (4, 5, 6))
    (tmp_path / "more.csv").write_text(votes)
    call_command("import_votes", str(tmp_path / "more.csv"), "--dataset", "zoo")
    by_majority = export("export_labels", "--dataset", "zoo", "--format", "jsonl", "--consensus", "majority")
    d3 = next(record for record in map(json.loads, by_majority.splitlines()) if record["image"] == "d3.jpg")
    assert (d3["status"], d3["corrected_label"]) == ("confirmed", "")
    unanimous = export("export_labels", "--dataset", "zoo", "--format", "jsonl", "--consensus", "unanimous")
    d3 = next(record for record in map(json.loads, unanimous.splitlines()) if record["image"] == "d3.jpg")
    assert (d3["status"], d3["corrected_label"]) == ("split", "Wolf")


@pytest.fixture
def formulas(db, tmp_path):
    rows = "image,label,confidence\n=1+2.jpg,-1,90\na.jpg,@SUM(A1),90\nb.jpg,=1+2,95\nc.jpg,+1,99\n"
    predictions_import(dataset_name="formulas", stream=io.BytesIO(rows.encode()), images_root=str(tmp_path))


def test_csv_exports_show_formulas_as_text_and_json_keeps_values(formulas):
    """Labels and file names come from outside; opened in a spreadsheet, =, @, + or - would start a formula."""
    rows = list(csv.DictReader(io.StringIO(export("export_labels", "--dataset", "formulas", "--format", "csv"))))
    assert {r["image"]: r["label"] for r in rows} == {
        "'=1+2.jpg": "-1",  # a plain number is no formula
        "a.jpg": "'@SUM(A1)",
        "b.jpg": "'=1+2",
        "c.jpg": "+1",
    }
    lines = export("export_labels", "--dataset", "formulas", "--format", "jsonl").splitlines()
    assert {json.loads(line)["image"]: json.loads(line)["label"] for line in lines}["=1+2.jpg"] == "-1"
    assert {json.loads(line)["label"] for line in lines} == {"-1", "@SUM(A1)", "=1+2", "+1"}
    report = export("export_report", "--dataset", "formulas", "--format", "csv")
    labels = [row[0] for row in csv.reader(io.StringIO(report))][1:-2]  # between the header and TOTALS
    assert sorted(labels) == sorted(["-1", "'@SUM(A1)", "'=1+2", "+1"])
    report_json = json.loads(export("export_report", "--dataset", "formulas", "--format", "json"))
    assert {entry["label"] for entry in report_json["classes"]} == {"-1", "@SUM(A1)", "=1+2", "+1"}


@pytest.mark.parametrize("render", [labels_csv, labels_jsonl])
def test_export_labels_writes_what_the_renderer_makes_byte_for_byte(voted, tmp_path, render):
    expected = "".join(render(Dataset.objects.get(name="zoo")))
    file_format = "csv" if render is labels_csv else "jsonl"
    assert export("export_labels", "--dataset", "zoo", "--format", file_format) == expected
    call_command("export_labels", "--dataset", "zoo", "--format", file_format, "--out", str(tmp_path / "l"))
    assert (tmp_path / "l").read_bytes() == expected.encode()


def test_export_labels_writes_each_row_as_it_is_made(voted, monkeypatch):
    out, written_before_the_second = io.StringIO(), []

    def two_rows(dataset, *, consensus):
        yield "first\n"
        written_before_the_second.append(out.getvalue())
        yield "second\n"

    monkeypatch.setattr(export_labels_command, "labels_csv", two_rows)
    call_command("export_labels", "--dataset", "zoo", stdout=out)
    assert written_before_the_second == ["first\n"] and out.getvalue() == "first\nsecond\n"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["export_report", "export_labels"])
def test_a_reader_that_closes_the_pipe_early_ends_the_export_quietly(eager_celery, voted, command):
    # A pipe whose reading end is closed before the command starts: its first write fails, as behind `| head -1`.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        finished = subprocess.run(
            [sys.executable, "manage.py", command, "--dataset", "zoo", "--format", "csv"],
            cwd=ROOT,
            env=live_env("", LABELQA_LOG_LEVEL="WARNING"),  # no broker: not the eager mode's notice either
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (finished.returncode, finished.stderr.decode()) == (0, "")


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        (
            "export_report",
            [
                "--format {json,csv} (default: json)",
                "--edges EDGES Bucket edges in percent (default: 80,85,90,95,100).",
                "--max-error-ratio MAX_ERROR_RATIO Incorrect per correct allowed above the threshold (default: 0.1,",
                "(default: the dataset's own policy, set in the admin; unanimous for a new dataset)",
            ],
        ),
        ("export_labels", ["--format {csv,jsonl} (default: csv)", "(default: the dataset's own policy, set in"]),
    ],
)
def test_the_help_shows_each_default(command, defaults):
    parser = load_command_class("labelqa.analytics", command).create_parser("manage.py", command)
    help_text = " ".join(parser.format_help().split())
    for default in defaults:
        assert default in help_text
