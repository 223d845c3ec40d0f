"""import_predictions beyond CSV: JSON Lines, Ground Truth input files, and --replace, through both importers."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from labelqa.catalog import services
from labelqa.catalog.models import UNCHECKED_IMAGE, Dataset, Image, Prediction
from labelqa.catalog.rows import RowsRejected, detect_format
from labelqa.catalog.services import predictions_import
from labelqa.review.gold import gold_mark
from labelqa.review.models import Batch, Lease, LeasedGold, Vote
from labelqa.review.services import batch_lease
from tests.conftest import row_locked

ROOT = "s3://photos/set1"


class _AsSQLite:
    """The suite's PostgreSQL connection, but saying it is SQLite: predictions_import then takes its Python path."""

    vendor = "sqlite"

    def __getattr__(self, name):
        return getattr(connection, name)


@pytest.fixture(autouse=True, params=["COPY path", "Python path"])
def import_path(request, monkeypatch):
    """Run every test here through both importers: they must give the same rows and the same messages."""
    if request.param == "Python path":
        monkeypatch.setattr(services, "connection", _AsSQLite())
        monkeypatch.setattr(services.pg_import, "predictions_copy", _copy_path_not_taken)
    return request.param


def _copy_path_not_taken(**kwargs):
    raise AssertionError("the COPY path ran where the Python path was asked for")


def counts() -> tuple[int, int, int, int, int]:
    return (
        Dataset.objects.count(),
        Image.objects.count(),
        Prediction.objects.count(),
        Batch.objects.count(),
        Vote.objects.count(),
    )


def write(tmp_path, text: str | bytes, name: str):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def jsonl(*objects) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


def gt(*items) -> str:
    return json.dumps(list(items), indent=1)


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b'  \n{"image": "a.jpg"}', "x.csv", "jsonl"),
        (b'\xef\xbb\xbf[{"s3_image_url": ""}]', "x.txt", "gt"),
        (b"a.jpg,Dog,90\n", "x.jsonl", "jsonl"),
        (b"", "x.json", "gt"),
        (b"a.jpg,Dog,90\n", "x.csv", "csv"),
        (b"[2020] a.jpg,Dog,90\n", "x.csv", "csv"),
        (b"{a}.jpg,Dog,90\n", "x.txt", "csv"),
        (b"[\n", "x.txt", "gt"),
    ],
)
def test_the_format_comes_from_a_json_start_else_the_extension(head, name, expected):
    assert detect_format(head, name) == expected


@pytest.mark.django_db
def test_json_lines_import_with_extra_keys_as_metadata(tmp_path):
    text = jsonl(
        {"image": "a.jpg", "label": "Dog", "confidence": 97.5, "camera": "north", "rank": 1},
        {"image": "b.jpg", "label": "Cat", "confidence": "50"},
    )
    call_command("import_predictions", str(write(tmp_path, "\n" + text, "p.jsonl")), "--dataset", "j")
    dog = Prediction.objects.get(image__path="a.jpg")
    assert (dog.label, dog.confidence) == ("Dog", pytest.approx(97.5))
    assert dog.image.metadata == {"camera": "north", "rank": 1}
    assert Batch.objects.filter(dataset__name="j").count() == 2


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("a.jpg,Dog,0.5%\nb.jpg,Dog,0.9\n", "p.csv"),  # one sign sets the scale for the file
        ('a.jpg,Dog,"0.5 % "\nb.jpg,Dog,0.9\n', "p.csv"),  # quoted: the CSV is read in Python throughout
        (
            jsonl(
                {"image": "a.jpg", "label": "Dog", "confidence": "0.5%"},
                {"image": "b.jpg", "label": "Dog", "confidence": 0.9},
            ),
            "p.jsonl",
        ),
    ],
)
@pytest.mark.django_db
def test_a_percent_sign_puts_the_file_on_the_percent_scale_even_with_every_value_below_1(tmp_path, text, name):
    call_command("import_predictions", str(write(tmp_path, text, name)), "--dataset", "p")
    confidences = dict(Prediction.objects.values_list("image__path", "confidence"))
    assert confidences == {"a.jpg": pytest.approx(0.5), "b.jpg": pytest.approx(0.9)}


