"""import_predictions: good files land with their batches; any bad line refuses the whole file."""

import io
import math

import pytest
from django.core.management import CommandError, call_command

from labelqa.catalog.management.commands.import_predictions import Command
from labelqa.catalog.models import Dataset, Image, Prediction
from labelqa.catalog.rows import RowsRejected
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Batch


def counts() -> tuple[int, int, int, int]:
    return Dataset.objects.count(), Image.objects.count(), Prediction.objects.count(), Batch.objects.count()


def write(tmp_path, text: str | bytes, name="predictions.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.django_db
def test_the_seed_headerless_format_imports_with_full_batches_of_one_label(tmp_path, capsys):
    rows = [f"images/crayfish-image_{i:04d}.jpg,Crawdad,{90 + i / 10:.2f}" for i in range(27)]
    rows += ["images/cat-1.jpg,Cat,85.5"]
    call_command("import_predictions", str(write(tmp_path, "\n".join(rows))), "--dataset", "seed")

    dataset = Dataset.objects.get(name="seed")
    assert dataset.images_root == str(tmp_path.resolve())
    assert Prediction.objects.filter(dataset=dataset).count() == 28
    sizes = sorted((b.label, b.predictions.count()) for b in Batch.objects.filter(dataset=dataset))
    assert sizes == [("Cat", 1), ("Crawdad", 2), ("Crawdad", 25)]
    assert Prediction.objects.get(image__path="images/crayfish-image_0003.jpg").confidence == pytest.approx(90.3)
    assert "Imported 28 predictions" in capsys.readouterr().out


@pytest.mark.django_db
def test_one_prediction_in_one_batch_is_reported_in_the_singular(tmp_path):
    out = io.StringIO()
    call_command("import_predictions", str(write(tmp_path, "a.jpg,Dog,90\n")), "--dataset", "one", stdout=out)
    assert out.getvalue() == "Imported 1 prediction into 'one' in 1 batch\n"


@pytest.mark.django_db
def test_a_headed_csv_keeps_extra_columns_as_metadata_and_reads_fractions(tmp_path):
    text = '\ufeffimage,source,label,confidence\r\na.jpg,cam 1,"Dog, large",0.97\r\nb.jpg,cam 2,Cat,0.5\r\n'
    call_command("import_predictions", str(write(tmp_path, text)), "--dataset", "headed")
    dog = Prediction.objects.get(image__path="a.jpg")
    assert dog.label == "Dog, large"
    assert dog.confidence == pytest.approx(97.0)
    assert dog.image.metadata == {"source": "cam 1"}


@pytest.mark.django_db
def test_min_confidence_skips_rows_below_it(tmp_path):
    text = "a.jpg,Dog,79.9\nb.jpg,Dog,80\nc.jpg,Dog,99\n"
    call_command("import_predictions", str(write(tmp_path, text)), "--dataset", "d", "--min-confidence", "80")
    assert sorted(Image.objects.values_list("path", flat=True)) == ["b.jpg", "c.jpg"]


@pytest.mark.django_db
def test_batch_size_and_reviews_per_item_are_stored_on_the_dataset(tmp_path):
    text = "".join(f"{i}.jpg,Dog,90\n" for i in range(7))
    call_command(
        "import_predictions",
        str(write(tmp_path, text)),
        "--dataset",
        "d",
        "--batch-size",
        "3",
        "--reviews-per-item",
        "2",
    )
    dataset = Dataset.objects.get(name="d")
    assert (dataset.batch_size, dataset.reviews_per_item) == (3, 2)
    assert sorted(b.predictions.count() for b in dataset.batches.all()) == [1, 3, 3]


BAD_FILES = {
    "non-numeric": ("a.jpg,Dog,90\nb.jpg,Dog,high\n", ["line 2: confidence 'high' is not a number"]),
    "nan": ("a.jpg,Dog,nan\n", ["line 1: confidence 'nan' is not a finite number"]),
    "digits with underscores": ("a.jpg,Dog,1_0\n", ["line 1: confidence '1_0' is not a number"]),
    "digits of another script": ("a.jpg,Dog,\u0669\u0660\n", ["line 1: confidence '\u0669\u0660' is not a number"]),
    "negative": ("a.jpg,Dog,-1\n", ["line 1: confidence '-1' is negative"]),
    "over 100": ("a.jpg,Dog,100.5\n", ["line 1: confidence '100.5' is above 100"]),
    "missing field": ("a.jpg,Dog\n", ["line 1: expected 3 fields image,label,confidence but found 2"]),
    "empty label": ("a.jpg, ,90\n", ["line 1: label is empty"]),
    "duplicate": ("a.jpg,Dog,90\nb.jpg,Dog,91\na.jpg,Cat,92\n", ["line 3: image 'a.jpg' already appears on line 1"]),
    "escape": ("../etc/passwd,Dog,90\n", ["line 1: image path '../etc/passwd' escapes the images root"]),
    "absolute": ("/etc/passwd,Dog,90\n", ["line 1: image path '/etc/passwd' is absolute"]),
    "invalid utf-8": (b"a.jpg,Dog,90\nb\xff.jpg,Dog,90\n", ["line 2: not valid UTF-8 text (byte"]),
    "empty file": ("", ["the file holds no prediction rows"]),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["line 1: not valid UTF-8 text (byte", "binary file"]),
    "nul bytes": (b"a.jpg,Dog,90\nb.jpg\x00,Dog,90\n", ["line 2: contains NUL bytes"]),
    "label dot": (
        "a.jpg,.,90\nb.jpg,..,90\nc.jpg,a/../b,90\nd.jpg,x/.,90\ne.jpg,./y,90\nf.jpg,v1.0/a..b,90\n",
        [
            "line 1: label '.' cannot name a class",
            "line 2: label '..' cannot",
            "line 3: label 'a/../b' cannot name a class: a '.' or '..' part",
            "line 4: label 'x/.' cannot",
            "line 5: label './y' cannot",
        ],
    ),
    "control character in label": (
        'a.jpg,"Cat\nDog",90\nb.jpg,Ca\x01t,90\n',
        ["line 1: label 'Cat\\nDog' contains a control character", "line 3: label 'Ca\\x01t' contains a control"],
    ),
    "path names the root": ("images/..,Dog,90\n", ["line 1: image path 'images/..' names the images root"]),
    "control character in path": ('"a\tb.jpg",Dog,90\n', ["line 1: image path 'a\\tb.jpg' contains a control"]),
    "column named twice": (
        "image,label,confidence,Label\na.jpg,Dog,90,Cat\n",
        ["line 1: the header names 'label' more than once; rename or drop the copy"],
    ),
    "metadata column named twice": (
        'image,label,note,confidence,note\na.jpg,Dog,x,90\n"b.jpg",Dog,x,90,y\n',
        ["line 1: the header names 'note' more than once"],
    ),
}


