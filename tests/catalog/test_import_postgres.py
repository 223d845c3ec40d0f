"""The PostgreSQL COPY path of predictions_import says exactly what the Python reader says, block by block."""

import io
import re

import pytest
from django.core.management import call_command
from django.db import ProgrammingError, connection, transaction
from django.db.models import F

from labelqa.catalog import pg_import
from labelqa.catalog.models import Dataset, Image, Prediction
from labelqa.catalog.rows import ErrorList, ProblemKind, RowsRejected, read_prediction_rows, scale_confidences
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Batch
from tests.conftest import seed_csv


@pytest.fixture(autouse=True)
def on_postgresql():
    assert connection.vendor == "postgresql", "the COPY path runs on PostgreSQL only; make test uses it"


def counts() -> tuple[int, int, int, int]:
    return Dataset.objects.count(), Image.objects.count(), Prediction.objects.count(), Batch.objects.count()


def verdict(rejected: RowsRejected) -> tuple[list[str], int, list[ProblemKind]]:
    return rejected.errors, rejected.total, rejected.kinds


def python_verdict(data: bytes, scale: str = "auto") -> tuple[list[str], int, list[ProblemKind]]:
    """Return the errors the pure Python reader gives for `data` (the SQLite path)."""
    errors = ErrorList()
    try:
        rows = list(read_prediction_rows(io.BytesIO(data), errors))
        scale_confidences(rows, scale, errors)
        errors.raise_if_any()
    except RowsRejected as exc:
        return verdict(exc)
    return [], 0, []


def copy_verdict(data: bytes, scale: str = "auto") -> tuple[list[str], int, list[ProblemKind]]:
    before = counts()
    with pytest.raises(RowsRejected) as error:
        predictions_import(dataset_name="pg", stream=io.BytesIO(data), images_root="/data", confidence_scale=scale)
    assert counts() == before
    return verdict(error.value)


@pytest.fixture(params=[pg_import.BLOCK_BYTES, 64], ids=["one block", "many blocks"])
def block_size(request, monkeypatch):
    monkeypatch.setattr(pg_import, "BLOCK_BYTES", request.param)
    return request.param


MIXED_BAD = {
    "plain errors": b"a.jpg,Dog,90\nb.jpg,Dog,high\nc.jpg,,90\nd.jpg,Dog,100.5\ne.jpg,Dog\nf.jpg,Dog,-3\n",
    "odd rows": (
        b"./a.jpg,Dog,90\n a.jpg ,Dog,91\nimg\\b.jpg, Cat ,50%\n/abs.jpg,Cat,1\nx/../../y.jpg,Cat,2\n"
        b"C:/win.jpg,Cat,3\n\xc3\xa9t\xc3\xa9.jpg,\xc3\x89t\xc3\xa9,1e2\nok.jpg,Dog,inf\nok2.jpg,Dog,1_0\n"
    ),
    "quotes mid file": b'a.jpg,Dog,90\nb.jpg,"Dog, big",91\n"c\nd.jpg",Dog,x\ne.jpg,Dog,y\n',
    "duplicates across blocks": b"".join(b"%d.jpg,Dog,90\n" % (i % 7) for i in range(20)),
    "fraction scale": b"a.jpg,Dog,0.5\nb.jpg,Dog,1.5\nc.jpg,Dog,bad\n",
    "long fields": b"a.jpg," + b"L" * 201 + b",90\n" + b"p" * 1001 + b".jpg,Dog,90\n",
    "blank lines and blank records": b"\n\na.jpg,Dog,90\n , , \n\nb.jpg,Dog,nope\n\n",
    "crlf and lone cr": b"a.jpg,Dog,90\r\nb.jpg,Dog,x\r\nc.jpg,Dog\ry,9\r\n",
    "header with metadata": b"confidence,note,image,label\n90,n1,a.jpg,Dog\nbad,n2,b.jpg,Dog\n80,n3,a.jpg,Cat\n",
    "many errors": b"".join(b"%d.jpg,Dog,x\n" % i for i in range(150)),
    "many errors of several kinds": (
        b"".join(b"%d.jpg,Dog,x%d\n" % (i, i) for i in range(120))
        + b"../up.jpg,Dog,90\nok.jpg,,90\n"
        + b"".join(b"d%d.jpg,Dog,90\nd%d.jpg,Dog,91\n" % (i, i) for i in range(5))
    ),
    "late utf-8 error": b"a.jpg,Dog,x\n" * 30 + b"b\xff.jpg,Dog,90\n",
    "late nul": b"a.jpg,Dog,90\n" * 30 + b"b.jpg,Dog,9\x00\n",
    "field counts that even out": b"a.jpg,Dog,90,x\nb.jpg,Dog\nc.jpg,Cat,80\n",
    "odd lines among metadata": (
        b"label,image,confidence,note\nDog,a.jpg,90,n\n Dog ,./b.jpg,50%,\n,,,\nCat,c.jpg,x,n\nDog,d.jpg,100.0,\n"
    ),
    "only a header": b"image,label,confidence\n",
    "empty": b"",
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(MIXED_BAD))
def test_the_copy_path_names_the_same_lines_as_the_python_reader(block_size, case):
    data = MIXED_BAD[case]
    assert copy_verdict(data) == python_verdict(data)


