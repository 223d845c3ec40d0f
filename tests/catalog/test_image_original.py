"""The zoom serves the original file, with a content type that browsers show rather than download."""

import io

import pytest
from django.test import Client
from PIL import Image as PILImage

from labelqa.catalog.models import Image
from labelqa.catalog.services import predictions_import


@pytest.mark.django_db
def test_a_camera_jpeg_with_a_multi_picture_index_is_served_as_a_jpeg(tmp_path, reviewer):
    buffer = io.BytesIO()
    frames = [PILImage.new("RGB", (64, 48), colour) for colour in ("red", "blue")]
    frames[0].save(buffer, "MPO", save_all=True, append_images=frames[1:])  # Pillow reads it back as MPO
    (tmp_path / "camera.jpg").write_bytes(buffer.getvalue())
    predictions_import(dataset_name="camera", stream=io.BytesIO(b"camera.jpg,Dog,90\n"), images_root=str(tmp_path))

    client = Client()
    client.force_login(reviewer)
    response = client.get(f"/datasets/images/{Image.objects.get().pk}/original/")
    assert (response.status_code, response["Content-Type"]) == (200, "image/jpeg")
    assert response.content == buffer.getvalue()


@pytest.mark.django_db
def test_an_original_whose_thumbnail_was_made_is_served_without_decoding_it_again(tmp_path, reviewer, monkeypatch):
    from labelqa.catalog import imaging
    from labelqa.catalog.services import thumbnails_make

    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 48), "green").save(buffer, "PNG")
    (tmp_path / "a.png").write_bytes(buffer.getvalue())
    (tmp_path / "b.png").write_bytes(buffer.getvalue())
    predictions_import(dataset_name="d", stream=io.BytesIO(b"a.png,Dog,90\nb.png,Dog,80\n"), images_root=str(tmp_path))
    thumbnails_make(dataset_id=Image.objects.get(path="a.png").dataset_id)
    Image.objects.filter(path="b.png").update(thumbnail="")  # never checked: its first view decodes it
    decoded = []
    monkeypatch.setattr(imaging, "open_image", lambda data, **kwargs: decoded.append(len(data)))

    client = Client()
    client.force_login(reviewer)
    for path in ("a.png", "b.png"):
        response = client.get(f"/datasets/images/{Image.objects.get(path=path).pk}/original/")
        assert (response.status_code, response["Content-Type"]) == (200, "image/png")
    assert decoded == [len(buffer.getvalue())], "only the image without a thumbnail is decoded"


@pytest.mark.django_db
def test_a_tiff_original_is_served_as_a_webp_browsers_can_show(tmp_path, reviewer):
    PILImage.new("RGB", (3000, 1500), "blue").save(tmp_path / "scan.tif", "TIFF")
    predictions_import(dataset_name="scans", stream=io.BytesIO(b"scan.tif,Dog,90\n"), images_root=str(tmp_path))
    client = Client()
    client.force_login(reviewer)
    response = client.get(f"/datasets/images/{Image.objects.get().pk}/original/")
    assert (response.status_code, response["Content-Type"]) == (200, "image/webp")
    with PILImage.open(io.BytesIO(response.content)) as shown:
        assert (shown.format, shown.size) == ("WEBP", (2048, 1024))
