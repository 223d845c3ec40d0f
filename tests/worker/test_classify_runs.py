"""Classifier runs over awkward folders: read failures retried, odd names and escaping links flagged, runs in turn."""

import html
import os
import re
import threading
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from labelqa.catalog.classification import classification_execute
from labelqa.catalog.models import ClassificationRun, Dataset, Image, Prediction
from tests.conftest import jpeg
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
    real_read = sources.read_image_bytes

    def storage_hiccup(key: str) -> bytes:
        if key.endswith("b.jpg"):
            raise OSError("SlowDown: please reduce your request rate")
        return real_read(key)

    with mock.patch.object(sources, "read_image_bytes", storage_hiccup):
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

    with mock.patch.object(sources, "read_image_bytes") as read:
        assert counts(executed(new_run(tmp_path))) == ("done", 2, 2, 1)  # still not classified, so still flagged
    read.assert_not_called()


def odd_names(folder: Path) -> dict[str, str]:
    """Write a good image and four whose names cannot be stored; return the refused names with their reasons."""
    picture = jpeg(size=(64, 48))
    (folder / "good.jpg").write_bytes(picture)
    not_utf8 = os.fsdecode(b"bad\xff name.jpg")  # how the listing sees a Latin-1 name: with a surrogate
    deep = "/".join(["d" * 250] * 4) + "/long.jpg"
    (folder / deep).parent.mkdir(parents=True)
    for name in (not_utf8, "tab\there.jpg", " padded.jpg", deep):
        (folder / name).write_bytes(picture)
    return {
        not_utf8: "its name is not valid UTF-8",
        "tab\there.jpg": "image path 'tab\\there.jpg' contains a control character (a line break, tab or the like)",
        " padded.jpg": "the importer would read its name as 'padded.jpg'",
        deep: "image path is longer than 1000 characters",
    }


def test_the_listing_refuses_names_the_importer_refuses(tmp_path):
    refused = odd_names(tmp_path)
    listing = sources.list_images(str(tmp_path))
    assert listing.paths == ["good.jpg"]
    assert dict(listing.refused) == refused


@pytest.mark.django_db
def test_names_that_cannot_be_stored_are_flagged_and_the_run_goes_on(tmp_path):
    odd_names(tmp_path)
    run = executed(new_run(tmp_path))
    assert counts(run) == ("done", 5, 5, 4)
    assert stored() == {"good.jpg": True}
    # The run's page lists them, a name that is not UTF-8 written out as its escape.
    assert len(run.flagged_files) == 4 and any(name.startswith("bad\\udcff") for name in run.flagged_files)


def escaping_link(folder: Path) -> None:
    """An images root with a.jpg and link.jpg, a symlink to a photo outside the root."""
    root, outside = folder / "root", folder / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "a.jpg").write_bytes(jpeg(size=(64, 48)))
    (outside / "secret.jpg").write_bytes(jpeg(size=(64, 48)))
    (root / "link.jpg").symlink_to(outside / "secret.jpg")


def test_the_listing_and_the_reader_refuse_a_symlink_out_of_the_root(tmp_path):
    escaping_link(tmp_path)
    root = str(tmp_path / "root")
    assert sources.list_images(root) == (["a.jpg"], [("link.jpg", "it resolves outside the images root")])
    assert sources.read_image_under(root, "a.jpg") == (tmp_path / "root" / "a.jpg").read_bytes()
    with pytest.raises(PermissionError, match="outside the images root"):
        sources.read_image_under(root, "link.jpg")


def test_the_reader_refuses_a_fifo_that_replaced_an_image_after_the_listing_without_waiting(tmp_path):
    """A run hung for good on it: a plain open() of a FIFO waits for a writer that never comes."""
    (tmp_path / "a.jpg").write_bytes(jpeg())
    listed = sources.list_images(str(tmp_path))
    (tmp_path / "a.jpg").unlink()
    os.mkfifo(tmp_path / "a.jpg")
    outcome = []

    def read():
        try:
            sources.read_image_under(str(tmp_path), listed.paths[0])
        except OSError as exc:
            outcome.append(exc.strerror)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive() and outcome == ["not a regular file"]


def test_the_reader_refuses_a_file_over_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_IMAGE_BYTES", 10)
    (tmp_path / "big.jpg").write_bytes(b"x" * 11)
    with pytest.raises(sources.ImageTooLarge):
        sources.read_image_under(str(tmp_path), "big.jpg")
    (tmp_path / "big.jpg").write_bytes(b"x" * 10)
    assert sources.read_image_under(str(tmp_path), "big.jpg") == b"x" * 10