@pytest.mark.django_db
def test_auto_reads_fractions_while_no_value_exceeds_1(tmp_path):
    """DESIGN.md: percent only when a value exceeds 1, so a file whose top confidence is exactly 1 holds fractions."""
    call_command("import_predictions", str(write(tmp_path, "a.jpg,Dog,1\nb.jpg,Dog,0.5\n", "p.csv")), "--dataset", "f")
    assert dict(Prediction.objects.values_list("image__path", "confidence")) == {"a.jpg": 100.0, "b.jpg": 50.0}
    call_command(
        "import_predictions", str(write(tmp_path, "c.jpg,Dog,1.5\nd.jpg,Dog,0.5\n", "q.csv")), "--dataset", "g"
    )
    assert dict(Prediction.objects.filter(dataset__name="g").values_list("image__path", "confidence")) == {
        "c.jpg": 1.5,
        "d.jpg": 0.5,
    }


@pytest.mark.django_db
def test_fractions_become_the_percent_they_name_not_a_hair_below_it(tmp_path):
    # In binary 0.29 * 100 is 28.999999999999996: a bucket edge at 29 or --min-confidence 29 would leave it out.
    text = "a.jpg,Fox,0.29\nb.jpg,Fox,0.57\nc.jpg,Fox,0.07\nd.jpg,Fox,0.28\n"
    path = write(tmp_path, text, "p.csv")
    call_command(
        "import_predictions", str(path), "--dataset", "f", "--confidence-scale", "fraction", "--min-confidence", "29"
    )
    confidences = dict(Prediction.objects.values_list("image__path", "confidence"))
    assert confidences == {"a.jpg": 29.0, "b.jpg": 57.0}


@pytest.mark.django_db
def test_json_lines_are_recognised_by_content_whatever_the_extension(tmp_path):
    text = jsonl({"image": "a.jpg", "label": "Dog", "confidence": 0.9})
    call_command("import_predictions", str(write(tmp_path, text, "p.csv")), "--dataset", "j")
    assert Prediction.objects.get().confidence == pytest.approx(90.0)


