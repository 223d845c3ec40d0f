"""Gold items in review grids: how many, of which label, never twice, indistinguishable; submit and accuracy."""

import io
import re

import pytest
from django.test import Client
from django.urls import reverse

from labelqa.catalog.models import Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.gold import gold_count_for, gold_mark, gold_share
from labelqa.review.gold_selectors import gold_accuracy
from labelqa.review.models import Batch, LeasedGold, Vote
from labelqa.review.services import batch_lease, votes_submit
from tests.conftest import PASSWORD, seed_csv

TILE = re.compile(r'<li class="tile.*?</li>', re.S)
CHECKBOX = re.compile(r'<input type="checkbox" name="confirm" value="(\d+)"')
LEASE = re.compile(r'name="lease" value="([^"]+)"')


def test_the_share_gold_fills_is_the_rate_until_the_grid_is_full():
    assert gold_share(20, 0.1) == pytest.approx(0.1)
    assert gold_share(20, 0.5) == pytest.approx(5 / 25), "five places beside 20 images: 20 %, not 50 %"
    assert gold_share(25, 0.04) == gold_share(20, 0) == 0


def test_gold_fills_the_rate_of_the_grid_within_its_25_places():
    assert gold_count_for(20, 0.2, draw=0.99) == 5  # 5 of 25 shown = 0.2
    assert gold_count_for(24, 0.04, draw=0.99) == 1  # the README's "about one in 25"
    assert gold_count_for(20, 0.0, draw=0.0) == 0
    assert gold_count_for(25, 0.2, draw=0.0) == 0  # a full grid has no room
    assert gold_count_for(23, 0.2, draw=0.0) == 2  # 5.75 wanted, 2 places left
    # 10 images at 0.1: 1.11 expected, so a second gold image comes with probability 0.11.
    assert gold_count_for(10, 0.1, draw=0.10) == 2
    assert gold_count_for(10, 0.1, draw=0.12) == 1


@pytest.fixture
def dogs(db, tmp_path):
    """60 Dog images in 3 batches of 20 and 20 Cat images; gold: 6 Dog images of the last Dog batch and 6 Cat
    images; gold fills 20% of a grid; two reviews per batch."""
    predictions_import(
        dataset_name="dogs",
        stream=io.BytesIO(seed_csv({"Dog": 60, "Cat": 20})),
        images_root=str(tmp_path),
        batch_size=20,
        reviews_per_item=2,
    )
    last_dog = Batch.objects.filter(dataset__name="dogs", label="Dog").order_by("id").last()
    dataset = last_dog.dataset
    dataset.gold_rate = 0.2
    dataset.save()
    cats = Prediction.objects.filter(dataset=dataset, label="Cat").order_by("id")[:6]
    for prediction in [*Prediction.objects.filter(batch=last_dog).order_by("id")[:6], *cats]:
        gold_mark(prediction=prediction, expect_confirm=True, truth=prediction.label)
    return dataset


def dog_gold() -> set[int]:
    return set(Prediction.objects.filter(gold__isnull=False, label="Dog").values_list("id", flat=True))


def reviewer_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def open_grid(client: Client, query: str = "") -> tuple[str, str, list[int]]:
    location = client.get("/review/next/" + query)["Location"]
    html = client.get(location).content.decode()
    return location.split("?")[0], html, [int(i) for i in CHECKBOX.findall(html)]


def test_a_grid_gets_gold_of_its_own_label_at_the_rate(dogs, reviewer):
    lease = batch_lease(reviewer=reviewer, dataset=dogs, label="Dog")
    gold = set(LeasedGold.objects.filter(lease=lease).values_list("prediction_id", flat=True))
    # 20 batch images at 0.2 want exactly 5 gold images (5 of 25), all Dog though Cat gold exists too.
    assert len(gold) == 5 and gold <= dog_gold()


def test_no_gold_is_mixed_in_when_the_rate_is_zero(dogs, reviewer):
    dogs.gold_rate = 0
    dogs.save()
    lease = batch_lease(reviewer=reviewer, dataset=dogs, label="Dog")
    assert not LeasedGold.objects.filter(lease=lease).exists()


def test_gold_images_look_exactly_like_the_others_and_keep_their_place(dogs, reviewer):
    client = reviewer_client(reviewer)
    url, html, ids = open_grid(client, "?label=Dog")
    gold = set(LeasedGold.objects.values_list("prediction_id", flat=True))
    assert len(ids) == 25 and len(gold) == 5 and gold <= set(ids)
    assert "gold" not in html.lower()
    # With numbers blanked out, every tile's markup is the same: nothing tells a gold image apart.
    tiles = {re.sub(r"\d+", "N", tile) for tile in TILE.findall(html)}
    assert len(tiles) == 1 and 'name="confirm" value="N" id="cN" checked>' in tiles.pop()
    assert [int(i) for i in CHECKBOX.findall(client.get(url).content.decode())] == ids  # a reload keeps the order


