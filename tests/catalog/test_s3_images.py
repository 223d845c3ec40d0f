"""Images under an s3:// root, served by moto's standalone S3 server over real HTTP."""

import io
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image as PILImage

from labelqa.catalog import storage
from labelqa.catalog.deletion import dataset_files_delete
from labelqa.catalog.models import Image
from labelqa.catalog.services import predictions_import, thumbnails_make
from labelqa.catalog.storage import thumbnail_key, thumbnail_save, zoom_key, zoom_save
from tests.conftest import PASSWORD, jpeg, tiff
from tests.live import free_port


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


def use_endpoint(url: str, settings, monkeypatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    settings.AWS_S3_ENDPOINT_URL = url


@pytest.fixture
def s3(s3_endpoint, settings, monkeypatch):
    use_endpoint(s3_endpoint, settings, monkeypatch)
    storage.s3_client.cache_clear()
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="photos")
    yield client
    storage.s3_client.cache_clear()


@pytest.mark.django_db
def test_an_s3_dataset_imports_and_its_images_show_as_thumbnails(s3, reviewer):
    s3.put_object(Bucket="photos", Key="set1/images/a.jpg", Body=jpeg("red"))
    s3.put_object(Bucket="photos", Key="set1/images/b.jpg", Body=b"not an image")
    predictions_import(
        dataset_name="s3set",
        stream=io.BytesIO(b"images/a.jpg,Dog,90\nimages/b.jpg,Dog,95\n"),
        images_root="s3://photos/set1",
    )
    # The task that runs after an import read both objects over HTTP: one thumbnail cached, one image flagged.
    result = thumbnails_make(dataset_id=Image.objects.get(path="images/a.jpg").dataset_id)
    assert (result.made, result.flagged) == (1, 1)
    client = Client()
    client.login(username=reviewer.username, password=PASSWORD)
    good = Image.objects.get(path="images/a.jpg")
    response = client.get(f"/datasets/images/{good.pk}/thumbnail/")
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    thumb = PILImage.open(io.BytesIO(response.content))
    assert max(thumb.size) == 256 and thumb.getpixel((10, 10))[0] > 200
    original = client.get(f"/datasets/images/{good.pk}/original/")
    assert original.status_code == 200 and original["Content-Type"] == "image/jpeg"

    bad = Image.objects.get(path="images/b.jpg")
    response = client.get(f"/datasets/images/{bad.pk}/thumbnail/")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    bad.refresh_from_db()
    assert "not an image" in bad.problem
    with CaptureQueriesContext(connection) as queries:  # shown again: unusable, so neither decoded nor written
        assert client.get(f"/datasets/images/{bad.pk}/thumbnail/")["Content-Type"] == "image/svg+xml"
    assert not [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]


@pytest.mark.django_db
def test_images_need_a_signed_in_user_with_a_role(s3, pets):
    image = Image.objects.filter(dataset=pets).first()
    response = Client().get(f"/datasets/images/{image.pk}/thumbnail/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_file_goes_through_s3_storage_to_the_import(s3, s3_endpoint, settings, admin_user, eager_celery):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from labelqa.catalog.imports import UPLOAD_PREFIX
    from labelqa.catalog.models import ImportJob, Prediction

    media_in_s3(s3, s3_endpoint, settings, "uploads")
    client = Client()
    client.login(username=admin_user.username, password=PASSWORD)
    response = client.post(
        "/datasets/",
        {
            "dataset": "s3upload",
            "images_root": "s3://photos/set1",
            "file_format": "auto",
            "confidence_scale": "auto",
            "file": SimpleUploadedFile("p.csv", b"images/a.jpg,Dog,90\nimages/b.jpg,Cat,95\n"),
        },
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and job.status == ImportJob.Status.DONE, job.errors
    assert Prediction.objects.filter(dataset__name="s3upload").count() == 2
    # Only the upload: the bucket is also the default storage, where the import's thumbnails go.
    uploads = s3.list_objects_v2(Bucket="uploads", Prefix=f"{UPLOAD_PREFIX}/")
    assert uploads["KeyCount"] == 0, "the upload is deleted from S3 once imported"


def media_in_s3(s3, s3_endpoint, settings, bucket: str) -> None:
    """Make the default storage (uploads, thumbnails, zooms) a new bucket on the moto server."""
    s3.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": bucket, "endpoint_url": s3_endpoint, "default_acl": None},
        },
    }


@pytest.mark.django_db
def test_a_tiff_rendition_is_kept_in_s3_storage_once_per_file(s3, s3_endpoint, settings, reviewer):
    media_in_s3(s3, s3_endpoint, settings, "media")
    s3.put_object(Bucket="photos", Key="scans/a.tif", Body=tiff("blue"))
    predictions_import(dataset_name="scans", stream=io.BytesIO(b"a.tif,Dog,90\n"), images_root="s3://photos/scans")
    client = Client()
    client.force_login(reviewer)
    url = f"/datasets/images/{Image.objects.get().pk}/original/"

    def renditions() -> list[bytes]:
        listed = s3.list_objects_v2(Bucket="media", Prefix="zooms/").get("Contents", [])
        return [s3.get_object(Bucket="media", Key=o["Key"])["Body"].read() for o in listed]

    first = client.get(url).content
    assert renditions() == [first] and client.get(url).content == first
    s3.put_object(Bucket="photos", Key="scans/a.tif", Body=tiff("red"))  # the object replaced under its key
    changed = client.get(url).content
    assert PILImage.open(io.BytesIO(changed)).convert("RGB").getpixel((10, 10))[0] > 200
    assert renditions() == [changed], "the blue file's rendition is dropped"


