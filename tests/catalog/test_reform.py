"""Re-forming batches: unreviewed, unleased items regrouped into full one-label batches; the rest left as it was."""

import io
import re
from collections import Counter
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from labelqa.catalog.models import Prediction
from labelqa.catalog.services import ReformSummary, batches_reform, predictions_import
from labelqa.review.gold import gold_mark
from labelqa.review.models import Batch, GoldItem, Lease, LeasedGold, Vote
from labelqa.review.services import BATCH_GONE, LeaseRefused, batch_lease, lease_revived, votes_submit
from tests.conftest import PASSWORD


def import_rows(dataset_name: str, tmp_path, rows: dict[str, range]) -> None:
    """Import one small file per call, so each call leaves its own part-filled batches."""
    lines = [f"img/{label}-{i}.jpg,{label},{80 + i % 20}" for label, ids in rows.items() for i in ids]
    predictions_import(
        dataset_name=dataset_name, stream=io.BytesIO("\n".join(lines).encode()), images_root=str(tmp_path)
    )


def batch_shapes(dataset) -> Counter:
    """Return {(label, size): how many batches} over the dataset's batches, checking each holds one label."""
    shapes = Counter()
    for batch in Batch.objects.filter(dataset=dataset):
        labels = set(batch.predictions.values_list("label", flat=True))
        assert labels <= {batch.label}, f"batch {batch.pk} mixes {labels}"
        shapes[(batch.label, len(batch.predictions.all()))] += 1
    return shapes


@pytest.fixture
def fragmented(db, tmp_path):
    """60 Dogs and 12 Cats imported in six small files: 6 part-filled Dog batches and 2 Cat batches of 6."""
    for part in range(6):
        import_rows("frag", tmp_path, {"Dog": range(part * 10, part * 10 + 10)})
    for part in range(2):
        import_rows("frag", tmp_path, {"Cat": range(part * 6, part * 6 + 6)})
    from labelqa.catalog.models import Dataset

    return Dataset.objects.get(name="frag")


@pytest.mark.django_db
def test_unreviewed_items_are_regrouped_into_full_batches_per_label(fragmented):
    assert batch_shapes(fragmented) == {("Dog", 10): 6, ("Cat", 6): 2}
    summary = batches_reform(dataset=fragmented)
    assert (summary.regrouped, summary.dissolved, summary.formed) == (72, 8, 4)
    assert batch_shapes(fragmented) == {("Dog", 25): 2, ("Dog", 10): 1, ("Cat", 12): 1}
    assert not Prediction.objects.filter(dataset=fragmented, batch__isnull=True).exists()


@pytest.mark.django_db
def test_the_shuffle_follows_the_dataset_seed_and_mixes_confidences(fragmented):
    batches_reform(dataset=fragmented)
    groups = [sorted(b.predictions.values_list("id", flat=True)) for b in Batch.objects.filter(dataset=fragmented)]
    batches_reform(dataset=fragmented)  # same seed: the same groups, in new batches
    again = [sorted(b.predictions.values_list("id", flat=True)) for b in Batch.objects.filter(dataset=fragmented)]
    assert sorted(groups) == sorted(again)
    full = Batch.objects.filter(dataset=fragmented, label="Dog").order_by("pk").first()
    ids = sorted(full.predictions.values_list("id", flat=True))
    assert ids != list(range(ids[0], ids[0] + len(ids))), "items are shuffled, not cut in import order"
    fragmented.shuffle_seed = 7
    fragmented.save()
    batches_reform(dataset=fragmented)
    reseeded = [sorted(b.predictions.values_list("id", flat=True)) for b in Batch.objects.filter(dataset=fragmented)]
    assert sorted(reseeded) != sorted(groups)