BAD_JSONL = {
    "not json": ('{"image": "a.jpg", "label": "Dog", "confidence": 90}\n{"image": \n', ["line 2: not valid JSON ("]),
    "missing key": (jsonl({"image": "a.jpg", "label": "Dog"}), ["line 1: missing 'confidence'"]),
    "not an object": (jsonl({"image": "a.jpg", "label": "Dog", "confidence": 9}, [1, 2]), ["line 2: expected"]),
    "label not text": (jsonl({"image": "a.jpg", "label": 3, "confidence": 9}), ["line 1: label must be a string"]),
    "bad confidence": (jsonl({"image": "a.jpg", "label": "Dog", "confidence": None}), ["line 1: confidence 'null'"]),
    "escape": (
        jsonl({"image": "../x.jpg", "label": "Dog", "confidence": 9}),
        ["line 1: image path '../x.jpg' escapes"],
    ),
    "duplicate": (
        jsonl(*({"image": p, "label": "Dog", "confidence": 9} for p in ["a.jpg", "b.jpg", "./a.jpg"])),
        ["line 3: image 'a.jpg' already appears on line 1"],
    ),
    "s3 url without s3 root": (
        jsonl({"image": "s3://photos/set1/a.jpg", "label": "Dog", "confidence": 9}),
        ["line 1: image URL 's3://photos/set1/a.jpg' needs an s3://bucket/prefix images root"],
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(BAD_JSONL))
def test_a_bad_json_lines_file_names_the_line_and_changes_nothing(tmp_path, case):
    text, expected = BAD_JSONL[case]
    before = counts()
    with pytest.raises(CommandError) as error:
        call_command("import_predictions", str(write(tmp_path, text, "p.jsonl")), "--dataset", "bad")
    for fragment in expected:
        assert fragment in str(error.value)
    assert counts() == before


@pytest.mark.django_db
def test_a_ground_truth_file_stores_paths_relative_to_the_s3_root(tmp_path):
    text = gt(
        {"s3_image_url": f"{ROOT}/images/a.jpg", "label": "Dog", "confidence": 0.93, "job": "gt-1"},
        {"s3_image_url": f"{ROOT}/images/b.jpg", "label": "Dog", "confidence": 0.41},
    )
    path = write(tmp_path, text, "input.manifest")
    call_command("import_predictions", str(path), "--dataset", "gt", "--images-root", ROOT)
    assert Dataset.objects.get(name="gt").images_root == ROOT
    assert sorted(Image.objects.values_list("path", flat=True)) == ["images/a.jpg", "images/b.jpg"]
    a = Prediction.objects.get(image__path="images/a.jpg")
    assert a.confidence == pytest.approx(93.0) and a.image.metadata == {"job": "gt-1"}


@pytest.mark.django_db
def test_a_ground_truth_file_uses_the_datasets_own_s3_root_when_none_is_given(tmp_path):
    predictions_import(dataset_name="gt", stream=io.BytesIO(b"old.jpg,Dog,90\n"), images_root=ROOT)
    path = write(tmp_path, gt({"s3_image_url": f"{ROOT}/new.jpg", "label": "Cat", "confidence": 80}), "in.json")
    call_command("import_predictions", str(path), "--dataset", "gt")
    assert sorted(Image.objects.values_list("path", flat=True)) == ["new.jpg", "old.jpg"]


BAD_GT = {
    "outside the root": (
        gt(
            {"s3_image_url": f"{ROOT}/a.jpg", "label": "Dog", "confidence": 90},
            {"s3_image_url": "s3://photos/set2/b.jpg", "label": "Dog", "confidence": 90},
        ),
        ["item 2: image URL 's3://photos/set2/b.jpg' is not under the images root 's3://photos/set1'"],
    ),
    "prefix lookalike": (
        gt({"s3_image_url": "s3://photos/set10/a.jpg", "label": "Dog", "confidence": 90}),
        ["item 1: image URL 's3://photos/set10/a.jpg' is not under"],
    ),
    "escape": (
        gt({"s3_image_url": f"{ROOT}/../set2/a.jpg", "label": "Dog", "confidence": 90}),
        ["item 1: image path '../set2/a.jpg' escapes the images root"],
    ),
    "missing key": (gt({"image": f"{ROOT}/a.jpg", "label": "Dog", "confidence": 90}), ["item 1: missing"]),
    "duplicate": (
        gt(*({"s3_image_url": f"{ROOT}/a.jpg", "label": "Dog", "confidence": c} for c in (90, 91))),
        ["item 2: image 'a.jpg' already appears on item 1"],
    ),
    "broken json": (
        '[{"s3_image_url": "s3://photos/set1/a.jpg", "label": "Dog", "confidence": 9}, {"x": ]',
        ["item 2: not valid JSON ("],
    ),
    "not an array": ('{"s3_image_url": 1}', ["line 1: missing"]),
    "trailing garbage": ("[] []", ["after the closing ]"]),
    "over 100": (gt({"s3_image_url": f"{ROOT}/a.jpg", "label": "Dog", "confidence": 101}), ["item 1: confidence"]),
}


@pytest.mark.django_db
def test_a_ground_truth_file_with_many_bad_items_counts_the_rest_as_items(tmp_path):
    items = gt(*({"s3_image_url": f"{ROOT}/{i}.jpg", "label": "Dog", "confidence": "x"} for i in range(105)))
    with pytest.raises(CommandError) as error:
        call_command(
            "import_predictions", str(write(tmp_path, items, "in.json")), "--dataset", "d", "--images-root", ROOT
        )
    assert "item 100: confidence 'x' is not a number\n... and 5 more bad items" in str(error.value)


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(BAD_GT))
def test_a_bad_ground_truth_file_names_the_item_and_changes_nothing(tmp_path, case):
    text, expected = BAD_GT[case]
    before = counts()
    with pytest.raises(CommandError) as error:
        call_command(
            "import_predictions", str(write(tmp_path, text, "in.json")), "--dataset", "bad", "--images-root", ROOT
        )
    for fragment in expected:
        assert fragment in str(error.value)
    assert counts() == before


@pytest.mark.django_db
def test_a_ground_truth_file_needs_an_s3_images_root(tmp_path):
    before = counts()
    path = write(tmp_path, gt({"s3_image_url": f"{ROOT}/a.jpg", "label": "Dog", "confidence": 9}), "in.json")
    with pytest.raises(CommandError, match="s3://bucket/prefix"):
        call_command("import_predictions", str(path), "--dataset", "gt", "--images-root", str(tmp_path))
    assert counts() == before