def test_a_reviewer_never_sees_a_gold_item_twice_and_every_image_gets_their_vote(dogs, reviewer):
    client = reviewer_client(reviewer)
    shown: list[int] = []
    while (response := client.get("/review/next/?label=Dog")).status_code == 302:
        url = response["Location"].split("?")[0]
        html = client.get(url).content.decode()
        ids = [int(i) for i in CHECKBOX.findall(html)]
        shown += ids
        client.post(url, {"lease": LEASE.search(html).group(1), "confirm": ids})
    # Grids: batch 1 + 5 gold, batch 2 + the 6th gold, batch 3 without the 6 gold images already answered.
    assert len(shown) == len(set(shown)) == 60
    assert Vote.objects.filter(reviewer=reviewer).count() == 60
    assert LeasedGold.objects.filter(reviewer=reviewer).count() == 6


def test_gold_is_not_served_twice_to_one_reviewer_but_is_reused_across_reviewers(dogs, reviewer, reviewer2):
    first = batch_lease(reviewer=reviewer, dataset=dogs, label="Dog")
    mixed = set(first.gold_items.values_list("prediction_id", flat=True))
    votes_submit(reviewer=reviewer, batch_id=first.batch_id, token=str(first.token), confirmed_ids=set())
    second = batch_lease(reviewer=reviewer, dataset=dogs, label="Dog")
    # Only the sixth Dog gold item is new to alice, so her second grid gets just that one.
    assert set(second.gold_items.values_list("prediction_id", flat=True)) == dog_gold() - mixed
    other = batch_lease(reviewer=reviewer2, dataset=dogs, label="Dog")
    assert other.gold_items.count() == 5


def test_submit_takes_votes_for_the_leases_gold_and_ignores_ids_outside_it(dogs, reviewer):
    lease = batch_lease(reviewer=reviewer, dataset=dogs, label="Dog")
    gold = sorted(lease.gold_items.values_list("prediction_id", flat=True))
    own = sorted(Prediction.objects.filter(batch=lease.batch).values_list("id", flat=True))
    foreign = (dog_gold() - set(gold)) | {Prediction.objects.filter(label="Cat").values_list("id", flat=True)[0]}

    result = votes_submit(
        reviewer=reviewer,
        batch_id=lease.batch_id,
        token=str(lease.token),
        confirmed_ids=set(own) | set(gold[1:]) | foreign,
    )

    assert result.recorded == len(own) + len(gold) == 25
    votes = dict(Vote.objects.filter(reviewer=reviewer).values_list("prediction_id", "confirm"))
    assert set(votes) == set(own) | set(gold)
    assert votes[gold[0]] is False and all(votes[g] for g in gold[1:])
    assert len(foreign) == 2 and not Vote.objects.filter(prediction_id__in=foreign).exists()


def test_the_batch_page_posts_gold_votes_through_the_http_contract(dogs, reviewer):
    client = reviewer_client(reviewer)
    url, html, ids = open_grid(client, "?label=Dog")
    response = client.post(url, {"lease": LEASE.search(html).group(1), "confirm": ids[1:]})
    assert response.status_code == 302 and response["Location"].startswith("/review/next/")
    assert Vote.objects.filter(reviewer=reviewer).count() == 25
    assert list(Vote.objects.filter(confirm=False).values_list("prediction_id", flat=True)) == [ids[0]]


@pytest.fixture
def graded(dogs, reviewer, reviewer2):
    """alice and bob each get the first Dog batch with 5 gold images; alice un-checks one of them."""
    for user, wrong in ((reviewer, 1), (reviewer2, 0)):
        lease = batch_lease(reviewer=user, dataset=dogs, label="Dog")
        gold = sorted(lease.gold_items.values_list("prediction_id", flat=True))
        own = set(Prediction.objects.filter(batch=lease.batch).values_list("id", flat=True))
        votes_submit(
            reviewer=user, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=own | set(gold[wrong:])
        )
    return dogs


def test_gold_accuracy_counts_right_and_wrong_answers(graded, dogs, reviewer, reviewer2):
    accuracy = gold_accuracy(dogs)
    alice, bob = accuracy[reviewer.pk], accuracy[reviewer2.pk]
    assert (alice["answered"], alice["correct"], alice["accuracy"]) == (5, 4, 0.8)
    assert (bob["answered"], bob["correct"], bob["accuracy"]) == (5, 5, 1.0)
    assert alice["ci95"] == (pytest.approx(0.376, abs=1e-3), pytest.approx(0.964, abs=1e-3))  # Wilson, 4 of 5


def test_votes_cast_before_an_item_became_gold_are_not_graded(graded, dogs, reviewer):
    ordinary = Vote.objects.filter(reviewer=reviewer, prediction__gold__isnull=True).first().prediction
    gold_mark(prediction=ordinary, expect_confirm=False)  # e.g. picked from the strip because of her vote
    assert gold_accuracy(dogs)[reviewer.pk]["answered"] == 5


def test_the_quality_page_shows_gold_answered_correct_and_the_interval(client, graded, dogs, reviewer, admin_user):
    client.login(username=admin_user.username, password=PASSWORD)
    page = client.get(reverse("review:quality"), {"dataset": "dogs"}).content.decode()
    alice = gold_accuracy(dogs)[reviewer.pk]
    low, high = alice["ci95"]
    row = re.search(r'<td class="text">alice</td>.*?</tr>', page, re.S).group(0)
    assert f'<td class="gold-answered">{alice["answered"]}</td>' in row
    assert f'<td class="gold-correct">{alice["correct"]}</td>' in row
    # A percentage, as every other accuracy on the site.
    assert f"{alice['accuracy']:.1%} [{low:.1%}, {high:.1%}]" in row
