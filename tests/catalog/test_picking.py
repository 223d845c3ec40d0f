"""The dataset picker of the analytics, quality, gold and correction-pass pages remembers the last choice."""

import pytest

from labelqa.catalog.models import Dataset


@pytest.mark.django_db
def test_pages_open_on_the_dataset_picked_last_in_the_session(client, admin_user, pets):
    Dataset.objects.create(name="aardvarks")  # first by name: the default before any choice
    client.force_login(admin_user)
    assert client.get("/analytics/").context["dataset"].name == "aardvarks"

    assert client.get("/analytics/", {"dataset": "pets"}).context["dataset"] == pets
    for page in ("/analytics/", "/review/quality/", "/review/gold/"):
        assert client.get(page).context["dataset"] == pets, page

    pets.delete()  # a remembered dataset that is gone falls back to the first
    assert client.get("/review/quality/").context["dataset"].name == "aardvarks"
