"""Many reviewers pulling work at once never over-serve a batch (real PostgreSQL, one connection per thread)."""

import io
import threading
from collections import Counter

import pytest
from django.db import connection, connections, transaction

from labelqa.analytics.selectors import report_for_dataset
from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Batch, Lease, Vote
from labelqa.review.services import batch_lease, tallies_refresh, votes_submit
from tests.conftest import make_user, seed_csv

THREADS = 16
REVIEWERS = 10


@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_and_ten_reviewers_drain_two_thousand_images_at_two_reviews_each(tmp_path):
    assert connection.vendor == "postgresql", "row locking is only meaningful on PostgreSQL (make test uses it)"
    predictions_import(
        dataset_name="crowd",
        stream=io.BytesIO(seed_csv({"Dog": 800, "Cat": 700, "Fox": 500})),
        images_root=str(tmp_path),
        reviews_per_item=2,
    )
    dataset = Dataset.objects.get(name="crowd")
    reviewers = [make_user(f"r{i}", "reviewer") for i in range(REVIEWERS)]
    errors: list[BaseException] = []
    served: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(reviewer):
        try:
            while (lease := batch_lease(reviewer=reviewer, dataset=dataset)) is not None:
                ids = list(Prediction.objects.filter(batch_id=lease.batch_id).values_list("id", flat=True))
                result = votes_submit(
                    reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids[::2])
                )
                if result.recorded:
                    with lock:
                        served.append((lease.batch_id, reviewer.pk))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connections.close_all()

    # 16 threads over 10 reviewers: six reviewers work from two threads at once.
    threads = [threading.Thread(target=work, args=(reviewers[i % REVIEWERS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    batches = Batch.objects.filter(dataset=dataset)
    assert batches.count() == 80
    per_batch = Counter(batch_id for batch_id, _ in served)
    assert set(per_batch.values()) == {2} and len(per_batch) == 80
    assert len(set(served)) == len(served), "a batch was served twice to one reviewer"
    assert all(b.reviews_done == 2 for b in batches)
    assert Lease.objects.filter(submitted_at__isnull=False).count() == 160
    votes_per_image = Counter(Vote.objects.values_list("prediction_id", flat=True))
    assert len(votes_per_image) == 2000 and set(votes_per_image.values()) == {2}


@pytest.mark.django_db(transaction=True)
def test_a_tally_refresh_that_meets_a_submit_in_flight_leaves_its_vote_to_be_counted(tmp_path):
    assert connection.vendor == "postgresql", "row locking is only meaningful on PostgreSQL (make test uses it)"
    predictions_import(dataset_name="d", stream=io.BytesIO(seed_csv({"Dog": 1})), images_root=str(tmp_path))
    prediction = Prediction.objects.get()
    first, second = make_user("r1", "reviewer"), make_user("r2", "reviewer")
    # The first vote is in and not counted yet: the image is stale when the second reviewer submits.
    Vote.objects.create(prediction=prediction, reviewer=first, confirm=True)
    Prediction.objects.filter(pk=prediction.pk).update(tally_stale=True)
    locked, go = threading.Event(), threading.Event()

    def submit_slowly():
        # What votes_submit does inside its transaction, held open while a refresh runs.
        try:
            with transaction.atomic():
                Vote.objects.create(prediction=prediction, reviewer=second, confirm=False)
                Prediction.objects.filter(pk=prediction.pk).update(tally_stale=True)
                locked.set()
                go.wait(10)
        finally:
            connections.close_all()

    def refresh():
        try:
            tallies_refresh(dataset_id=prediction.dataset_id)
        finally:
            connections.close_all()

    submit = threading.Thread(target=submit_slowly)
    submit.start()
    assert locked.wait(10)
    during = threading.Thread(target=refresh)
    during.start()
    during.join(0.5)  # a refresh that waits for the submit's row lock is still waiting here
    go.set()
    submit.join()
    during.join()
    tallies_refresh(dataset_id=prediction.dataset_id)  # the refresh the submit's commit queues
    prediction.refresh_from_db()
    assert (prediction.confirms, prediction.disconfirms, prediction.tally_stale) == (1, 1, False)


@pytest.mark.django_db(transaction=True)
def test_a_report_waits_for_tallies_a_worker_is_counting_rather_than_read_them_stale(tmp_path):
    assert connection.vendor == "postgresql", "row locking is only meaningful on PostgreSQL (make test uses it)"
    predictions_import(dataset_name="d", stream=io.BytesIO(seed_csv({"Dog": 3})), images_root=str(tmp_path))
    dataset = Dataset.objects.get(name="d")
    reviewer = make_user("r1", "reviewer")
    predictions = Prediction.objects.filter(dataset=dataset)
    Vote.objects.bulk_create([Vote(prediction=p, reviewer=reviewer, confirm=True) for p in predictions])
    predictions.update(tally_stale=True)
    locked, release = threading.Event(), threading.Event()

    def counting_worker():
        # What a refresh in the aggregation task holds while it counts these rows.
        try:
            with transaction.atomic():
                list(Prediction.objects.select_for_update().filter(dataset=dataset, tally_stale=True))
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    worker = threading.Thread(target=counting_worker)
    worker.start()
    assert locked.wait(10)
    threading.Timer(0.5, release.set).start()
    report = report_for_dataset(dataset)
    worker.join()
    assert report["totals"]["reviewed"] == 3, "the votes were committed before the report was asked for"
