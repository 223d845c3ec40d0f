"""The grid's "batch N of M for you" line: exact for small queues, capped for huge ones."""

import pytest

from labelqa.review import selectors
from labelqa.review.services import batch_lease, votes_submit
from tests.review.test_flow import login, open_next_batch


def submit_one(reviewer, dataset):
    lease = batch_lease(reviewer=reviewer, dataset=dataset)
    ids = set(lease.batch.predictions.values_list("id", flat=True))
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=ids)


@pytest.mark.django_db
def test_progress_counts_submitted_and_open_batches_for_this_reviewer(pets, reviewer, reviewer2):
    assert selectors.reviewer_progress(reviewer, pets) == {"submitted": 0, "remaining": 5, "more": False}
    submit_one(reviewer, pets)
    assert selectors.reviewer_progress(reviewer, pets) == {"submitted": 1, "remaining": 4, "more": False}
    # One review per item: the batch alice finished is no longer open to bob either.
    assert selectors.reviewer_progress(reviewer2, pets) == {"submitted": 0, "remaining": 4, "more": False}


@pytest.mark.django_db
def test_progress_with_two_reviews_per_item_leaves_out_only_my_own_batches(pets, reviewer, reviewer2):
    pets.reviews_per_item = 2
    pets.save()
    submit_one(reviewer, pets)
    assert selectors.reviewer_progress(reviewer, pets)["remaining"] == 4
    assert selectors.reviewer_progress(reviewer2, pets)["remaining"] == 5


@pytest.mark.django_db
def test_progress_past_the_cap_says_more(pets, reviewer, monkeypatch):
    monkeypatch.setattr(selectors, "REMAINING_COUNT_CAP", 3)
    assert selectors.reviewer_progress(reviewer, pets) == {"submitted": 0, "remaining": 3, "more": True}


@pytest.mark.django_db(transaction=True)
def test_the_grid_shows_the_progress_line(pets, reviewer, monkeypatch):
    client = login(reviewer.username)
    location, _, _ = open_next_batch(client)
    assert "batch 1 of 5 for you" in client.get(location).content.decode()
    monkeypatch.setattr(selectors, "REMAINING_COUNT_CAP", 2)
    assert "batch 1 · over 2 left for you" in client.get(location).content.decode()
