"""A worker SIGKILLed in the middle of aggregation: the task is redelivered and its effect applied exactly once."""

import os
import signal

import psycopg
import pytest

from labelqa.catalog.models import Prediction
from labelqa.review.models import Vote
from labelqa.review.services import batch_lease, tallies_recompute, votes_submit
from tests.live import blocked_backends, database_conninfo, output_of, wait_until

# Short enough for the test; production keeps it above the longest task (README, "Failure behaviour").
VISIBILITY_TIMEOUT = "1"


def tallies(dataset) -> list[tuple[int, int, int, bool]]:
    return list(
        Prediction.objects.filter(dataset=dataset)
        .order_by("pk")
        .values_list("pk", "confirms", "disconfirms", "tally_stale")
    )


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_during_aggregation_is_redelivered_and_counts_each_vote_once(pets, reviewer, start_worker):
    # One submitted batch queues exactly one refresh: only its redelivery can count these votes.
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    voted = list(Prediction.objects.filter(batch_id=lease.batch_id).order_by("pk").values_list("pk", flat=True))
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(voted[::2]))
    votes_before = Vote.objects.count()

    # Hold the votes the aggregation must count, so the worker waits inside PostgreSQL mid-task, with the stale
    # rows it took locked. (It skips prediction rows someone else holds, so a row lock would not stop it.)
    locker = psycopg.connect(database_conninfo())
    locker.execute("LOCK TABLE review_vote IN ACCESS EXCLUSIVE MODE")
    worker = start_worker(LABELQA_BROKER_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT)
    try:
        [backend] = wait_until(
            blocked_backends, timeout=60, what="the worker blocking on the locked votes", process=worker
        )
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        # A killed host takes its connection with it; here the server would otherwise finish the orphaned UPDATE
        # once the lock goes, and the test could not tell that from a redelivery.
        with psycopg.connect(database_conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
    finally:
        locker.rollback()
        locker.close()
    assert Prediction.objects.filter(pk__in=voted, tally_stale=True).count() == len(voted), "nothing was applied"

    # A new worker gets the unacknowledged task back from Redis after the visibility timeout.
    restarted = start_worker(LABELQA_BROKER_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT)
    wait_until(
        lambda: not Prediction.objects.filter(dataset=pets, tally_stale=True).exists(),
        timeout=60,
        what="the redelivered aggregation",
        process=restarted,
    )
    after_redelivery = tallies(pets)
    tallies_recompute(dataset=pets)
    assert after_redelivery == tallies(pets), output_of(restarted)
    assert Vote.objects.count() == votes_before
    by_id = {pk: (confirms, disconfirms) for pk, confirms, disconfirms, _ in after_redelivery}
    assert all(sum(by_id[pk]) == 1 for pk in voted), "each image has exactly one vote counted"
    assert sum(c for c, _ in by_id.values()) == Vote.objects.filter(confirm=True).count()