@pytest.mark.django_db
def test_a_large_ground_truth_file_is_read_in_blocks(tmp_path, monkeypatch):
    items = [{"s3_image_url": f"{ROOT}/i/{n:05d}.jpg", "label": f"L{n % 3}", "confidence": n % 100} for n in range(700)]
    path = write(tmp_path, gt(*items), "in.json")
    from labelqa.catalog import rows

    original = rows.json_array_items
    monkeypatch.setattr(rows, "json_array_items", lambda stream: original(stream, block=97))
    call_command("import_predictions", str(path), "--dataset", "gt", "--images-root", ROOT)
    assert Prediction.objects.count() == 700
    assert Prediction.objects.get(image__path="i/00042.jpg").confidence == pytest.approx(42.0)


# --replace


@pytest.mark.django_db
def test_without_replace_an_existing_image_is_refused_with_a_hint(pets, tmp_path):
    before = counts()
    with pytest.raises(CommandError) as error:
        call_command(
            "import_predictions",
            str(write(tmp_path, "images/dog-0001.jpg,Cat,90\n", "p.csv")),
            "--dataset",
            "pets",
            "--images-root",
            pets.images_root,
        )
    assert "line 1: image 'images/dog-0001.jpg' is already in dataset 'pets'" in str(error.value)
    assert "--replace" in str(error.value)
    assert counts() == before


@pytest.mark.django_db
def test_replace_overwrites_unreviewed_predictions_and_rebatches_them(pets):
    old = Prediction.objects.get(image__path="images/cat-0003.jpg")
    old_batch = old.batch_id
    summary = predictions_import(
        dataset_name="pets",
        stream=io.BytesIO(b"image,label,confidence,note\nimages/cat-0003.jpg,Fox,88,relabelled\nnew.jpg,Fox,70,\n"),
        images_root=pets.images_root,
        replace=True,
    )
    assert (summary.imported, summary.replaced) == (2, 1)
    replaced = Prediction.objects.get(pk=old.pk)
    assert (replaced.label, replaced.confidence) == ("Fox", 88.0)
    assert replaced.image.metadata == {"note": "relabelled"}
    assert replaced.batch.label == "Fox" and replaced.batch_id != old_batch
    assert Prediction.objects.filter(dataset=pets).count() == 67
    assert Batch.objects.get(pk=old_batch).predictions.count() == 9
    # Every prediction is in exactly one batch of its own label.
    assert not Prediction.objects.filter(dataset=pets, batch__isnull=True).exists()
    assert all(p.batch.label == p.label for p in Prediction.objects.filter(dataset=pets).select_related("batch"))


@pytest.mark.django_db
def test_replace_has_the_replaced_images_checked_again_and_no_others(pets):
    checked = {"thumbnail": "thumbnails/old.webp", "problem": "could not be read", "unusable": True}
    Image.objects.filter(dataset=pets).update(**checked)
    predictions_import(
        dataset_name="pets",
        stream=io.BytesIO(b"images/cat-0003.jpg,Fox,88\n"),
        images_root=pets.images_root,
        replace=True,
    )
    fields = list(checked)
    assert Image.objects.filter(path="images/cat-0003.jpg").values(*fields).get() == UNCHECKED_IMAGE
    others = Image.objects.filter(dataset=pets).exclude(path="images/cat-0003.jpg")
    assert others.exists() and not others.exclude(**checked).exists()


@pytest.mark.django_db
def test_replace_drops_batches_it_empties(pets):
    cats = list(Prediction.objects.filter(dataset=pets, label="Cat").values_list("image__path", flat=True))
    batch_ids = set(Prediction.objects.filter(dataset=pets, label="Cat").values_list("batch_id", flat=True))
    text = "".join(f"{path},Dog,91\n" for path in cats).encode()
    predictions_import(dataset_name="pets", stream=io.BytesIO(text), images_root=pets.images_root, replace=True)
    assert not Batch.objects.filter(pk__in=batch_ids).exists()
    assert Prediction.objects.filter(dataset=pets, label="Cat").count() == 0


