import pytest
from django.test import override_settings
from django.urls import reverse

from labelqa.review.models import ReviewerExclusion, Vote
from labelqa.review.selectors import dataset_agreement, reviewer_quality
from labelqa.review.services import batch_lease, tallies_refresh, votes_submit
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def review_cats(reviewer, dataset, confirmed: int):
    """Submit the Cat batch (10 images) confirming its first `confirmed` images."""
    lease = batch_lease(reviewer=reviewer, dataset=dataset, label="Cat")
    ids = sorted(lease.batch.predictions.values_list("id", flat=True))[:confirmed]
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids))


@pytest.fixture
def reviewed(pets, reviewer, reviewer2):
    pets.reviews_per_item = 2
    pets.consensus = "majority"
    pets.save()
    review_cats(reviewer, pets, confirmed=10)
    review_cats(reviewer2, pets, confirmed=5)
    tallies_refresh(dataset_id=pets.pk)
    return pets


def test_reviewer_quality_counts_votes_batches_and_agreement(reviewed):
    rows = {r["username"]: r for r in reviewer_quality(reviewed)}
    assert (rows["alice"]["votes"], rows["alice"]["batches"]) == (10, 1)
    # Each is measured against the other: they agree on the 5 images both confirmed, not on the other 5.
    assert rows["alice"]["agreement"] == 0.5 and rows["bob"]["agreement"] == 0.5
    assert rows["alice"]["median_seconds"] >= 0
    assert 0 < rows["bob"]["reliability"] <= 1
    assert not rows["alice"]["excluded"]


def test_reliability_needs_an_image_shared_with_another_reviewer(pets, reviewer, reviewer2):
    """Reviewing disjoint batches gives Dawid–Skene nothing to weigh: its figure would be the prior."""
    review_cats(reviewer, pets, confirmed=10)
    lease = batch_lease(reviewer=reviewer2, dataset=pets, label="Dog")
    votes_submit(reviewer=reviewer2, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set())
    tallies_refresh(dataset_id=pets.pk)
    rows = {r["username"]: r for r in reviewer_quality(pets)}
    assert rows["alice"]["reliability"] is None and rows["bob"]["reliability"] is None
    assert rows["alice"]["votes"] == 10


def test_agreement_is_with_the_others_and_leaves_out_excluded_reviewers(reviewed, reviewer, reviewer2, admin_user):
    from labelqa.review.services import reviewer_exclude

    reviewed.reviews_per_item = 3
    reviewed.save()
    erin = reviewer2.__class__.objects.create_user("erin")
    review_cats(erin, reviewed, confirmed=10)  # sides with alice on every image
    tallies_refresh(dataset_id=reviewed.pk)
    rows = {r["username"]: r for r in reviewer_quality(reviewed)}
    # alice vs (bob, erin) under majority: the others decide only the 5 both confirmed; alice agrees there.
    assert rows["alice"]["agreement"] == 1.0
    # bob vs (alice, erin): both confirm all 10; bob confirmed 5 of them.
    assert rows["bob"]["agreement"] == 0.5

    reviewer_exclude(dataset=reviewed, reviewer=reviewer2, by=admin_user)
    tallies_refresh(dataset_id=reviewed.pk)
    rows = {r["username"]: r for r in reviewer_quality(reviewed)}
    # bob no longer counts: alice and erin agree everywhere; bob is still measured against them.
    assert rows["alice"]["agreement"] == 1.0 and rows["erin"]["agreement"] == 1.0
    assert rows["bob"]["agreement"] == 0.5


def test_one_review_per_image_has_no_agreement_to_measure(pets, reviewer):
    review_cats(reviewer, pets, confirmed=10)
    tallies_refresh(dataset_id=pets.pk)
    assert reviewer_quality(pets)[0]["agreement"] is None


def test_dataset_agreement_is_fleiss_kappa_of_the_tallies(reviewed):
    # 5 items (2,0) and 5 items (1,1): P = 1/2; p = 15/20 -> Pe = 10/16; kappa = (1/2 - 5/8) / (3/8) = -1/3.
    assert dataset_agreement(reviewed) == {"kappa": pytest.approx(-1 / 3), "items": 10}


def test_the_quality_page_shows_reviewers_and_kappa(client, reviewed, admin_user):
    client.login(username=admin_user.username, password=PASSWORD)
    response = client.get(reverse("review:quality"), {"dataset": "pets"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="reviewer-quality"' in page and "alice" in page and "bob" in page
    assert "-0.333" in page
    assert page.count('value="exclude"') == 2


def test_the_page_says_when_there_are_no_votes(client, pets, admin_user):
    client.login(username=admin_user.username, password=PASSWORD)
    page = client.get(reverse("review:quality")).content.decode()
    assert 'id="no-votes"' in page and "not defined" in page


@pytest.mark.parametrize("who", ["reviewer", "scientist"])
def test_reviewers_and_scientists_get_403(client, pets, who, request):
    user = request.getfixturevalue(who)
    client.login(username=user.username, password=PASSWORD)
    assert client.get(reverse("review:quality")).status_code == 403
    assert client.post(reverse("review:exclusion"), {"dataset": "pets"}).status_code == 403


def test_anonymous_users_are_sent_to_login(client, pets):
    for response in (client.get(reverse("review:quality")), client.post(reverse("review:exclusion"))):
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_exclude_and_include_buttons_change_the_aggregation(client, reviewed, reviewer2, admin_user):
    client.login(username=admin_user.username, password=PASSWORD)
    url = reverse("review:exclusion")
    response = client.post(url, {"dataset": "pets", "reviewer": reviewer2.pk, "action": "exclude"})
    assert response.status_code == 302 and response["Location"] == reverse("review:quality") + "?dataset=pets"
    assert ReviewerExclusion.objects.filter(reviewer=reviewer2, created_by=admin_user).exists()
    page = client.get(reverse("review:quality"), {"dataset": "pets"}).content.decode()
    assert 'value="include"' in page and "not defined" in page  # one counted vote per image is left
    client.post(url, {"dataset": "pets", "reviewer": reviewer2.pk, "action": "include"})
    assert not ReviewerExclusion.objects.exists()
    assert Vote.objects.count() == 20


def test_the_exclusion_form_refuses_get_and_unknown_reviewers(client, reviewed, admin_user):
    client.login(username=admin_user.username, password=PASSWORD)
    assert client.get(reverse("review:exclusion")).status_code == 405
    response = client.post(reverse("review:exclusion"), {"dataset": "pets", "reviewer": "x", "action": "exclude"})
    assert response.status_code == 404


# A shared cache whose Redis is down: nothing listens on port 1.
CACHE_DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


def test_reliability_and_re_rank_scheduling_go_on_while_the_shared_cache_is_down(reviewed, admin_user, client):
    from worker.tasks import refresh_tallies

    reviewed.prioritise_uncertain = True
    reviewed.save()
    with override_settings(CACHES=CACHE_DOWN):
        rows = {r["username"]: r for r in reviewer_quality(reviewed)}
        assert rows["alice"]["reliability"] is not None
        client.force_login(admin_user)
        assert client.get(reverse("review:quality") + f"?dataset={reviewed.name}").status_code == 200
        Vote.objects.filter(reviewer__username="bob").update(confirm=True)
        reviewed.predictions.update(tally_stale=True)
        assert refresh_tallies(reviewed.pk) == reviewed.predictions.count(), "counted; only the re-rank waits"
