"""The analytics page says when background aggregation is behind (votes saved, tallies not yet counted)."""

import pytest

from labelqa.catalog.models import Prediction
from labelqa.review.services import batch_lease, votes_submit

NOTICE = 'id="aggregates-lag"'


@pytest.mark.django_db
def test_the_analytics_page_warns_that_aggregates_may_lag_while_tallies_are_stale(pets, reviewer, client, scientist):
    client.force_login(scientist)
    assert NOTICE not in client.get("/analytics/").content.decode()

    # Inside the test's transaction the refresh queued on commit never runs: the tallies stay stale, as they do
    # while the broker or the worker is down.
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set())
    stale = Prediction.objects.filter(dataset=pets, tally_stale=True).count()
    assert stale == len(lease.batch.predictions.all()) > 0

    html = " ".join(client.get("/analytics/").content.decode().split())
    assert NOTICE in html and f"Aggregates may lag.</strong> {stale} images had votes" in html
    # The page counted the votes itself, so its figures hold them and the next load has nothing to warn about.
    assert not Prediction.objects.filter(dataset=pets, tally_stale=True).exists()
    assert NOTICE not in client.get("/analytics/").content.decode()