@pytest.mark.django_db
def test_an_explicit_fraction_scale_names_the_same_lines(block_size):
    data = b"a.jpg,Dog,0.5\nb.jpg,Dog,1.5\nc.jpg,Dog,99\n"
    assert copy_verdict(data, "fraction") == python_verdict(data, "fraction")


@pytest.mark.django_db
def test_odd_rows_are_cleaned_as_the_python_reader_cleans_them(block_size):
    data = b"./img/a.jpg,Dog,90\n img\\b.jpg , Cat ,50%\n\xc3\xa9t\xc3\xa9.jpg,\xc3\x89t\xc3\xa9,1e1\nc.jpg,Dog,.5\n"
    predictions_import(dataset_name="pg", stream=io.BytesIO(data), images_root="/data")
    got = sorted(Prediction.objects.values_list("image__path", "label", "confidence"))
    assert got == [
        ("c.jpg", "Dog", 0.5),
        ("img/a.jpg", "Dog", 90.0),
        ("img/b.jpg", "Cat", 50.0),
        ("été.jpg", "Été", 10.0),
    ]


@pytest.mark.django_db
def test_a_headed_file_keeps_metadata_through_the_copy_path(block_size):
    data = b"Confidence,Camera,Image,Label,Site\n90,north,a.jpg,Dog,x\n0,,b.jpg,Cat,y\n"
    predictions_import(dataset_name="pg", stream=io.BytesIO(data), images_root="/data")
    assert Image.objects.get(path="a.jpg").metadata == {"camera": "north", "site": "x"}
    assert Image.objects.get(path="b.jpg").metadata == {"camera": "", "site": "y"}
    assert Prediction.objects.get(image__path="b.jpg").confidence == 0.0


@pytest.mark.django_db
def test_batches_are_full_single_label_and_mix_confidences(block_size):
    data = b"".join(b"img/%04d.jpg,%s,%d\n" % (i, b"Dog" if i % 3 else b"Cat", 50 + i % 50) for i in range(300))
    summary = predictions_import(dataset_name="pg", stream=io.BytesIO(data), images_root="/data", batch_size=25)
    assert (summary.imported, summary.batches) == (300, 4 + 8)
    sizes = sorted((b.label, b.predictions.count()) for b in Batch.objects.all())
    assert sizes == [("Cat", 25)] * 4 + [("Dog", 25)] * 8
    for batch in Batch.objects.all():
        assert set(batch.predictions.values_list("label", flat=True)) == {batch.label}
    # Shuffled: the first batch of a label is not simply the lowest paths.
    first = Batch.objects.filter(label="Dog").order_by("id").first()
    paths = sorted(first.predictions.values_list("image__path", flat=True))
    assert paths != [f"img/{i:04d}.jpg" for i in range(300) if i % 3][:25]


@pytest.mark.django_db
def test_min_confidence_skips_rows_and_counts_them(block_size):
    data = b"a.jpg,Dog,79.9\nb.jpg,Dog,80\nc.jpg,Dog,99\n"
    summary = predictions_import(dataset_name="pg", stream=io.BytesIO(data), images_root="/data", min_confidence=80)
    assert (summary.imported, summary.skipped_below_min) == (2, 1)
    assert sorted(Image.objects.values_list("path", flat=True)) == ["b.jpg", "c.jpg"]


@pytest.mark.django_db
def test_two_imports_in_one_transaction_do_not_collide_on_staging_tables():
    predictions_import(dataset_name="one", stream=io.BytesIO(b"a.jpg,Dog,90\n"), images_root="/data")
    predictions_import(dataset_name="two", stream=io.BytesIO(b"a.jpg,Dog,90\n"), images_root="/data")
    assert Prediction.objects.count() == 2


@pytest.mark.django_db
def test_a_repeat_hidden_below_min_confidence_is_still_named():
    # Rows below the minimum are not written, so the unique path index alone would not see this repeat.
    data = b"a.jpg,Dog,90\nb.jpg,Dog,95\na.jpg,Dog,10\n"
    before = counts()
    with pytest.raises(RowsRejected) as error:
        predictions_import(dataset_name="pg", stream=io.BytesIO(data), images_root="/data", min_confidence=80)
    assert error.value.errors == ["line 3: image 'a.jpg' already appears on line 1"]
    assert counts() == before


@pytest.mark.django_db
def test_foreign_key_checks_are_back_on_once_the_rows_are_written():
    predictions_import(dataset_name="pg", stream=io.BytesIO(b"a.jpg,Dog,90\n"), images_root="/data")
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone() == ("origin",)