@pytest.mark.django_db
def test_past_the_first_hundred_lines_every_problem_still_shows_by_kind(tmp_path):
    """120 bad confidences used to hide the one path that leaves the images root."""
    text = "".join(f"{i}.jpg,Dog,x{i}\n" for i in range(120)) + "../up.jpg,Dog,90\nok.jpg,,90\n"
    with pytest.raises(CommandError) as error:
        call_command("import_predictions", str(write(tmp_path, text)), "--dataset", "bad")
    assert str(error.value).endswith(
        "line 100: confidence 'x99' is not a number\n"
        "... and 22 more bad lines\n"
        "the 122 bad lines by problem, most frequent first:\n"
        "  120 × confidence … is not a number (first on line 1)\n"
        "  1 × image path … escapes the images root (first on line 121)\n"
        "  1 × label is empty (first on line 122)"
    )


@pytest.mark.django_db
def test_a_label_may_hold_dots_within_its_parts(tmp_path):
    call_command("import_predictions", str(write(tmp_path, "a.jpg,v1.0/a..b,90\nb.jpg,...,90\n")), "--dataset", "dots")
    assert sorted(Prediction.objects.values_list("label", flat=True)) == ["...", "v1.0/a..b"]


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_exits_non_zero_naming_the_line_and_changes_nothing(tmp_path, case):
    text, expected = BAD_FILES[case]
    before = counts()
    with pytest.raises(CommandError) as error:
        call_command("import_predictions", str(write(tmp_path, text)), "--dataset", "bad")
    for fragment in expected:
        assert fragment in str(error.value)
    assert "nothing was imported" in str(error.value)
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("minimum", ["101", "nan", "-1"])
def test_a_minimum_confidence_outside_0_to_100_is_refused_before_anything_is_made(tmp_path, minimum):
    with pytest.raises(CommandError, match=f"percent from 0 to 100, not {minimum}"):
        call_command(
            "import_predictions", str(write(tmp_path, "a.jpg,Dog,90\n")), "--dataset", "d", "--min-confidence", minimum
        )
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_a_negative_zero_confidence_is_stored_as_zero(tmp_path):
    call_command(
        "import_predictions", str(write(tmp_path, "a.jpg,Dog,-0\nb.jpg,Dog,-0.0e1\nc.jpg,Dog,90\n")), "--dataset", "d"
    )
    zeros = Prediction.objects.filter(image__path__in=["a.jpg", "b.jpg"]).values_list("confidence", flat=True)
    assert [math.copysign(1, c) for c in zeros] == [1, 1]


@pytest.mark.django_db
def test_more_predictions_from_a_file_elsewhere_read_their_images_from_the_datasets_root(tmp_path):
    first, later = tmp_path / "first", tmp_path / "later"
    first.mkdir(), later.mkdir()
    call_command("import_predictions", str(write(first, "a.jpg,Dog,90\n")), "--dataset", "d")
    call_command("import_predictions", str(write(later, "b.jpg,Dog,80\n")), "--dataset", "d")
    assert Dataset.objects.get(name="d").images_root == str(first.resolve())
    assert Prediction.objects.filter(dataset__name="d").count() == 2