@pytest.mark.django_db
def test_replace_refuses_items_with_votes_and_keeps_the_votes(pets, reviewer):
    voted = Prediction.objects.get(image__path="images/dog-0002.jpg")
    Vote.objects.create(prediction=voted, reviewer=reviewer, confirm=True)
    before = counts()
    with pytest.raises(RowsRejected) as error:
        predictions_import(
            dataset_name="pets",
            stream=io.BytesIO(b"images/dog-0001.jpg,Cat,90\nimages/dog-0002.jpg,Cat,90\n"),
            images_root=pets.images_root,
            replace=True,
        )
    assert error.value.errors == [
        "line 2: image 'images/dog-0002.jpg' in dataset 'pets' already has votes; "
        "its prediction cannot be replaced without losing them"
    ]
    assert counts() == before
    assert Prediction.objects.get(image__path="images/dog-0001.jpg").label == "Dog"
    assert Vote.objects.get().prediction_id == voted.pk


@pytest.mark.django_db
def test_replace_refuses_items_on_an_open_grid_and_drops_expired_leases_of_emptied_batches(pets, reviewer, reviewer2):
    """A leased batch's lease kept the emptied batch from being deleted: a traceback on PostgreSQL."""
    cats = list(Prediction.objects.filter(dataset=pets, label="Cat").values_list("image__path", flat=True))
    lease = batch_lease(reviewer=reviewer, dataset=pets, label="Cat")
    text = "".join(f"{path},Dog,91\n" for path in cats).encode()
    before = counts()
    with pytest.raises(RowsRejected) as error:
        predictions_import(dataset_name="pets", stream=io.BytesIO(text), images_root=pets.images_root, replace=True)
    assert error.value.total == len(cats)
    assert error.value.errors[0] == (
        f"line 1: image {cats[0]!r} in dataset 'pets' is on a grid a reviewer has open; "
        "import again once the reviewer has submitted it or its lease has run out"
    )
    assert counts() == before and Lease.objects.filter(pk=lease.pk).exists()

    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    predictions_import(dataset_name="pets", stream=io.BytesIO(text), images_root=pets.images_root, replace=True)
    assert not Batch.objects.filter(pk=lease.batch_id).exists() and not Lease.objects.exists()
    assert Prediction.objects.filter(dataset=pets, label="Cat").count() == 0


@pytest.mark.django_db
def test_replace_refuses_gold_items_and_gold_on_an_open_grid(pets, reviewer):
    """A replaced gold item kept its answer about the old label, so reviewers were scored against a stale one."""
    gold, shown = Prediction.objects.filter(dataset=pets, label="Dog").order_by("pk")[:2]
    gold_mark(prediction=gold, expect_confirm=True, truth="Dog")
    lease = batch_lease(reviewer=reviewer, dataset=pets, label="Cat")
    LeasedGold.objects.create(lease=lease, prediction=shown, reviewer=reviewer)  # once gold, unmarked since
    before = counts()
    text = f"{gold.image.path},Cat,90\n{shown.image.path},Cat,90\nimages/dog-0029.jpg,Cat,90\n".encode()
    with pytest.raises(RowsRejected) as error:
        predictions_import(dataset_name="pets", stream=io.BytesIO(text), images_root=pets.images_root, replace=True)
    assert error.value.errors == [
        f"line 1: image {gold.image.path!r} in dataset 'pets' is a gold item, whose answer is about its label; "
        "unmark it on the gold page (/review/gold/) before replacing its prediction",
        f"line 2: image {shown.image.path!r} in dataset 'pets' is on a grid a reviewer has open; "
        "import again once the reviewer has submitted it or its lease has run out",
    ]
    assert counts() == before and Prediction.objects.get(pk=gold.pk).label == "Dog"


@pytest.mark.django_db
def test_a_line_to_replace_gets_its_first_replace_problem_beside_its_other_problems(pets, reviewer):
    """PostgreSQL left out the open grid when the line's confidence was bad too; the Python path named both."""
    lease = batch_lease(reviewer=reviewer, dataset=pets, label="Cat")
    cat = Prediction.objects.filter(batch_id=lease.batch_id).first().image.path
    with pytest.raises(RowsRejected) as error:
        predictions_import(
            dataset_name="pets",
            stream=io.BytesIO(f"{cat},Dog,5\n".encode()),
            confidence_scale="fraction",
            replace=True,
        )
    assert error.value.errors == [
        "line 1: confidence 5.0 is above 1 but the scale is fraction",
        f"line 1: image {cat!r} in dataset 'pets' is on a grid a reviewer has open; "
        "import again once the reviewer has submitted it or its lease has run out",
    ]


