"""A real `celery worker` process, fed through Redis, writes its effect into the test database."""

import time

import pytest

from labelqa.catalog.models import Prediction
from labelqa.review.services import batch_lease, votes_submit


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_recomputes_tallies_after_votes_are_submitted(pets, reviewer, live_worker):
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    ids = list(Prediction.objects.filter(batch_id=lease.batch_id).values_list("id", flat=True))
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids[1:]))

    deadline = time.monotonic() + 60
    while Prediction.objects.filter(pk__in=ids, tally_stale=True).exists():
        assert live_worker.poll() is None, live_worker.stdout.read().decode()
        assert time.monotonic() < deadline, "the worker did not recompute the tallies within 60 s"
        time.sleep(0.2)
    tallies = dict(Prediction.objects.filter(pk__in=ids).values_list("id", "confirms"))
    assert tallies[ids[0]] == 0
    assert all(tallies[i] == 1 for i in ids[1:])
    assert Prediction.objects.get(pk=ids[0]).disconfirms == 1
