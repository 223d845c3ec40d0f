"""The image admin: where an image lies and what it shows are the import's, not a form's."""

import pytest
from django.test import Client

from labelqa.catalog.models import Dataset, Image


@pytest.mark.django_db
def test_an_admin_can_neither_move_an_image_nor_add_one(pets, admin_user):
    other = Dataset.objects.create(name="other", images_root=pets.images_root)
    image = Image.objects.filter(dataset=pets).first()
    path, thumbnail = image.path, image.thumbnail
    client = Client()
    client.force_login(admin_user)

    response = client.post(
        f"/admin/catalog/image/{image.pk}/change/",
        {"dataset": other.pk, "path": "../../etc/passwd", "metadata": '{"source": "camera 2"}'},
    )

    assert response.status_code == 302
    image.refresh_from_db()
    assert (image.dataset_id, image.path, image.thumbnail) == (pets.pk, path, thumbnail)
    assert image.metadata == {"source": "camera 2"}, "what the import kept beside the image stays editable"
    assert client.get("/admin/catalog/image/add/").status_code == 403


@pytest.mark.django_db
def test_a_dataset_moved_to_a_folder_this_server_lacks_gets_a_warning(pets, admin_user, tmp_path):
    """Saved in silence, every image was then flagged missing; the upload form refuses such a root."""
    client = Client()
    client.force_login(admin_user)
    form = {"name": "pets", "images_root": str(tmp_path / "gone"), "batch_size": 25, "reviews_per_item": 1}
    form |= {"consensus": "unanimous", "shuffle_seed": 0, "gold_rate": 0}
    page = client.post(f"/admin/catalog/dataset/{pets.pk}/change/", form, follow=True).content.decode()
    assert f"There is no directory {tmp_path / 'gone'} on this server" in page
    assert "Dataset pets: 0 flagged images will be checked again." in page, "the name as written, not capitalised"
    pets.refresh_from_db()
    assert pets.images_root == str(tmp_path / "gone"), "a warning: the workers may see a mount the web server lacks"