@pytest.mark.django_db
def test_a_symlink_out_of_the_images_root_is_flagged_not_classified(tmp_path):
    escaping_link(tmp_path)
    assert counts(executed(new_run(tmp_path / "root"))) == ("done", 2, 2, 1)
    assert stored() == {"a.jpg": True}


@pytest.mark.django_db(transaction=True)
def test_two_runs_on_one_dataset_take_turns_and_both_end_done(tmp_path):
    # A form sent twice: both runs list the same images; the second must not save them again, nor fail, nor hold
    # a worker while it waits.
    assert connection.vendor == "postgresql", "runs take turns through an advisory lock"
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(jpeg(size=(64, 48)))
    first, second = new_run(tmp_path), new_run(tmp_path)
    reading, go_on = threading.Event(), threading.Event()
    real_read = sources.read_image_bytes

    def first_read_waits(key: str) -> bytes:
        if not reading.is_set():
            reading.set()
            go_on.wait(60)
        return real_read(key)

    def execute(run: ClassificationRun) -> None:
        try:
            classification_execute(run.pk)
        finally:
            connection.close()

    with mock.patch.object(sources, "read_image_bytes", first_read_waits):
        running = threading.Thread(target=execute, args=(first,))
        running.start()
        assert reading.wait(60), "the first run never read an image"
        try:
            assert counts(executed(second)) == ("queued", 0, 0, 0), "back in the queue, not waiting in a worker"
        finally:
            go_on.set()
            running.join(120)
    assert counts(executed(second)) == ("done", 2, 2, 0)
    first.refresh_from_db()
    assert counts(first) == ("done", 2, 2, 0)
    assert stored() == {"a.jpg": True, "b.jpg": True}


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_database_connection_drops_is_recorded_as_failed(tmp_path):
    # A failover or pg_terminate_backend mid-run: the outcome is written on a new connection, not left `running`.
    (tmp_path / "a.jpg").write_bytes(jpeg(size=(64, 48)))
    run = new_run(tmp_path)
    real_list = sources.list_images

    def connection_dropped(root: str) -> sources.Listing:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return real_list(root)

    with mock.patch("labelqa.catalog.classification.list_images", connection_dropped):
        with pytest.raises(OperationalError):
            classification_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ClassificationRun.Status.FAILED and run.error
    assert executed(new_run(tmp_path)).status == ClassificationRun.Status.DONE  # no lock was left behind


@pytest.mark.django_db
def test_a_run_waiting_for_another_on_its_dataset_says_so(tmp_path, admin_user):
    first, second = new_run(tmp_path), new_run(tmp_path)
    now = timezone.now()
    ClassificationRun.objects.filter(pk=first.pk).update(status="running", started_at=now, total=40, done=10)
    ClassificationRun.objects.filter(pk=second.pk).update(status="running", started_at=now + timedelta(seconds=1))
    client = Client()
    client.force_login(admin_user)
    waiting = client.get(f"/datasets/runs/{second.pk}/progress.json").json()["summary"]
    assert waiting == f"waiting for run {first.pk} on runs to finish (runs on one dataset take turns)"
    ClassificationRun.objects.filter(pk=second.pk).update(status="queued", started_at=None)  # sent again later
    assert client.get(f"/datasets/runs/{second.pk}/progress.json").json()["summary"] == waiting
    assert client.get(f"/datasets/runs/{first.pk}/progress.json").json()["summary"].startswith("running: 10 of 40")


@pytest.mark.django_db
def test_run_again_opens_the_form_filled_in_with_the_runs_settings_and_starts_nothing(tmp_path, admin_user):
    folder = tmp_path / "new & <odd>"
    folder.mkdir()
    dataset = Dataset.objects.create(name="cats & dogs", images_root=str(folder))
    run = ClassificationRun.objects.create(
        dataset=dataset, source=str(folder), model="efficientnet-lite0", batch_size=8, status="failed"
    )
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/datasets/runs/{run.pk}/").content.decode()
    href = html.unescape(re.search(r'href="(/datasets/classify/\?[^"]*)">Run again</a>', page).group(1))

    form = client.get(href).context["form"]
    assert {name: form[name].value() for name in ("dataset", "source", "model", "batch_size")} == {
        "dataset": "cats & dogs",
        "source": str(folder),
        "model": "efficientnet-lite0",
        "batch_size": "8",
    }
    assert ClassificationRun.objects.count() == 1, "opening the form starts nothing"