@pytest.mark.django_db
def test_a_deleted_datasets_cached_files_go_from_s3_storage_and_no_others(s3, s3_endpoint, settings):
    media_in_s3(s3, s3_endpoint, settings, "media")
    gone, kept = 900_007, 900_008  # ids no dataset of another test has: the bucket is the session's
    for dataset_id in (gone, kept):
        for image_id in (1, 2):
            thumbnail_save(thumbnail_key(dataset_id, image_id), b"thumbnail")
            zoom_save(zoom_key(dataset_id, image_id, b"file"), b"zoom")

    requests = Counter()
    client_events = default_storage.connection.meta.client.meta.events
    client_events.register("before-call.s3", lambda model, **kwargs: requests.update([model.name]))
    assert dataset_files_delete(dataset_id=gone) == 4
    assert requests["DeleteObjects"] == 2 and not requests["DeleteObject"], (
        "one request for each folder, not one for each file"
    )
    listed = s3.list_objects_v2(Bucket="media").get("Contents", [])
    keys = sorted(o["Key"] for o in listed if o["Key"].split("/")[1] in (str(gone), str(kept)))
    expected = [thumbnail_key(kept, 1), thumbnail_key(kept, 2), zoom_key(kept, 1, b"file"), zoom_key(kept, 2, b"file")]
    assert keys == sorted(expected)
    assert dataset_files_delete(dataset_id=gone) == 0, "a redelivered task finds nothing to do"


class _HalfBody(BaseHTTPRequestHandler):
    """Answer every GET with an object's headers and the first tenth of its body, then drop the connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(jpeg()[:100])
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def dropping_endpoint(settings, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HalfBody)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    use_endpoint(f"http://127.0.0.1:{server.server_port}", settings, monkeypatch)
    storage.s3_client.cache_clear()
    yield
    server.shutdown()
    server.server_close()
    storage.s3_client.cache_clear()


@pytest.mark.django_db
def test_an_object_whose_body_breaks_off_shows_the_placeholder(dropping_endpoint, reviewer):
    predictions_import(dataset_name="s3set", stream=io.BytesIO(b"a.jpg,Dog,90\n"), images_root="s3://photos")
    image = Image.objects.get()
    client = Client()
    client.force_login(reviewer)
    response = client.get(f"/datasets/images/{image.pk}/original/")
    assert (response.status_code, response["Content-Type"]) == (200, "image/svg+xml")
    image.refresh_from_db()
    assert image.problem.startswith("cannot read s3://photos/a.jpg: ") and not image.unusable


@pytest.fixture
def storage_down(settings, monkeypatch):
    """Point the default storage (thumbnails, zooms) at an S3 endpoint where nothing listens."""
    down = f"http://127.0.0.1:{free_port()}"
    use_endpoint(down, settings, monkeypatch)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "thumbnails",
                "endpoint_url": down,
                "client_config": Config(retries={"max_attempts": 1}),  # refused at once, no backoff to wait out
            },
        },
    }


@pytest.mark.django_db
def test_a_cached_thumbnail_is_made_again_and_served_while_thumbnail_storage_is_down(storage_down, tmp_path, reviewer):
    (tmp_path / "a.jpg").write_bytes(jpeg("red"))
    predictions_import(dataset_name="local", stream=io.BytesIO(b"a.jpg,Dog,90\n"), images_root=str(tmp_path))
    image = Image.objects.get()
    Image.objects.filter(pk=image.pk).update(thumbnail=thumbnail_key(image.dataset_id, image.pk))  # cached earlier
    client = Client()
    client.force_login(reviewer)
    response = client.get(f"/datasets/images/{image.pk}/thumbnail/")
    assert (response.status_code, response["Content-Type"]) == (200, "image/webp")
    assert PILImage.open(io.BytesIO(response.content)).getpixel((10, 10))[0] > 200


@pytest.mark.django_db
def test_a_tiff_zoom_is_rendered_and_served_while_storage_is_down(storage_down, tmp_path, reviewer):
    (tmp_path / "scan.tif").write_bytes(tiff("red"))
    predictions_import(dataset_name="local", stream=io.BytesIO(b"scan.tif,Dog,90\n"), images_root=str(tmp_path))
    client = Client()
    client.force_login(reviewer)
    response = client.get(f"/datasets/images/{Image.objects.get().pk}/original/")
    assert (response.status_code, response["Content-Type"]) == (200, "image/webp")
    assert PILImage.open(io.BytesIO(response.content)).convert("RGB").getpixel((10, 10))[0] > 200
