"""/datasets/: only admins open it (uploads are tested in test_import_jobs.py, re-forming in test_reform.py)."""

import re

import pytest
from django.test import Client

from labelqa.catalog.selectors import datasets_overview
from labelqa.review.models import Batch
from labelqa.review.services import batch_lease, votes_submit
from tests.conftest import PASSWORD


@pytest.mark.django_db
def test_an_admin_sees_the_datasets_with_a_reform_button_each(admin_user, pets):
    client = Client()
    client.login(username=admin_user.username, password=PASSWORD)
    html = client.get("/datasets/").content.decode()
    assert '<td class="text">pets</td>' in html
    assert f'action="/datasets/{pets.pk}/reform/"' in html


@pytest.mark.django_db
def test_a_batch_counts_as_reviewed_once_it_has_the_reviews_its_dataset_asks_for(admin_user, pets, reviewer):
    """With two reviews per item, batches reviewed once were counted as reviewed while the queue still served them."""
    pets.reviews_per_item = 2
    pets.save()
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set())
    [row] = datasets_overview()
    assert (row.n_batches, row.n_done) == (5, 0)
    Batch.objects.filter(pk=lease.batch_id).update(reviews_done=2)
    assert datasets_overview()[0].n_done == 1


@pytest.mark.django_db
def test_reviewers_cannot_open_the_datasets_page(reviewer):
    client = Client()
    client.login(username=reviewer.username, password=PASSWORD)
    assert client.get("/datasets/").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/datasets/",
        "/datasets/classify/",
        "/analytics/?dataset=pets",
        "/review/gold/?dataset=pets",
        "/review/correction-pass/?dataset=pets",
    ],
)
def test_every_field_description_a_form_points_to_is_on_the_page(admin_user, pets, url):
    """aria-describedby named help text ids that no element had, so screen readers read nothing."""
    client = Client()
    client.login(username=admin_user.username, password=PASSWORD)
    html = client.get(url).content.decode()
    described = re.findall(r'aria-describedby="([^"]+)"', html)
    assert described
    for ids in described:
        for element_id in ids.split():
            assert f'id="{element_id}"' in html, element_id