@pytest.mark.django_db
def test_an_images_root_that_is_not_here_is_imported_with_a_warning(tmp_path):
    missing = tmp_path / "mount"
    errors = io.StringIO()
    call_command(
        "import_predictions",
        str(write(tmp_path, "a.jpg,Dog,90\n")),
        "--dataset",
        "d",
        "--images-root",
        str(missing),
        stdout=io.StringIO(),
        stderr=errors,
    )
    assert errors.getvalue() == (
        f"warning: images root {missing} does not exist here; the images will be flagged missing until it does\n"
    )
    assert Dataset.objects.get(name="d").images_root == str(missing)
    assert Prediction.objects.filter(dataset__name="d").count() == 1

    errors = io.StringIO()
    missing.mkdir()
    more = write(tmp_path, "b.jpg,Dog,90\n", name="more.csv")
    call_command("import_predictions", str(more), "--dataset", "d", stdout=io.StringIO(), stderr=errors)
    assert errors.getvalue() == ""


@pytest.mark.django_db
def test_only_the_first_100_bad_lines_are_listed_then_a_count(tmp_path):
    text = "".join(f"{i}.jpg,Dog,x\n" for i in range(130))
    with pytest.raises(RowsRejected) as error:
        predictions_import(dataset_name="d", stream=io.BytesIO(text.encode()), images_root=str(tmp_path))
    assert len(error.value.errors) == 100 and error.value.total == 130
    assert error.value.message().splitlines()[100:] == [
        "... and 30 more bad lines",
        "the 130 bad lines by problem, most frequent first:",
        "  130 × confidence … is not a number (first on line 1)",
    ]
    assert error.value.errors[0] == "line 1: confidence 'x' is not a number"


@pytest.mark.django_db
def test_an_image_already_in_the_dataset_is_refused(pets, tmp_path):
    before = counts()
    with pytest.raises(RowsRejected) as error:
        predictions_import(
            dataset_name="pets",
            stream=io.BytesIO(b"new.jpg,Dog,90\nimages/dog-0001.jpg,Dog,90\n"),
            images_root=pets.images_root,
        )
    assert error.value.errors == ["line 2: image 'images/dog-0001.jpg' is already in dataset 'pets'"]
    assert counts() == before


@pytest.mark.django_db
def test_a_quoted_label_spanning_lines_keeps_later_line_numbers_right(tmp_path):
    text = 'a.jpg,"Dog\nlarge",90\nb.jpg,Cat,bad\n'
    with pytest.raises(RowsRejected) as error:
        predictions_import(dataset_name="d", stream=io.BytesIO(text.encode()), images_root=str(tmp_path))
    assert error.value.errors == [
        "line 1: label 'Dog\\nlarge' contains a control character (a line break, tab or the like)",
        "line 3: confidence 'bad' is not a number",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--dataset", "team/pets"], "dataset name 'team/pets': A dataset name may not contain a slash"),
        (["--dataset", ".."], "dataset name '..': A dataset name may not contain a slash"),
        # Shown right to left from the mark on, "pets\u202egpj.exe" reads "petsexe.jpg".
        (["--dataset", "pets\u202egpj.exe"], r"dataset name 'pets\\u202egpj\.exe': A new dataset name may not"),
    ],
)
def test_a_dataset_it_cannot_have_is_refused_in_one_line(tmp_path, options, problem):
    with pytest.raises(CommandError, match="nothing was imported: " + problem):
        call_command("import_predictions", str(write(tmp_path, "a.jpg,Dog,90\n")), *options)
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "problem"),
    [
        (["--batch-size", "30"], "argument --batch-size: Ensure this value is less than or equal to 25."),
        (["--batch-size", "many"], "argument --batch-size: “many” value must be an integer."),
        (["--reviews-per-item", "0"], "argument --reviews-per-item: Ensure this value is greater than or equal to 1."),
    ],
)
def test_a_dataset_setting_out_of_range_is_refused_naming_its_flag(tmp_path, option, problem):
    with pytest.raises(CommandError) as refused:
        call_command("import_predictions", str(write(tmp_path, "a.jpg,Dog,90\n")), "--dataset", "d", *option)
    assert str(refused.value).endswith(problem)
    assert counts() == (0, 0, 0, 0)


def test_the_help_says_what_an_omitted_setting_means_and_what_the_confidence_scales_are():
    help_text = " ".join(Command().create_parser("manage.py", "import_predictions").format_help().split())
    assert "Images per review batch, 1–25 (a new dataset: 25; an existing one keeps its own)." in help_text
    assert "Distinct reviewers per batch, 1–25 (a new dataset: 1; an existing one keeps its own)." in help_text
    assert (
        "--confidence-scale {auto,percent,fraction} percent: confidences are 0–100; fraction: 0–1, turned into "
        "percent; auto (the default): percent when any confidence in the file exceeds 1 or has a % sign, else "
        "fraction." in help_text
    )
