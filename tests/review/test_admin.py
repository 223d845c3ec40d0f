"""The Django admin lists the rows that count reviews but cannot edit or delete them."""

import pytest

from labelqa.catalog.models import Prediction
from labelqa.review.models import Batch, Lease, Vote
from labelqa.review.services import batch_lease, votes_submit


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Vote, Lease, Batch])
def test_rows_that_count_reviews_are_read_only_in_the_admin(client, django_user_model, pets, reviewer, model):
    """A hand-deleted vote left its image's tally counting it; a hand-edited lease or batch, reviews_done wrong."""
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    ids = set(Prediction.objects.filter(batch_id=lease.batch_id).values_list("id", flat=True))
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=ids)
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
    row = model.objects.first()
    base = f"/admin/review/{model._meta.model_name}/"

    assert client.get(base).status_code == 200
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}{row.pk}/change/", {}).status_code == 403
    assert client.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=row.pk).exists()


@pytest.mark.django_db
def test_what_the_model_said_is_read_only_in_the_prediction_admin(client, django_user_model, pets):
    """Editing a prediction's dataset or label left it in another label's batch, counting its votes there."""
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
    prediction = Prediction.objects.filter(dataset=pets).first()
    before = (prediction.dataset_id, prediction.image_id, prediction.label, prediction.confidence)

    assert client.get("/admin/catalog/prediction/add/").status_code == 403
    response = client.post(
        f"/admin/catalog/prediction/{prediction.pk}/change/",
        {"dataset": pets.pk + 1, "label": "Moved label", "confidence": "1", "model_name": "m", "top_k": "[]"},
    )
    assert response.status_code == 302
    prediction.refresh_from_db()
    assert (prediction.dataset_id, prediction.image_id, prediction.label, prediction.confidence) == before
    assert prediction.model_name == "m", "the fields that are not the model's verdict stay editable"