@pytest.mark.django_db
def test_reviewed_and_leased_batches_are_left_intact(fragmented, reviewer, reviewer2):
    reviewed = batch_lease(reviewer=reviewer, dataset=fragmented, label="Dog")
    reviewed_ids = set(Prediction.objects.filter(batch_id=reviewed.batch_id).values_list("id", flat=True))
    votes_submit(reviewer=reviewer, batch_id=reviewed.batch_id, token=str(reviewed.token), confirmed_ids=reviewed_ids)
    leased = batch_lease(reviewer=reviewer2, dataset=fragmented, label="Dog")
    leased_ids = set(Prediction.objects.filter(batch_id=leased.batch_id).values_list("id", flat=True))
    expired = batch_lease(reviewer=reviewer2, dataset=fragmented, label="Cat")
    Lease.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    votes_before = list(Vote.objects.order_by("pk").values_list("pk", "prediction_id", "confirm"))

    summary = batches_reform(dataset=fragmented)

    assert set(Prediction.objects.filter(batch_id=reviewed.batch_id).values_list("id", flat=True)) == reviewed_ids
    assert set(Prediction.objects.filter(batch_id=leased.batch_id).values_list("id", flat=True)) == leased_ids
    assert Lease.objects.filter(pk__in=[reviewed.pk, leased.pk]).count() == 2
    assert not Lease.objects.filter(pk=expired.pk).exists(), "an expired, unsubmitted lease goes with its batch"
    assert list(Vote.objects.order_by("pk").values_list("pk", "prediction_id", "confirm")) == votes_before
    assert summary.regrouped == 72 - 20 and summary.dissolved == 6
    assert batch_shapes(fragmented) == {("Dog", 10): 2, ("Dog", 25): 1, ("Dog", 15): 1, ("Cat", 12): 1}


@pytest.mark.django_db
def test_an_expired_grid_with_gold_on_it_goes_with_its_batch_and_cannot_be_revived(fragmented, reviewer):
    gold = Prediction.objects.filter(dataset=fragmented, label="Cat").first()
    gold_mark(prediction=gold, expect_confirm=True, truth="Cat")
    expired = batch_lease(reviewer=reviewer, dataset=fragmented, label="Dog")
    LeasedGold.objects.create(lease=expired, prediction=gold, reviewer=reviewer)
    Lease.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    summary = batches_reform(dataset=fragmented)  # the lease's gold row kept its deletion from committing

    assert summary.dissolved == 8
    assert not Lease.objects.filter(pk=expired.pk).exists() and not LeasedGold.objects.exists()
    assert GoldItem.objects.filter(prediction=gold).exists(), "the gold item itself stays"
    assert lease_revived(lease=expired) is False  # an old tab reloaded: its batch is gone, no error
    with pytest.raises(LeaseRefused, match=f"^{re.escape(BATCH_GONE)}$"):
        votes_submit(reviewer=reviewer, batch_id=expired.batch_id, token=str(expired.token), confirmed_ids=set())
    # The grid's form, sent late from the browser: the reviewer is told, and goes on to the next batch.
    client = Client()
    client.force_login(reviewer)
    response = client.post(f"/review/batch/{expired.batch_id}/", {"lease": str(expired.token)}, follow=True)
    assert response.redirect_chain[0] == ("/review/next/", 302)
    assert BATCH_GONE in [str(m) for m in response.context["messages"]]
    assert client.get(f"/review/batch/{expired.batch_id}/").status_code == 404


@pytest.mark.django_db
def test_the_dataset_page_button_and_the_admin_action_reform(fragmented, admin_user):
    client = Client()
    client.login(username=admin_user.username, password=PASSWORD)
    response = client.post(f"/datasets/{fragmented.pk}/reform/", follow=True)
    assert "Dataset frag: 72 unreviewed predictions regrouped from 8 batches into 4." in response.content.decode()
    import_rows("frag", fragmented.images_root, {"Cat": range(100, 103)})  # one more part-filled batch
    response = client.post(
        "/admin/catalog/dataset/",
        {"action": "reform_batches", "_selected_action": [fragmented.pk]},
        follow=True,
    )
    assert "Dataset frag: 75 unreviewed predictions regrouped from 5 batches into 4." in response.content.decode()
    assert batch_shapes(fragmented)[("Cat", 15)] == 1


def test_the_summary_counts_in_the_singular_for_one():
    assert ReformSummary(1, 1, 1).describe("d") == "Dataset d: 1 unreviewed prediction regrouped from 1 batch into 1."
    assert (
        ReformSummary(2, 3, 1).describe("d") == "Dataset d: 2 unreviewed predictions regrouped from 3 batches into 1."
    )
