"""The zoom serves the original file, with a content type that browsers show rather than download."""

import io

import pytest
from django.test import Client
from PIL import Image as PILImage

from labelqa.catalog.models import Image
from labelqa.catalog.services import predictions_import
from tests.conftest import tiff


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


def zoom_url(image: Image) -> str:
    return f"/datasets/images/{image.pk}/original/"


def save_tiff(path, colour: str) -> None:
    path.write_bytes(tiff(colour))


@pytest.mark.django_db
def test_a_tiff_rendition_is_made_once_and_then_served_from_storage(tmp_path, media_root, reviewer, monkeypatch):
    from labelqa.catalog import imaging

    save_tiff(tmp_path / "scan.tif", "blue")
    predictions_import(dataset_name="scans", stream=io.BytesIO(b"scan.tif,Dog,90\n"), images_root=str(tmp_path))
    client = Client()
    client.force_login(reviewer)
    first = client.get(zoom_url(Image.objects.get()))
    cached = list((media_root / "zooms").rglob("*.webp"))
    assert len(cached) == 1 and cached[0].read_bytes() == first.content
    decoded = []
    monkeypatch.setattr(imaging, "open_image", lambda data, **kwargs: decoded.append(len(data)))

    second = client.get(zoom_url(Image.objects.get()))
    assert (second.status_code, second["Content-Type"]) == (200, "image/webp")
    assert second.content == first.content and decoded == [], "served from storage, not decoded again"


@pytest.mark.django_db
def test_a_tiff_replaced_by_a_reimport_is_not_zoomed_as_the_file_before(tmp_path, media_root, reviewer):
    save_tiff(tmp_path / "scan.tif", "blue")
    csv = b"scan.tif,Dog,90\n"
    predictions_import(dataset_name="scans", stream=io.BytesIO(csv), images_root=str(tmp_path))
    client = Client()
    client.force_login(reviewer)
    client.get(zoom_url(Image.objects.get()))
    save_tiff(tmp_path / "scan.tif", "red")  # a new scan under the same path, imported again
    predictions_import(dataset_name="scans", stream=io.BytesIO(csv), replace=True)

    response = client.get(zoom_url(Image.objects.get()))
    with PILImage.open(io.BytesIO(response.content)) as shown:
        assert shown.convert("RGB").getpixel((10, 10))[0] > 200, "the new red scan, not the blue one"
    cached = list((media_root / "zooms").rglob("*.webp"))
    assert [path.read_bytes() for path in cached] == [response.content], "the old rendition is dropped"


@pytest.mark.django_db
def test_a_photo_replaced_by_a_reimport_gets_a_thumbnail_of_the_new_file(tmp_path, media_root, reviewer):
    from labelqa.catalog.services import thumbnails_make

    def save_photo(name: str, colour: str) -> None:
        PILImage.new("RGB", (64, 48), colour).save(tmp_path / name, "JPEG")

    def thumbnail_red(image: Image) -> int:
        response = client.get(f"/datasets/images/{image.pk}/thumbnail/")
        with PILImage.open(io.BytesIO(response.content)) as shown:
            return shown.convert("RGB").getpixel((10, 10))[0]

    save_photo("a.jpg", "blue")
    save_photo("b.jpg", "blue")
    predictions_import(dataset_name="d", stream=io.BytesIO(b"a.jpg,Dog,90\nb.jpg,Dog,80\n"), images_root=str(tmp_path))
    thumbnails_make(dataset_id=Image.objects.get(path="a.jpg").dataset_id)
    client = Client()
    client.force_login(reviewer)
    assert thumbnail_red(Image.objects.get(path="a.jpg")) < 50
    save_photo("a.jpg", "red")  # a new photo under the same path, its prediction imported again
    save_photo("b.jpg", "red")  # changed without a reimport: its thumbnail stays until it is checked again
    predictions_import(dataset_name="d", stream=io.BytesIO(b"a.jpg,Cat,95\n"), replace=True)

    assert thumbnail_red(Image.objects.get(path="a.jpg")) > 200
    assert thumbnail_red(Image.objects.get(path="b.jpg")) < 50
