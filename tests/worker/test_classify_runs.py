"""Classifier runs that go wrong: read failures retried, two runs on one dataset at once, a dropped connection."""

import threading
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError, connection

from labelqa.catalog import classification
from labelqa.catalog.classification import classification_execute
from labelqa.catalog.models import ClassificationRun, Dataset, Image, Prediction
from tests.conftest import jpeg
from tests.live import blocked_backends, wait_until
from worker import sources


def new_run(folder: Path) -> ClassificationRun:
    dataset, _ = Dataset.objects.get_or_create(name="runs", defaults={"images_root": str(folder)})
    return ClassificationRun.objects.create(dataset=dataset, source=str(folder), model=settings.LABELQA_MODEL)


def executed(run: ClassificationRun) -> ClassificationRun:
    classification_execute(run.pk)
    run.refresh_from_db()
    return run


def counts(run: ClassificationRun) -> tuple[str, int, int, int]:
    return run.status, run.total, run.done, run.flagged


def stored() -> dict[str, bool]:
    """Each stored image's path and whether it has a prediction."""
    images = Image.objects.filter(dataset__name="runs").select_related("prediction")
    return {image.path: hasattr(image, "prediction") for image in images}


@pytest.mark.django_db
def test_an_image_that_could_not_be_read_is_classified_by_the_next_run(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(jpeg(size=(64, 48)))
    real_read = classification.read_image_bytes

    def storage_hiccup(key: str) -> bytes:
        if key.endswith("b.jpg"):
            raise OSError("SlowDown: please reduce your request rate")
        return real_read(key)

    with mock.patch.object(classification, "read_image_bytes", storage_hiccup):
        assert counts(executed(new_run(tmp_path))) == ("done", 2, 2, 1)
    assert stored() == {"a.jpg": True, "b.jpg": False}

    assert counts(executed(new_run(tmp_path))) == ("done", 2, 2, 0)
    assert stored() == {"a.jpg": True, "b.jpg": True}
    b = Image.objects.get(path="b.jpg")
    assert (b.problem, b.unusable, b.prediction.batch_id is not None) == ("", False, True)
    assert Prediction.objects.count() == 2


@pytest.mark.django_db
def test_a_file_that_is_no_image_is_marked_unusable_and_not_read_again(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg(size=(64, 48)))
    (tmp_path / "notes.jpg").write_bytes(b"not a picture at all")
    assert counts(executed(new_run(tmp_path))) == ("done", 2, 2, 1)
    assert Image.objects.get(path="notes.jpg").unusable

    with mock.patch.object(classification, "read_image_bytes", side_effect=AssertionError("read again")):
        assert counts(executed(new_run(tmp_path))) == ("done", 2, 2, 1)  # still not classified, so still flagged


@pytest.mark.django_db(transaction=True)
def test_two_runs_on_one_dataset_take_turns_and_both_end_done(tmp_path):
    # A form sent twice: both runs list the same images; the second must not save them again, nor fail.
    assert connection.vendor == "postgresql", "runs take turns through an advisory lock"
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(jpeg(size=(64, 48)))
    first, second = new_run(tmp_path), new_run(tmp_path)
    reading, go_on = threading.Event(), threading.Event()
    real_read = classification.read_image_bytes

    def first_read_waits(key: str) -> bytes:
        if not reading.is_set():
            reading.set()
            go_on.wait(60)
        return real_read(key)

    def execute(run: ClassificationRun) -> None:
        try:
            classification_execute(run.pk)
        except Exception:  # noqa: BLE001 - a failed run says so in its row, which the test reads
            pass
        finally:
            connection.close()

    with mock.patch.object(classification, "read_image_bytes", first_read_waits):
        threads = [threading.Thread(target=execute, args=(run,)) for run in (first, second)]
        threads[0].start()
        assert reading.wait(60), "the first run never read an image"
        threads[1].start()
        wait_until(lambda: blocked_backends() or not threads[1].is_alive(), timeout=60, what="the second run")
        go_on.set()
        for thread in threads:
            thread.join(120)

    first.refresh_from_db()
    second.refresh_from_db()
    assert counts(first) == counts(second) == ("done", 2, 2, 0)
    assert stored() == {"a.jpg": True, "b.jpg": True}


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_database_connection_drops_is_recorded_as_failed(tmp_path):
    # A failover or pg_terminate_backend mid-run: the outcome is written on a new connection, not left `running`.
    (tmp_path / "a.jpg").write_bytes(jpeg(size=(64, 48)))
    run = new_run(tmp_path)
    real_list = sources.list_images

    def connection_dropped(root: str):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return real_list(root)

    with mock.patch("labelqa.catalog.classification.list_images", connection_dropped):
        with pytest.raises(OperationalError):
            classification_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ClassificationRun.Status.FAILED and run.error
    assert executed(new_run(tmp_path)).status == ClassificationRun.Status.DONE  # no lock was left behind
