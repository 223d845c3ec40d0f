"""The review HTTP contract (DESIGN.md, "Review flow"), through the test client with CSRF enforced."""

import io
import re

import pytest
from django.test import Client

from labelqa.analytics.selectors import report_for_dataset
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Batch, Vote
from tests.conftest import PASSWORD

CHECKBOX = re.compile(r'<input type="checkbox" name="confirm" value="(\d+)"[^>]*\bchecked\b')


def login(username: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/accounts/login/", {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302, "login failed"
    return client


def open_next_batch(client: Client) -> tuple[str, list[int], str]:
    """Lease the next batch and return its URL, the prediction ids on its grid and the lease token."""
    location = client.get("/review/next/")["Location"]
    html = client.get(location).content.decode()
    ids = [int(i) for i in CHECKBOX.findall(html)]
    return location, ids, re.search(r'name="lease" value="([^"]+)"', html).group(1)


def review_until_empty(client: Client, uncheck_first: bool = True) -> list[tuple[str, list[int], list[int]]]:
    """Drain the queue like a reviewer: submit each batch with the first box unchecked; return what was sent."""
    sent = []
    while True:
        response = client.get("/review/next/")
        if response.status_code == 200:
            assert 'id="queue-empty"' in response.content.decode()
            return sent
        assert response.status_code == 302 and "/review/batch/" in response["Location"]
        page = client.get(response["Location"])
        html = page.content.decode()
        ids = [int(i) for i in CHECKBOX.findall(html)]
        assert 1 <= len(ids) <= 25
        lease = re.search(r'name="lease" value="([^"]+)"', html).group(1)
        label = re.search(r'<span class="label-name">([^<]+)</span>', html).group(1)
        confirmed = ids[1:] if uncheck_first else ids
        posted = client.post(
            response["Location"].split("?")[0],
            {"csrfmiddlewaretoken": client.cookies["csrftoken"].value, "lease": lease, "confirm": confirmed},
        )
        assert posted.status_code == 302 and posted["Location"].startswith("/review/next/")
        sent.append((label, confirmed, [i for i in ids if i not in confirmed]))


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_drains_a_dataset_in_the_expected_batches(pets, reviewer):
    sent = review_until_empty(login(reviewer.username))

    batches_per_label = {}
    for label, _, _ in sent:
        batches_per_label[label] = batches_per_label.get(label, 0) + 1
    assert batches_per_label == {"Dog": 2, "Cat": 1, "Fox": 2}
    report = report_for_dataset(pets)
    by_label = {c["label"]: c for c in report["classes"]}
    for label, n in {"Dog": 30, "Cat": 10, "Fox": 26}.items():
        confirms = sum(len(c) for lbl, c, _ in sent if lbl == label)
        disconfirms = sum(len(d) for lbl, _, d in sent if lbl == label)
        assert by_label[label]["confirmed"] == confirms
        assert by_label[label]["disconfirmed"] == disconfirms
        assert by_label[label]["reviewed"] == n


@pytest.mark.django_db
def test_a_post_without_csrf_is_refused(pets, reviewer):
    client = login(reviewer.username)
    location = client.get("/review/next/")["Location"]
    response = client.post(location, {"lease": "x"})
    assert response.status_code == 403
    assert Vote.objects.count() == 0


@pytest.mark.django_db
def test_submitting_the_same_lease_twice_records_nothing_new(pets, reviewer):
    client = login(reviewer.username)
    location, ids, lease = open_next_batch(client)
    csrf = client.cookies["csrftoken"].value
    client.post(location, {"csrfmiddlewaretoken": csrf, "lease": lease, "confirm": ids})
    second = client.post(location, {"csrfmiddlewaretoken": csrf, "lease": lease, "confirm": []}, follow=True)
    assert "already submitted, so the answers sent first were kept" in second.content.decode(), "said, not silent"
    assert Vote.objects.count() == len(ids)
    assert Vote.objects.filter(confirm=True).count() == len(ids)
    assert Batch.objects.get(pk=int(location.rstrip("/").split("/")[-1])).reviews_done == 1


@pytest.mark.django_db
def test_a_reviewer_never_gets_a_batch_twice_and_two_reviews_per_item_serve_each_batch_twice(pets, reviewer, reviewer2):
    pets.reviews_per_item = 2
    pets.save()
    first = review_until_empty(login(reviewer.username))
    second = review_until_empty(login(reviewer2.username))
    assert len(first) == len(second) == 5
    assert review_until_empty(login(reviewer.username)) == []
    assert all(b.reviews_done == 2 for b in Batch.objects.all())
    assert Vote.objects.count() == 2 * 66


@pytest.mark.django_db
def test_a_queue_whose_batches_are_on_other_reviewers_grids_says_so_rather_than_all_done(pets, reviewer, reviewer2):
    first = login(reviewer.username)
    held = [first.get("/review/next/?label=Cat")["Location"], first.get("/review/next/?label=Fox")["Location"]]
    assert len(set(held)) == 2
    second = login(reviewer2.username)
    page = second.get("/review/next/?dataset=pets&label=Cat").content.decode()
    assert "All done" not in page and 'id="queue-waiting"' in page
    assert "1 batch you have not reviewed is on other reviewers' open grids in pets labelled “Cat”" in page
    # The lease's 10 minutes, less the time this test took.
    assert re.search(r"the first lease runs out in (9|10)\xa0minutes", page)
    assert 'href="/review/next/?dataset=pets&amp;label=Cat" class="button">Try again</a>' in page
    # Once the holder submits, the batch is finished (one review per item): the queue is done.
    lease = re.search(r'name="lease" value="([^"]+)"', first.get(held[0]).content.decode()).group(1)
    first.post(held[0], {"csrfmiddlewaretoken": first.cookies["csrftoken"].value, "lease": lease, "confirm": []})
    assert "All done" in second.get("/review/next/?dataset=pets&label=Cat").content.decode()
    # The holder's end of the queue says their last batch is saved and leads back to it.
    assert "All done" in (end := first.get("/review/next/?dataset=pets&label=Cat").content.decode())
    assert f'Your last batch, Cat in pets, is saved: <a href="{held[0]}">change its answers</a>' in end


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_login_and_wrong_roles_get_403(pets, scientist):
    anonymous = Client()
    for url in ("/review/", "/review/next/", "/analytics/", "/datasets/"):
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client = login(scientist.username)
    assert client.get("/review/next/").status_code == 403
    assert client.get("/datasets/").status_code == 403
    assert client.get("/analytics/").status_code == 200


@pytest.mark.django_db
def test_a_reviewer_goes_back_to_the_previous_batch_and_changes_a_vote(pets, reviewer):
    client = login(reviewer.username)
    first, ids, lease = open_next_batch(client)
    csrf = client.cookies["csrftoken"].value
    client.post(first, {"csrfmiddlewaretoken": csrf, "lease": lease, "confirm": ids})

    second = client.get("/review/next/")["Location"]
    page = client.get(second).content.decode()
    previous = re.search(r'href="([^"]+)" id="previous-batch"', page).group(1)
    assert previous == f"{first}?back={second.split('/')[-2]}"
    revising = client.get(previous).content.decode()
    assert 'id="revising"' in revising and 'name="revise" value="1"' in revising
    assert [int(i) for i in CHECKBOX.findall(revising)] == ids
    client.post(previous, {"csrfmiddlewaretoken": csrf, "lease": lease, "confirm": ids[1:], "revise": "1"})
    assert Vote.objects.count() == len(ids)
    assert list(Vote.objects.filter(confirm=False).values_list("prediction_id", flat=True)) == [ids[0]]
    assert [int(i) for i in CHECKBOX.findall(client.get(previous).content.decode())] == ids[1:]


@pytest.mark.django_db
def test_a_revised_batch_leads_back_to_the_grid_the_reviewer_left_not_their_oldest_open_one(pets, reviewer, tmp_path):
    """A grid of another dataset left open earlier: the bare /review/next/ would have handed that one back."""
    predictions_import(dataset_name="birds", stream=io.BytesIO(b"owl.jpg,Owl,90\n"), images_root=str(tmp_path))
    client = login(reviewer.username)
    csrf = client.cookies["csrftoken"].value
    older = client.get("/review/next/?dataset=birds")["Location"]
    first = client.get("/review/next/?dataset=pets")["Location"]
    lease = re.search(r'name="lease" value="([^"]+)"', client.get(first).content.decode()).group(1)
    assert client.post(first, {"csrfmiddlewaretoken": csrf, "lease": lease})["Location"] == "/review/next/"
    current = client.get("/review/next/")["Location"]
    assert current not in (older, first) and Batch.objects.get(pk=current.split("/")[-2]).dataset == pets

    page = client.get(current).content.decode()
    previous = re.search(r'href="([^"]+)" id="previous-batch"', page).group(1)
    revising = client.get(previous).content.decode()
    assert f'<a href="{current}" id="back-to-batch">back to the batch you were on</a>' in revising
    form = {"csrfmiddlewaretoken": csrf, "lease": lease, "revise": "1"}
    form["back"] = re.search(r'name="back" value="(\d+)"', revising).group(1)
    assert client.post(first, form)["Location"] == current
    assert "Your answers for that" in client.get(current).content.decode(), "the revise was saved, and said so"


@pytest.mark.django_db
def test_a_filtered_queue_keeps_its_filter_behind_the_contracts_bare_redirects(pets, reviewer):
    """?label= (or ?dataset=) carries from batch to batch, yet every Location is exactly the contract's URL."""
    client = login(reviewer.username)
    csrf = client.cookies["csrftoken"].value
    location = client.get("/review/next/?label=Fox")["Location"]
    foxes = []
    while re.fullmatch(r"/review/batch/(\d+)/", location):
        foxes.append(Batch.objects.get(pk=int(location.split("/")[-2])).label)
        lease = re.search(r'name="lease" value="([^"]+)"', client.get(location).content.decode()).group(1)
        submitted = client.post(location, {"csrfmiddlewaretoken": csrf, "lease": lease})
        assert submitted["Location"] == "/review/next/"
        after = client.get(submitted["Location"])
        location = after.get("Location", "")
    assert foxes == ["Fox", "Fox"]
    assert "There are no more batches for you labelled “Fox”" in after.content.decode()
    assert Batch.objects.get(pk=int(client.get("/review/next/")["Location"].split("/")[-2])).label != "Fox"


@pytest.mark.django_db
@pytest.mark.parametrize(("label", "article"), [("Egyptian cat", "an"), ("Dog", "a")])
def test_the_grid_asks_with_an_before_a_label_that_starts_with_a_vowel(tmp_path, reviewer, label, article):
    rows = io.BytesIO(f"a.jpg,{label},90\n".encode())
    predictions_import(dataset_name="cats", stream=rows, images_root=str(tmp_path))
    client = login(reviewer.username)
    location, _, _ = open_next_batch(client)
    html = client.get(location).content.decode()
    assert f'>Is each image {article} <span class="label-name">{label}</span>?</h1>' in html
