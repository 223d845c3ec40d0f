"""After an import, a task checks every image: thumbnails made and cached, unusable files flagged, nothing crashes."""

import io
import logging
import os
import signal

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.test import Client
from PIL import Image as PILImage

from labelqa.catalog import storage
from labelqa.catalog.imports import import_job_create
from labelqa.catalog.models import Image, ImportJob, Prediction
from labelqa.catalog.services import ThumbnailsMade, predictions_import, thumbnails_make
from tests.conftest import jpeg
from tests.live import wait_until


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "good.jpg").write_bytes(jpeg("red"))
    (tmp_path / "also-good.jpg").write_bytes(jpeg("blue", (300, 900)))
    (tmp_path / "truncated.jpg").write_bytes(jpeg("green")[:300])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_bytes(b"just some text, not a picture")
    return tmp_path


ROWS = b"".join(
    f"{name},Dog,{90 + i}\n".encode()
    for i, name in enumerate(["good.jpg", "also-good.jpg", "truncated.jpg", "empty.jpg", "text.jpg", "missing.jpg"])
)


@pytest.mark.django_db(transaction=True)
def test_an_import_makes_thumbnails_and_flags_unusable_images(folder, media_root, eager_celery):
    predictions_import(dataset_name="photos", stream=io.BytesIO(ROWS), images_root=str(folder))

    images = {i.path: i for i in Image.objects.all()}
    for name in ("good.jpg", "also-good.jpg"):
        image = images[name]
        assert image.problem == "" and image.thumbnail == storage.thumbnail_key(image.dataset_id, image.pk)
        thumb = PILImage.open(io.BytesIO(storage.thumbnail_read(image.thumbnail)))
        assert thumb.format == "WEBP" and max(thumb.size) == 256
    for name in ("truncated.jpg", "empty.jpg", "text.jpg", "missing.jpg"):
        assert images[name].problem and not images[name].thumbnail, name
    assert images["missing.jpg"].problem == "cannot read missing.jpg: No such file or directory"


@pytest.mark.django_db
def test_a_rerun_skips_what_is_done_and_picks_up_new_images(folder, media_root):
    predictions_import(dataset_name="photos", stream=io.BytesIO(ROWS), images_root=str(folder))
    dataset_id = Image.objects.first().dataset_id
    assert thumbnails_make(dataset_id=dataset_id) == ThumbnailsMade(2, 4, more=False)
    assert thumbnails_make(dataset_id=dataset_id) == ThumbnailsMade(0, 0, more=False), "a rerun does nothing twice"

    (folder / "late.jpg").write_bytes(jpeg("white"))
    predictions_import(dataset_name="photos", stream=io.BytesIO(b"late.jpg,Cat,97\n"))
    assert thumbnails_make(dataset_id=dataset_id) == ThumbnailsMade(1, 0, more=False)


@pytest.mark.django_db
def test_slices_and_chunks_cover_every_image(folder, media_root, monkeypatch):
    from labelqa.catalog import services

    monkeypatch.setattr(services, "THUMBNAIL_CHUNK", 2)
    predictions_import(dataset_name="photos", stream=io.BytesIO(ROWS), images_root=str(folder))
    dataset_id = Image.objects.first().dataset_id
    first = thumbnails_make(dataset_id=dataset_id, limit=3)
    assert (first.made + first.flagged, first.more) == (3, True)
    rest = thumbnails_make(dataset_id=dataset_id, limit=3)
    assert (rest.made + rest.flagged, rest.more) == (3, False)
    assert (first.made + rest.made, first.flagged + rest.flagged) == (2, 4)
    assert not Image.objects.filter(thumbnail="", problem="").exists()


@pytest.mark.django_db
def test_an_image_that_fails_unexpectedly_is_flagged_and_the_pass_goes_on(folder, media_root, monkeypatch, caplog):
    from labelqa.catalog import imaging, services

    monkeypatch.setattr(services, "THUMBNAIL_CHUNK", 2)
    monkeypatch.setattr(logging.getLogger("labelqa"), "propagate", True)  # so that caplog sees it
    make_thumbnail, poison = imaging.make_thumbnail, (folder / "good.jpg").read_bytes()

    def make_thumbnail_with_a_bug(data):
        if data == poison:
            raise KeyError("a decoder bug")  # not an ImageProblem: nothing foresaw it
        return make_thumbnail(data)

    monkeypatch.setattr(imaging, "make_thumbnail", make_thumbnail_with_a_bug)
    predictions_import(dataset_name="photos", stream=io.BytesIO(ROWS), images_root=str(folder))

    assert thumbnails_make(dataset_id=Image.objects.first().dataset_id) == ThumbnailsMade(1, 5, more=False)
    images = {i.path: i for i in Image.objects.all()}
    assert (images["good.jpg"].problem, images["good.jpg"].unusable) == ("could not be checked: 'a decoder bug'", False)
    assert images["also-good.jpg"].thumbnail, "the rest of its chunk was saved"
    assert not Image.objects.filter(thumbnail="", problem="").exists(), "the later chunks were checked"
    assert "'good.jpg'" in caplog.text and "KeyError" in caplog.text