@pytest.fixture
def unprivileged_role():
    """Run the test's queries as a role that may write the tables but may not switch off triggers."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE lq_test_importer NOSUPERUSER NOINHERIT")
        cursor.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO lq_test_importer")
        cursor.execute("GRANT USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA public TO lq_test_importer")
        cursor.execute("SET ROLE lq_test_importer")
        with pytest.raises(ProgrammingError), transaction.atomic():
            cursor.execute("SET LOCAL session_replication_role = replica")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")  # the test's transaction rollback drops the role


@pytest.mark.django_db
def test_a_role_that_cannot_skip_key_checks_imports_with_them(unprivileged_role):
    data = b"".join(b"img/%03d.jpg,%s,%d\n" % (i, b"Dog" if i % 2 else b"Cat", 50 + i % 50) for i in range(60))
    summary = predictions_import(dataset_name="pg", stream=io.BytesIO(data), images_root="/data")
    assert (summary.imported, summary.batches) == (60, 4)
    assert Prediction.objects.filter(image__dataset__name="pg", batch__label=F("label")).count() == 60
    with pytest.raises(RowsRejected) as error:
        predictions_import(dataset_name="pg", stream=io.BytesIO(b"x.jpg,Dog,90\nx.jpg,Cat,80\n"), images_root="/data")
    assert error.value.errors == ["line 2: image 'x.jpg' already appears on line 1"]


@pytest.mark.django_db
def test_rows_are_written_whole_labels_at_a_time_with_progress_after_each_part(monkeypatch):
    monkeypatch.setattr(pg_import, "PART_ROWS", 100)
    sizes = {"Ant": 90, "Bee": 120, "Cat": 40, "Dog": 75}
    data = "".join(f"img/{label}-{i:03d}.jpg,{label},{50 + i % 50}\n" for label, n in sizes.items() for i in range(n))
    calls = []
    summary = predictions_import(
        dataset_name="pg",
        stream=io.BytesIO(data.encode()),
        images_root="/data",
        batch_size=25,
        progress=lambda validated, imported, total: calls.append((validated, imported, total)),
    )
    # Parts start where the rows before them reach a multiple of 100: Ant and Bee (from 0), Cat and Dog (from 210).
    assert [imported for _, imported, total in calls if total is not None] == [0, 210, 325]
    assert (summary.imported, summary.batches) == (325, 4 + 5 + 2 + 3)
    for batch in Batch.objects.all():
        assert set(batch.predictions.values_list("label", flat=True)) == {batch.label}
    got = sorted((b.label, b.predictions.count()) for b in Batch.objects.all())
    expected = sorted((label, min(25, n - k)) for label, n in sizes.items() for k in range(0, n, 25))
    assert got == expected, "full batches, and one part-filled batch per label at most"


@pytest.mark.django_db
def test_replace_works_part_by_part(monkeypatch):
    monkeypatch.setattr(pg_import, "PART_ROWS", 10)
    first = b"".join(b"%02d.jpg,%s,80\n" % (i, b"Dog" if i % 2 else b"Cat") for i in range(40))
    predictions_import(dataset_name="pg", stream=io.BytesIO(first), images_root="/data")
    # The even (Cat) images: the first ten become Fox, the other ten stay Cat with a new confidence.
    second = b"".join(b"%02d.jpg,%s,70\n" % (i, b"Fox" if i < 20 else b"Cat") for i in range(0, 40, 2))
    summary = predictions_import(dataset_name="pg", stream=io.BytesIO(second), images_root="/data", replace=True)
    assert (summary.imported, summary.replaced) == (20, 20)
    rows = Prediction.objects.values_list("image__path", "label", "confidence")
    got = {path: (label, confidence) for path, label, confidence in rows}
    assert len(got) == 40
    assert got["00.jpg"] == ("Fox", 70.0) and got["20.jpg"] == ("Cat", 70.0) and got["01.jpg"] == ("Dog", 80.0)
    assert not Batch.objects.filter(predictions__isnull=True).exists(), "batches the replace emptied are gone"
    assert all(p.batch.label == p.label for p in Prediction.objects.select_related("batch"))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
def test_on_a_terminal_the_command_shows_how_far_the_import_got(tmp_path, monkeypatch):
    from labelqa.catalog.management.commands import import_predictions

    monkeypatch.setattr(pg_import, "BLOCK_BYTES", 4096)  # several blocks read, on PostgreSQL
    monkeypatch.setattr(import_predictions._TerminalProgress, "INTERVAL_SECONDS", 0)
    path = tmp_path / "predictions.csv"
    path.write_bytes(seed_csv({"Dog": 3000, "Cat": 1000}))
    terminal, stdout = Terminal(), io.StringIO()
    # Built with its streams, as on a real terminal, where Django paints whatever goes to stderr red.
    command = import_predictions.Command(stdout=stdout, stderr=terminal, force_color=True)
    call_command(command, str(path), "--dataset", "tty")
    shown = terminal.getvalue()
    assert "rows read" in shown
    assert re.search(r"\r4,000 of 4,000 rows imported \(\d+ s\)\x1b\[K\n$", shown), shown
    assert "\x1b[31" not in shown, "progress is not painted as an error"
    assert stdout.getvalue().startswith("Imported 4000 predictions")

    piped = io.StringIO()  # in a pipe or a log, nothing but the result
    call_command(import_predictions.Command(stdout=io.StringIO(), stderr=piped), str(path), "--dataset", "piped")
    assert piped.getvalue() == ""