def checked_before_the_write(monkeypatch, check) -> list:
    """Make either importer call `check()` just before it writes; return the list its answers go into."""
    answers = []

    def wrapped(original):
        def write(*args, **kwargs):
            answers.append(check())
            return original(*args, **kwargs)

        return write

    monkeypatch.setattr(services, "_create_predictions", wrapped(services._create_predictions))
    monkeypatch.setattr(services.pg_import, "_write", wrapped(services.pg_import._write))
    return answers


@pytest.mark.django_db(transaction=True)
def test_while_replace_writes_no_vote_or_lease_can_reach_the_batches_it_checked(pets, monkeypatch):
    """It checked for votes and open grids, then wrote: a reviewer submitting in between had their votes moved."""
    cat_batch = Prediction.objects.filter(dataset=pets, label="Cat").first().batch_id
    dog_batch = Prediction.objects.filter(dataset=pets, label="Dog").first().batch_id
    # A submit or a lease locks its batch first.
    locked = checked_before_the_write(
        monkeypatch, lambda: {batch: row_locked("review_batch", batch) for batch in (cat_batch, dog_batch)}
    )
    cat = Prediction.objects.filter(batch_id=cat_batch).first().image.path
    predictions_import(
        dataset_name="pets", stream=io.BytesIO(f"{cat},Dog,90\n".encode()), images_root=pets.images_root, replace=True
    )
    assert locked == [{cat_batch: True, dog_batch: False}]


@pytest.mark.django_db(transaction=True)
def test_vote_and_gold_imports_wait_for_a_prediction_import_into_their_dataset(pets, monkeypatch):
    """Votes imported during a --replace import's write landed on predictions it then moved to another label."""
    with transaction.atomic():
        services.dataset_for_import("pets")  # how votes_import and gold_import find their dataset
        assert row_locked("catalog_dataset", pets.pk)
    assert not row_locked("catalog_dataset", pets.pk)
    locked = checked_before_the_write(monkeypatch, lambda: row_locked("catalog_dataset", pets.pk))
    predictions_import(dataset_name="pets", stream=io.BytesIO(b"images/cat-0001.jpg,Dog,90\n"), replace=True)
    assert locked == [True]


@pytest.mark.django_db
def test_replace_through_the_command_says_how_many_were_replaced(pets, tmp_path, capsys):
    path = write(tmp_path, "images/fox-0000.jpg,Dog,90\nimages/fox-9999.jpg,Fox,90\n", "p.csv")
    call_command("import_predictions", str(path), "--dataset", "pets", "--images-root", pets.images_root, "--replace")
    assert "Imported 2 predictions into 'pets' in " in (out := capsys.readouterr().out) and ", replacing 1" in out
    assert Prediction.objects.get(image__path="images/fox-0000.jpg").label == "Dog"


def refused_lines(dataset_name: str, content: bytes, images_root: str) -> list[str]:
    """Import `content`, which must be refused; return the problems it was refused for."""
    with pytest.raises(RowsRejected) as error:
        predictions_import(dataset_name=dataset_name, stream=io.BytesIO(content), images_root=images_root)
    return error.value.errors


@pytest.mark.django_db
def test_problems_found_by_different_checks_are_listed_by_line(pets):
    """PostgreSQL listed them check by check, so its "first 100" could differ from the Python path's."""
    assert refused_lines("pets", b"images/dog-0001.jpg,Dog,90\nz.jpg,Cat,abc\n", pets.images_root) == [
        "line 1: image 'images/dog-0001.jpg' is already in dataset 'pets'",
        "line 2: confidence 'abc' is not a number",
    ]


@pytest.mark.django_db
def test_one_bom_is_dropped_and_a_second_one_is_data(tmp_path):
    """PostgreSQL dropped two, so a file the Python path refused was imported there."""
    doubled = b"\xef\xbb\xbf\xef\xbb\xbfimage,label,confidence\na.jpg,Cat,50\n"
    assert refused_lines("boms", doubled, str(tmp_path)) == ["line 1: confidence 'confidence' is not a number"]
    summary = predictions_import(
        dataset_name="boms",
        stream=io.BytesIO(b"\xef\xbb\xbfimage,label,confidence\na.jpg,Cat,50\n"),
        images_root=str(tmp_path),
    )
    assert summary.imported == 1
