"""Lease lifetime: expiry returns a batch, late submits count when the slot is free, votes can be revised."""

import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Lease, Vote
from labelqa.review.services import OPEN_LEASES_PER_REVIEWER, LeaseRefused, batch_lease, votes_submit
from tests.conftest import seed_csv


def expire(lease: Lease) -> None:
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def batch_ids(lease: Lease) -> list[int]:
    return list(Prediction.objects.filter(batch_id=lease.batch_id).order_by("id").values_list("id", flat=True))


@pytest.mark.django_db
def test_a_reviewer_gets_their_open_lease_back(pets, reviewer):
    first = batch_lease(reviewer=reviewer, dataset=pets)
    assert batch_lease(reviewer=reviewer, dataset=pets).pk == first.pk


@pytest.mark.django_db
def test_an_open_lease_that_expires_before_it_is_extended_is_not_extended(pets, reviewer, reviewer2, monkeypatch):
    """Read live, expired by the time it is extended, its slot taken meanwhile: extending it would over-fill."""
    from labelqa.review import services

    held = batch_lease(reviewer=reviewer, dataset=pets, label="Cat")  # Cat: one batch, one review wanted
    expire(held)
    taker = batch_lease(reviewer=reviewer2, dataset=pets, label="Cat")
    assert taker.batch_id == held.batch_id
    monkeypatch.setattr(services, "_open_lease", lambda *args: held)  # as read an instant before it expired

    assert batch_lease(reviewer=reviewer, dataset=pets, label="Cat") is None, "the slot is reviewer2's now"
    held.refresh_from_db()
    assert held.expires_at < timezone.now()


@pytest.mark.django_db
def test_an_expired_lease_returns_the_batch_to_the_pool(pets, reviewer, reviewer2):
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    assert batch_lease(reviewer=reviewer2, dataset=pets).batch_id != lease.batch_id
    other = Lease.objects.get(reviewer=reviewer2)
    other.delete()
    expire(lease)
    assert batch_lease(reviewer=reviewer2, dataset=pets).batch_id == lease.batch_id


@pytest.mark.django_db
def test_a_late_submit_is_accepted_while_nobody_else_took_the_batch(pets, reviewer):
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    expire(lease)
    result = votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set())
    assert result.recorded == len(batch_ids(lease))


@pytest.mark.django_db
def test_a_late_submit_is_refused_with_a_message_when_another_reviewer_took_the_batch(pets, reviewer, reviewer2):
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    expire(lease)
    # Reviewer 2 drains everything else first, so the expired batch is what they get next.
    while (taken := batch_lease(reviewer=reviewer2, dataset=pets)).batch_id != lease.batch_id:
        votes_submit(reviewer=reviewer2, batch_id=taken.batch_id, token=str(taken.token), confirmed_ids=set())
    with pytest.raises(LeaseRefused, match="another reviewer has taken it"):
        votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set())
    assert not Vote.objects.filter(reviewer=reviewer).exists()


@pytest.mark.django_db
def test_revising_a_submitted_batch_updates_votes_without_duplicating_them(pets, reviewer):
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    ids = batch_ids(lease)
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids))
    again = votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set())
    assert again.recorded == 0 and Vote.objects.filter(confirm=False).count() == 0
    votes_submit(
        reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids[1:]), revise=True
    )
    assert Vote.objects.count() == len(ids)
    assert list(Vote.objects.filter(confirm=False).values_list("prediction_id", flat=True)) == [ids[0]]
    lease.batch.refresh_from_db()
    assert lease.batch.reviews_done == 1


@pytest.mark.django_db
def test_a_lease_token_of_another_reviewer_is_refused(pets, reviewer, reviewer2):
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    with pytest.raises(LeaseRefused):
        votes_submit(reviewer=reviewer2, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set())
    assert Vote.objects.count() == 0


