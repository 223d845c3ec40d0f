"""Uploads on /datasets/ become import jobs: stored, claimed once by a task, imported all or nothing, with progress."""

import io
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection, connections
from django.test import Client

from labelqa.catalog import pg_import
from labelqa.catalog.imports import import_job_execute
from labelqa.catalog.jobs import LOCK_NAMESPACES
from labelqa.catalog.models import Dataset, Image, ImportJob, Prediction
from labelqa.catalog.selectors import import_progress
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Batch
from tests.conftest import PASSWORD, seed_csv


def admin_client(user) -> Client:
    client = Client()
    client.login(username=user.username, password=PASSWORD)
    return client


def upload(client, content: bytes, name: str = "p.csv", **fields):
    data = {"dataset": "uploaded", "file_format": "auto", "confidence_scale": "auto", **fields}
    data["file"] = SimpleUploadedFile(name, content, content_type="text/csv")
    return client.post("/datasets/", data)


def row_counts() -> dict:
    return {m.__name__: m.objects.count() for m in (Dataset, Image, Prediction, Batch)}


def stored_uploads(media_root) -> list:
    return sorted(p for p in (media_root / "imports").rglob("*") if p.is_file()) if media_root.exists() else []


@pytest.mark.django_db(transaction=True)
def test_an_upload_is_imported_by_the_task_with_its_options(admin_user, tmp_path, media_root, eager_celery):
    content = seed_csv({"Dog": 30, "Cat": 12}, confidence=lambda label, i: 80 + i % 20)
    response = upload(
        admin_client(admin_user), content, images_root=str(tmp_path), min_confidence="85", batch_size="10"
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/datasets/imports/{job.pk}/"
    assert job.status == ImportJob.Status.DONE and job.uploaded_by == admin_user
    kept = [i for i in range(30) if 80 + i % 20 >= 85], [i for i in range(12) if 80 + i % 20 >= 85]
    assert job.rows_validated == job.rows_total == 42
    assert job.rows_imported == Prediction.objects.count() == len(kept[0]) + len(kept[1])
    assert job.dataset.name == "uploaded" and job.dataset.batch_size == 10
    assert job.batches == Batch.objects.count() == 2 + 1  # 20 dogs and 7 cats at 85 % or more, batches of 10
    assert job.started_at <= job.finished_at and job.errors == []
    assert stored_uploads(media_root) == [], "the stored upload is deleted once imported"
    assert list((media_root / "imports").iterdir()) == [], "and its folder"

    page = admin_client(admin_user).get(response["Location"]).content.decode()
    assert 'id="import-bar"' in page and 'value="100.0"' in page
    assert f"done: 42 rows validated, {job.rows_imported} imported in 3 batches" in page


@pytest.mark.django_db
def test_a_job_of_one_row_in_one_batch_is_summed_up_in_the_singular():
    job = ImportJob(dataset_name="one", file_name="p.csv", status=ImportJob.Status.DONE, rows_total=1, batches=1)
    job.rows_validated = job.rows_imported = 1
    assert import_progress(job)["summary"] == "done: 1 row validated, 1 imported in 1 batch"


def stored_job(user, tmp_path, status=ImportJob.Status.QUEUED) -> ImportJob:
    """A job of five Dog rows as an upload leaves it, minus its task: the test runs the import itself."""
    content = seed_csv({"Dog": 5})
    return ImportJob.objects.create(
        dataset_name="jobs",
        file_name="p.csv",
        file_key=default_storage.save("imports/test/upload", ContentFile(content)),
        file_size=len(content),
        options={"images_root": str(tmp_path)},
        uploaded_by=user,
        status=status,
    )


@pytest.mark.django_db
def test_a_job_is_claimed_once_so_running_its_task_again_imports_nothing(admin_user, media_root, tmp_path):
    job = stored_job(admin_user, tmp_path)
    first = import_job_execute(job.pk)
    again = import_job_execute(job.pk)
    assert first.status == again.status == ImportJob.Status.DONE
    assert Prediction.objects.count() == 5 and again.rows_imported == 5


@pytest.mark.django_db(transaction=True)
def test_a_bad_file_fails_its_job_with_the_lines_in_red_and_changes_nothing(admin_user, pets, media_root, eager_celery):
    before = row_counts()
    bad = b"a.jpg,<script>x</script>,90\nb.jpg,Cat,abc\n" + b"".join(b"c%d.jpg,Cat,-1\n" % i for i in range(120))
    response = upload(admin_client(admin_user), bad, dataset="pets")
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED
    assert job.errors[0] == "line 2: confidence 'abc' is not a number" and len(job.errors) == 100
    assert job.error_total == 121 and job.rows_imported == 0
    # Past the first 100 lines, every problem still shows, by kind.
    kinds = ["120 × confidence … is negative (first on line 3)", "1 × confidence … is not a number (first on line 2)"]
    assert job.error_kinds == kinds
    assert row_counts() == before
    assert stored_uploads(media_root) == []

    page = admin_client(admin_user).get(response["Location"]).content.decode()
    assert "failed: nothing was imported (121 problems); fix these lines and upload the file again" in page
    assert '<p class="error">What stopped it:</p>' in page
    assert "line 2: confidence &#x27;abc&#x27; is not a number" in page and "… and 21 more" in page
    assert "<script>x</script>" not in page
    assert "<li>All of them by problem, most frequent first:</li><li>120 × confidence … is negative" in page
    assert 'href="/analytics/?dataset=pets"' in page
    progress = admin_client(admin_user).get(f"/datasets/imports/{job.pk}/progress.json").json()
    assert progress["status"] == "failed" and progress["errors_more"] == 21 and len(progress["errors"]) == 100
    assert progress["error_kinds"] == kinds


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused_with_a_clear_message(admin_user, media_root, settings, spooled):
    settings.LABELQA_MAX_UPLOAD_BYTES = 4096
    response = upload(admin_client(admin_user), seed_csv({"Dog": 400}))
    html = response.content.decode()
    assert response.status_code == 200
    assert "The file is larger than the upload limit of 4.0\xa0KB (LABELQA_MAX_UPLOAD_BYTES)" in html
    assert "This field is required" not in html
    assert 'value="uploaded"' in html, "the fields before the file are kept"
    assert sum(spooled) <= 4096, "reading stopped at the limit"
    assert ImportJob.objects.count() == 0 and stored_uploads(media_root) == []


@pytest.mark.django_db
def test_a_file_at_the_size_limit_is_accepted(admin_user, media_root, settings, tmp_path):
    content = seed_csv({"Dog": 40})
    settings.LABELQA_MAX_UPLOAD_BYTES = len(content)
    response = upload(admin_client(admin_user), content, images_root=str(tmp_path))
    job = ImportJob.objects.get()
    assert response.status_code == 302 and job.file_size == len(content) and job.status == ImportJob.Status.QUEUED
    assert stored_uploads(media_root) == [media_root / job.file_key], "stored until a worker imports it"
    assert (media_root / job.file_key).read_bytes() == content


@pytest.mark.django_db
def test_the_importer_reports_progress_per_block_and_per_phase(tmp_path, monkeypatch):
    monkeypatch.setattr(pg_import, "BLOCK_BYTES", 4096)  # many COPY blocks from a small file
    calls = []
    summary = predictions_import(
        dataset_name="progress",
        stream=io.BytesIO(seed_csv({"Dog": 3000, "Cat": 1000})),
        images_root=str(tmp_path),
        min_confidence=90,
        progress=lambda validated, imported, total: calls.append((validated, imported, total)),
    )
    reading = [c for c in calls if c[2] is None]
    assert len(reading) >= 20, "rows read are reported once per block"
    assert [c[0] for c in reading] == sorted(c[0] for c in reading) and reading[-1][0] == 4000
    assert calls[-2:] == [(4000, 0, 4000), (4000, summary.imported, 4000)]
    assert len(calls) < 4000 / 50, "never once per row"


@pytest.mark.django_db(transaction=True)
def test_a_job_left_running_by_a_killed_worker_is_imported_again(admin_user, media_root, tmp_path):
    job = stored_job(admin_user, tmp_path, status=ImportJob.Status.RUNNING)  # its lock died with the worker
    assert import_job_execute(job.pk).status == ImportJob.Status.DONE
    assert Prediction.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_job_another_worker_is_importing_is_left_to_it(admin_user, media_root, tmp_path):
    job = stored_job(admin_user, tmp_path, status=ImportJob.Status.RUNNING)
    other_worker = connections.create_connection("default")
    try:
        with other_worker.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACES[ImportJob], job.pk])
        assert import_job_execute(job.pk).status == ImportJob.Status.RUNNING
        assert Prediction.objects.count() == 0
    finally:
        other_worker.close()


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_database_connection_drops_is_recorded_as_failed(admin_user, media_root, tmp_path):
    # A failover or pg_terminate_backend mid-import: the outcome is written on a new connection, not left `running`.
    job = stored_job(admin_user, tmp_path)

    def connection_dropped(**options):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with mock.patch("labelqa.catalog.imports.predictions_import", connection_dropped), pytest.raises(OperationalError):
        import_job_execute(job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.errors[0].startswith("the import stopped:")
    assert stored_uploads(media_root) == []


@pytest.mark.django_db
def test_an_upload_without_the_csrf_token_is_refused(admin_user, media_root):
    client = Client(enforce_csrf_checks=True)  # the view sets its upload handler first, then checks CSRF itself
    client.login(username=admin_user.username, password=PASSWORD)
    assert upload(client, seed_csv({"Dog": 3})).status_code == 403
    assert ImportJob.objects.count() == 0 and stored_uploads(media_root) == []


@pytest.mark.django_db
def test_a_new_dataset_needs_an_images_root_and_a_name_that_fits_a_url(admin_user, pets, media_root):
    """A blank root would resolve against the server's working directory; a slash would break the dataset's URLs."""
    client = admin_client(admin_user)
    html = upload(client, seed_csv({"Dog": 2})).content.decode()
    assert "A new dataset needs the directory or s3:// prefix its images are in." in html
    html = upload(client, seed_csv({"Dog": 2}), dataset="team/pets", images_root="/srv").content.decode()
    assert "A dataset name may not contain a slash or control characters, nor be . or .." in html
    nul = upload(client, seed_csv({"Dog": 2}), dataset="pets\x00", images_root="/srv")
    assert nul.status_code == 400, "refused like a NUL on any page, once the upload handler is set"
    assert ImportJob.objects.count() == 0

    response = upload(client, b"images/new-0000.jpg,Dog,90\n", dataset="pets")  # pets keeps its root
    assert response.status_code == 302 and ImportJob.objects.get().options["images_root"] is None


@pytest.mark.django_db(transaction=True)
def test_a_job_refused_for_images_already_in_the_dataset_points_to_replace(admin_user, pets, media_root, eager_celery):
    path = pets.images.order_by("path").first().path
    response = upload(admin_client(admin_user), f"{path},Dog,91\n".encode(), dataset="pets")
    progress = admin_client(admin_user).get(response["Location"] + "progress.json").json()
    assert progress["errors"] == [f"line 1: image '{path}' is already in dataset 'pets'"]
    assert progress["summary"].endswith("upload it again with Replace")

    upload(admin_client(admin_user), b"a.jpg,Dog,91\na.jpg,Dog,92\n", dataset="pets")  # a problem Replace cannot fix
    job = ImportJob.objects.order_by("pk").last()
    assert "Replace" not in admin_client(admin_user).get(f"/datasets/imports/{job.pk}/progress.json").json()["summary"]


@pytest.mark.django_db(transaction=True)
def test_an_upload_into_an_existing_dataset_keeps_its_settings_unless_given(admin_user, pets, media_root, eager_celery):
    """The form used to pre-fill 25 and 1, so every upload silently reset a dataset's batch size and reviews."""
    pets.batch_size, pets.reviews_per_item = 5, 2
    pets.save()
    client = admin_client(admin_user)
    form = client.get("/datasets/").context["form"]
    browser_sends = {name: form[name].value() or "" for name in ("batch_size", "reviews_per_item")}
    assert browser_sends == {"batch_size": "", "reviews_per_item": ""}

    upload(client, b"images/new-dog.jpg,Dog,90\n", dataset="pets", **browser_sends)
    pets.refresh_from_db()
    assert (ImportJob.objects.get().status, pets.batch_size, pets.reviews_per_item) == (ImportJob.Status.DONE, 5, 2)

    upload(client, b"images/new-cat.jpg,Cat,90\n", dataset="pets", batch_size="7")
    pets.refresh_from_db()
    assert (pets.batch_size, pets.reviews_per_item) == (7, 2)


@pytest.mark.django_db(transaction=True)
def test_a_failed_import_into_a_new_dataset_links_to_no_analytics(admin_user, tmp_path, media_root, eager_celery):
    """The import made no dataset, so its analytics page would be a 404."""
    client = admin_client(admin_user)
    response = upload(client, b"a.jpg,Dog,abc\n", dataset="fresh", images_root=str(tmp_path))
    assert ImportJob.objects.get().status == ImportJob.Status.FAILED and not Dataset.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "Back to datasets" in page and "/analytics/?dataset=fresh" not in page
