"""Images nobody can see: an unusable file takes no vote; an unreadable one is retried until it reads."""

import re
import shutil
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from labelqa.catalog import imaging
from labelqa.catalog.models import Image, Prediction
from labelqa.catalog.services import ThumbnailsMade, thumbnails_make
from labelqa.review.models import Lease, Vote
from tests.conftest import jpeg

BOX = re.compile(r'<input type="checkbox" name="confirm" value="(\d+)"[^>]*>')


@pytest.fixture
def cat_batch(pets):
    """The Cat batch of `pets` with image 1 a corrupt file and image 2 gone missing, checked by the thumbnail task."""
    cats = list(Prediction.objects.filter(dataset=pets, label="Cat").select_related("image").order_by("pk"))
    root = Path(pets.images_root)
    (root / cats[0].image.path).write_bytes(b"not a picture at all")
    (root / cats[1].image.path).unlink()
    thumbnails_make(dataset_id=pets.pk)
    return cats


@pytest.mark.django_db
def test_an_unusable_image_is_shown_unchecked_and_takes_no_vote(cat_batch, reviewer):
    corrupt, missing = (Image.objects.get(pk=p.image_id) for p in cat_batch[:2])
    assert corrupt.unusable and "not an image" in corrupt.problem
    assert not missing.unusable and "No such file" in missing.problem, "unreadable, not unusable: may come back"

    client = Client()
    client.force_login(reviewer)
    html = client.get(client.get("/review/next/?label=Cat")["Location"]).content.decode()
    boxes = {int(box.group(1)): box.group(0) for box in BOX.finditer(html)}
    assert set(boxes) == {p.pk for p in cat_batch}, "every image keeps its box"
    assert "disabled" in boxes[cat_batch[0].pk] and "checked" not in boxes[cat_batch[0].pk]
    assert "cannot be shown and is not counted" in html
    # Reviewers see why, not which file: a file name often names its class.
    assert "the file could not be read just now" in html and missing.path not in html and missing.problem not in html
    assert all("checked" in boxes[p.pk] and "disabled" not in boxes[p.pk] for p in cat_batch[1:])

    lease = re.search(r'name="lease" value="([^"]+)"', html).group(1)
    batch_url = f"/review/batch/{cat_batch[0].batch_id}/"
    client.post(batch_url, {"lease": lease, "confirm": [p.pk for p in cat_batch]})  # a forged box for the corrupt one
    voted = set(Vote.objects.values_list("prediction_id", flat=True))
    assert voted == {p.pk for p in cat_batch[1:]}


@pytest.mark.django_db
def test_a_grid_of_unusable_images_is_submitted_without_saying_it_was_submitted_before(pets, reviewer):
    cats = Prediction.objects.filter(dataset=pets, label="Cat")
    Image.objects.filter(prediction__in=cats).update(unusable=True, problem="not an image")
    client = Client()
    client.force_login(reviewer)
    batch_url = client.get("/review/next/?label=Cat")["Location"]
    lease = re.search(r'name="lease" value="([^"]+)"', client.get(batch_url).content.decode()).group(1)
    next_page = client.get(client.post(batch_url, {"lease": lease})["Location"], follow=True).content.decode()
    assert "already submitted" not in next_page
    assert not Vote.objects.exists() and Lease.objects.get(token=lease).submitted_at is not None
    again = client.get(client.post(batch_url, {"lease": lease})["Location"], follow=True).content.decode()
    assert "That Cat batch was already submitted" in again


@pytest.mark.django_db
def test_an_unusable_image_is_not_decoded_again_on_view(cat_batch, reviewer, monkeypatch):
    monkeypatch.setattr(imaging, "make_thumbnail", lambda *a, **k: pytest.fail("decoded a known-bad file again"))
    client = Client()
    client.force_login(reviewer)
    response = client.get(f"/datasets/images/{cat_batch[0].image_id}/thumbnail/")
    assert response["Content-Type"] == "image/svg+xml"
    assert "max-age=60" in response["Cache-Control"], "a placeholder is not kept for a day"


@pytest.mark.django_db
def test_an_unreadable_image_clears_its_flag_once_its_file_is_back(cat_batch, reviewer, pets):
    missing = Image.objects.get(pk=cat_batch[1].image_id)
    client = Client()
    client.force_login(reviewer)
    with CaptureQueriesContext(connection) as queries:  # tried again, flagged already: nothing to write
        assert client.get(f"/datasets/images/{missing.pk}/thumbnail/")["Content-Type"] == "image/svg+xml"
    assert not [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]

    Path(pets.images_root, missing.path).write_bytes(jpeg("red"))
    response = client.get(f"/datasets/images/{missing.pk}/thumbnail/")
    assert response["Content-Type"] == "image/webp" and "max-age=86400" in response["Cache-Control"]
    missing.refresh_from_db()
    assert (missing.problem, missing.unusable) == ("", False)


@pytest.mark.django_db
def test_flagged_images_are_checked_again_on_request(cat_batch, pets):
    Path(pets.images_root, cat_batch[0].image.path).write_bytes(jpeg("blue"))  # the corrupt file is replaced
    assert thumbnails_make(dataset_id=pets.pk) == ThumbnailsMade(0, 0, more=False), "flagged images are skipped"
    assert thumbnails_make(dataset_id=pets.pk, flagged_again=True) == ThumbnailsMade(1, 1, more=False)
    fixed = Image.objects.get(pk=cat_batch[0].image_id)
    assert (fixed.problem, fixed.unusable, bool(fixed.thumbnail)) == ("", False, True)


@pytest.mark.django_db
def test_fixing_the_images_root_in_the_admin_checks_the_flagged_images_again(
    cat_batch, pets, tmp_path, eager_celery, django_capture_on_commit_callbacks, django_user_model
):
    moved = tmp_path / "moved"
    shutil.copytree(Path(pets.images_root, "images"), moved / "images")
    (moved / cat_batch[0].image.path).write_bytes(jpeg("green"))
    (moved / cat_batch[1].image.path).write_bytes(jpeg("white"))
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
    form = {
        "name": pets.name,
        "images_root": str(moved),
        "batch_size": pets.batch_size,
        "reviews_per_item": pets.reviews_per_item,
        "consensus": pets.consensus,
        "shuffle_seed": pets.shuffle_seed,
        "gold_rate": pets.gold_rate,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/catalog/dataset/{pets.pk}/change/", form)
    assert response.status_code == 302
    assert not Image.objects.filter(dataset=pets).exclude(problem="").exists()


@pytest.mark.django_db
def test_a_symlink_loop_shows_the_placeholder_and_is_flagged_unreadable(pets, reviewer):
    image = Image.objects.filter(dataset=pets).first()
    file = Path(pets.images_root, image.path)
    file.unlink()
    file.symlink_to(file.name)  # a link to itself: resolving it never ends
    client = Client()
    client.force_login(reviewer)
    for kind in ("thumbnail", "original"):
        response = client.get(f"/datasets/images/{image.pk}/{kind}/")
        assert (response.status_code, response["Content-Type"]) == (200, "image/svg+xml"), kind
    image.refresh_from_db()
    assert (image.problem, image.unusable) == (f"cannot read {image.path}: symbolic link loop", False)