@pytest.mark.django_db
def test_reloading_a_grid_whose_lease_ran_out_renews_it_while_the_batch_has_room(pets, reviewer):
    lease = batch_lease(reviewer=reviewer, dataset=pets, label="Cat")
    expire(lease)
    client = Client()
    client.force_login(reviewer)
    response = client.get(f"/review/batch/{lease.batch_id}/")
    lease.refresh_from_db()
    assert response.status_code == 200 and lease.expires_at > timezone.now()


@pytest.mark.django_db
def test_reloading_a_grid_another_reviewer_took_over_leads_to_the_next_batch(pets, reviewer, reviewer2):
    lease = batch_lease(reviewer=reviewer, dataset=pets, label="Cat")  # Cat: one batch, one review wanted
    expire(lease)
    assert batch_lease(reviewer=reviewer2, dataset=pets, label="Cat").batch_id == lease.batch_id
    client = Client()
    client.force_login(reviewer)
    response = client.get(f"/review/batch/{lease.batch_id}/", follow=True)
    assert response.redirect_chain[0] == ("/review/next/", 302)
    assert "Your time on that Cat batch ran out and other reviewers have it now" in response.content.decode()
    lease.refresh_from_db()
    assert lease.expires_at < timezone.now(), "the slot stays reviewer2's"


def live(lease: Lease) -> bool:
    lease.refresh_from_db()
    return lease.expires_at > timezone.now()


@pytest.fixture
def birds(db, tmp_path):
    predictions_import(dataset_name="birds", stream=io.BytesIO(seed_csv({"Owl": 25})), images_root=str(tmp_path))
    return Dataset.objects.get(name="birds")


@pytest.mark.django_db
def test_a_reviewer_holds_at_most_three_grids_so_filters_cannot_hoard_the_queue(pets, birds, reviewer, reviewer2):
    assert OPEN_LEASES_PER_REVIEWER == 3
    cat, fox, dog = (batch_lease(reviewer=reviewer, dataset=pets, label=label) for label in ("Cat", "Fox", "Dog"))
    assert live(cat) and live(fox) and live(dog), "a few tabs' worth of grids stay open"
    owl = batch_lease(reviewer=reviewer, dataset=birds)
    assert not live(cat) and live(fox) and live(dog) and live(owl), "the oldest grid is released"
    assert batch_lease(reviewer=reviewer2, dataset=pets, label="Cat").batch_id == cat.batch_id  # Cat: one batch


@pytest.mark.django_db
def test_a_released_grid_still_saves_while_its_batch_has_a_slot(pets, birds, reviewer):
    cat = batch_lease(reviewer=reviewer, dataset=pets, label="Cat")
    for label in ("Fox", "Dog"):
        batch_lease(reviewer=reviewer, dataset=pets, label=label)
    batch_lease(reviewer=reviewer, dataset=birds)
    assert not live(cat)
    result = votes_submit(reviewer=reviewer, batch_id=cat.batch_id, token=str(cat.token), confirmed_ids=set())
    assert result.recorded == len(batch_ids(cat))


@pytest.mark.django_db
def test_reloading_a_released_grid_renews_it_and_releases_the_oldest_other(pets, birds, reviewer, reviewer2):
    cat, fox, dog = (batch_lease(reviewer=reviewer, dataset=pets, label=label) for label in ("Cat", "Fox", "Dog"))
    owl = batch_lease(reviewer=reviewer, dataset=birds)
    client = Client()
    client.force_login(reviewer)
    assert client.get(f"/review/batch/{cat.batch_id}/").status_code == 200
    assert live(cat) and not live(fox) and live(dog) and live(owl)
    assert batch_lease(reviewer=reviewer2, dataset=pets, label="Fox").batch_id == fox.batch_id


@pytest.mark.django_db
def test_a_batch_the_reviewer_submitted_never_comes_back_once_its_lease_time_is_over(pets, reviewer):
    pets.reviews_per_item = 2
    pets.save()
    seen = []
    while (lease := batch_lease(reviewer=reviewer, dataset=pets)) is not None:
        assert lease.batch_id not in seen
        seen.append(lease.batch_id)
        votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set())
        expire(lease)  # submitted long ago: only the submission keeps the batch from them now
    assert len(seen) == 5