@pytest.mark.django_db
def test_thumbnails_that_storage_refuses_are_served_but_not_cached(folder, media_root, reviewer):
    media_root.mkdir()
    (media_root / "thumbnails").write_bytes(b"")  # a file where the folder should be: every save fails
    predictions_import(dataset_name="photos", stream=io.BytesIO(ROWS), images_root=str(folder))
    assert thumbnails_make(dataset_id=Image.objects.first().dataset_id) == ThumbnailsMade(2, 4, more=False)
    good = Image.objects.get(path="good.jpg")
    assert (good.thumbnail, good.problem) == ("", ""), "not cached, and nothing wrong with the image"

    client = Client()
    client.force_login(reviewer)
    response = client.get(f"/datasets/images/{good.pk}/thumbnail/")
    assert (response.status_code, response["Content-Type"]) == (200, "image/webp")


@pytest.mark.django_db
def test_a_fifo_named_as_an_image_is_flagged_without_waiting_for_a_writer(folder, media_root):
    os.mkfifo(folder / "pipe.jpg")
    rows = b"pipe.jpg,Dog,90\ngood.jpg,Dog,80\n"
    predictions_import(dataset_name="photos", stream=io.BytesIO(rows), images_root=str(folder))
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the pass waited for a writer to the FIFO"))
    signal.alarm(5)
    try:
        result = thumbnails_make(dataset_id=Image.objects.first().dataset_id)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result == ThumbnailsMade(1, 1, more=False)
    pipe = Image.objects.get(path="pipe.jpg")
    assert (pipe.problem, pipe.unusable) == ("cannot read pipe.jpg: not a regular file", False)


@pytest.fixture
def failing_thumbnail_task(monkeypatch):
    """Make the thumbnail task fail as a bug or a lost database connection would."""

    def fail(**kwargs):
        raise RuntimeError("the thumbnail pass broke")

    monkeypatch.setattr("worker.tasks.thumbnails_make", fail)


@pytest.mark.django_db(transaction=True)
def test_a_thumbnail_task_failing_in_process_leaves_the_import_command_a_success(
    folder, media_root, eager_celery, failing_thumbnail_task, caplog
):
    (folder / "p.csv").write_bytes(ROWS)
    call_command("import_predictions", str(folder / "p.csv"), "--dataset", "photos")  # raises nothing
    assert Prediction.objects.count() == 6
    assert "the thumbnail pass broke" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_thumbnail_task_failing_in_process_leaves_the_upload_job_done(
    folder, media_root, eager_celery, failing_thumbnail_task, admin_user
):
    job = import_job_create(
        dataset_name="photos",
        upload=ContentFile(ROWS, name="p.csv"),
        file_name="p.csv",
        options={"images_root": str(folder)},
        uploaded_by=admin_user,
    )
    job.refresh_from_db()
    assert (job.status, job.errors, job.rows_imported) == (ImportJob.Status.DONE, [], 6)
    assert Prediction.objects.count() == 6


# Six images: one task, or (two per task) three tasks, each queueing the next slice.
@pytest.mark.parametrize("per_task", [{}, {"LABELQA_THUMBNAILS_PER_TASK": "2"}], ids=["one slice", "three slices"])
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_makes_the_thumbnails_after_an_import(folder, media_root, start_worker, per_task):
    worker = start_worker(**per_task)
    predictions_import(dataset_name="photos", stream=io.BytesIO(ROWS), images_root=str(folder))
    wait_until(
        lambda: not Image.objects.filter(thumbnail="", problem="").exists(),
        timeout=60,
        what="the worker's thumbnails of every slice",
        process=worker,
    )
    assert Image.objects.exclude(thumbnail="").count() == 2 and Image.objects.exclude(problem="").count() == 4


@pytest.mark.django_db
def test_a_dataset_without_an_images_root_flags_its_images_instead_of_reading_the_working_directory(
    media_root, monkeypatch
):
    monkeypatch.chdir(storage.__file__.rsplit("/", 1)[0])  # a directory that does hold a file by the image's name
    predictions_import(dataset_name="rootless", stream=io.BytesIO(b"storage.py,Code,99\n"))
    assert thumbnails_make(dataset_id=Image.objects.get().dataset_id) == ThumbnailsMade(0, 1, more=False)
    assert Image.objects.get().problem == "the dataset has no images root: set one on its admin page"
