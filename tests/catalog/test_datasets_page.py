"""/datasets/: admins upload prediction CSVs; a bad file shows its lines in red and changes nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from labelqa.catalog.models import Prediction
from tests.conftest import PASSWORD


def admin_client(user) -> Client:
    client = Client()
    client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_an_admin_uploads_a_csv_and_sees_the_dataset_listed(admin_user, tmp_path):
    upload = SimpleUploadedFile("p.csv", b"a.jpg,Dog,0.9\nb.jpg,Cat,0.8\n", content_type="text/csv")
    response = admin_client(admin_user).post(
        "/datasets/",
        {"dataset": "uploaded", "file": upload, "images_root": str(tmp_path), "confidence_scale": "auto"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Imported 2 predictions into uploaded in 2 batches." in response.content.decode()
    assert sorted(Prediction.objects.values_list("label", "confidence")) == [("Cat", 80.0), ("Dog", 90.0)]


@pytest.mark.django_db
def test_a_bad_upload_lists_its_lines_escaped_and_imports_nothing(admin_user, tmp_path):
    upload = SimpleUploadedFile("p.csv", b"a.jpg,<script>x</script>,90\nb.jpg,Cat,abc\n", content_type="text/csv")
    response = admin_client(admin_user).post(
        "/datasets/", {"dataset": "bad", "file": upload, "images_root": str(tmp_path), "confidence_scale": "auto"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "line 2: confidence &#x27;abc&#x27; is not a number" in html
    assert "<script>x</script>" not in html
    assert Prediction.objects.count() == 0


@pytest.mark.django_db
def test_reviewers_cannot_open_the_datasets_page(reviewer):
    assert admin_client(reviewer).get("/datasets/").status_code == 403
