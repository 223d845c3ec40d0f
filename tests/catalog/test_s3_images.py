"""Images under an s3:// root, served by moto's standalone S3 server over real HTTP."""

import io
import socket
import subprocess
import sys
import time

import boto3
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image as PILImage

from labelqa.catalog import storage
from labelqa.catalog.models import Image
from labelqa.catalog.services import predictions_import, thumbnails_make
from tests.conftest import PASSWORD, jpeg
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


@pytest.fixture
def s3(s3_endpoint, settings, monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    settings.AWS_S3_ENDPOINT_URL = s3_endpoint
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

    s3.create_bucket(Bucket="uploads")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": "uploads", "endpoint_url": s3_endpoint, "default_acl": None},
        },
    }
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
