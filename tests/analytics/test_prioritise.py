"""'Prioritise uncertain buckets': the least certain batches are leased first."""

import io
import threading

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from labelqa.analytics import services as analytics_services
from labelqa.analytics.selectors import cell_counts, report_for_dataset
from labelqa.analytics.services import batch_priorities_refresh
from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Batch
from labelqa.review.services import batch_lease, votes_submit
from tests.conftest import PASSWORD


@pytest.fixture
def reviewed_once(db, tmp_path, reviewer):
    """50 Cat and 50 Dog images at 96%, two reviews each wanted; one reviewer confirmed every Cat and half the Dogs."""
    rows = "".join(f"c{i}.jpg,Cat,96\n" for i in range(50)) + "".join(f"d{i}.jpg,Dog,96\n" for i in range(50))
    predictions_import(
        dataset_name="prio", stream=io.BytesIO(rows.encode()), images_root=str(tmp_path), reviews_per_item=2
    )
    dataset = Dataset.objects.get(name="prio")
    while (lease := batch_lease(reviewer=reviewer, dataset=dataset)) is not None:
        ids = list(Prediction.objects.filter(batch_id=lease.batch_id).order_by("id").values_list("id", flat=True))
        confirmed = set(ids) if lease.batch.label == "Cat" else set(ids[::2])
        votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=confirmed)
    return dataset


@pytest.mark.django_db
def test_uncertain_batches_are_served_first_only_when_switched_on(reviewed_once, reviewer2):
    batch_priorities_refresh(dataset_id=reviewed_once.pk)
    assert set(Batch.objects.values_list("priority", flat=True)) == {0}
    assert batch_lease(reviewer=reviewer2, dataset=reviewed_once).batch.label == "Cat"  # in order: Cat comes first
    reviewer2.leases.all().delete()  # nothing submitted: let the next call choose afresh

    reviewed_once.prioritise_uncertain = True
    reviewed_once.save()
    batch_priorities_refresh(dataset_id=reviewed_once.pk)
    cat = Batch.objects.filter(label="Cat").first()
    dog = Batch.objects.filter(label="Dog").first()
    # All Cats confirmed: settled within +/-5 points. Dogs at 50%: hundreds of reviews short.
    assert cat.priority == 0 and dog.priority > 100
    assert batch_lease(reviewer=reviewer2, dataset=reviewed_once).batch.label == "Dog"


@pytest.mark.django_db
def test_a_scientist_switches_prioritisation_on_the_analytics_page(reviewed_once, scientist, reviewer):
    client = Client()
    client.login(username=scientist.username, password=PASSWORD)
    assert 'id="prioritise"' in client.get("/analytics/?dataset=prio").content.decode()
    # Posted from a report with its own edges, consensus and sort: back to that report, not the default one.
    shown = "dataset=prio&edges=70%2C80%2C90%2C100&consensus=majority&sort=total&dir=desc"
    response = client.post(f"/analytics/prio/prioritise/?{shown}", {"enabled": "1"})
    assert response.status_code == 302 and response["Location"] == f"/analytics/?{shown}"
    reviewed_once.refresh_from_db()
    assert reviewed_once.prioritise_uncertain
    assert Batch.objects.filter(label="Dog", priority__gt=0).count() == 2
    reviewer_client = Client()
    reviewer_client.login(username=reviewer.username, password=PASSWORD)
    assert reviewer_client.post("/analytics/prio/prioritise/", {"enabled": "0"}).status_code == 403
    # The role is checked before the method: a GET is refused as the role's, then as the method's.
    assert reviewer_client.get("/analytics/prio/prioritise/").status_code == 403
    assert Client().get("/analytics/prio/prioritise/")["Location"].startswith("/accounts/login/")
    assert client.get("/analytics/prio/prioritise/").status_code == 405


@pytest.mark.django_db
def test_aggregation_re_ranks_at_most_once_per_window(reviewed_once, reviewer2, eager_celery):
    from django.core.cache import cache

    from worker.tasks import refresh_tallies

    reviewed_once.prioritise_uncertain = True
    reviewed_once.save()
    refresh_tallies(reviewed_once.pk)
    assert Batch.objects.filter(label="Dog", priority__gt=0).count() == 2, "the first refresh re-ranks"

    # reviewer2 disconfirms every other Cat: Cats become uncertain, but the window is still open.
    while (lease := batch_lease(reviewer=reviewer2, dataset=reviewed_once, label="Cat")) is not None:
        ids = sorted(Prediction.objects.filter(batch_id=lease.batch_id).values_list("id", flat=True))
        votes_submit(reviewer=reviewer2, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids[::2]))
    Batch.objects.filter(label="Cat").update(reviews_done=1)  # keep them open to be ranked
    refresh_tallies(reviewed_once.pk)
    assert set(Batch.objects.filter(label="Cat").values_list("priority", flat=True)) == {0}

    cache.clear()  # the window has passed
    refresh_tallies(reviewed_once.pk)
    assert all(p > 0 for p in Batch.objects.filter(label="Cat").values_list("priority", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize("policy", ["unanimous", "majority", "dawid-skene"])
def test_re_ranking_counts_are_the_reports_bucket_counts(reviewed_once, reviewer2, policy):
    """Re-ranking reads cells without building the report; both must count the same reviews in each bucket."""
    lease = batch_lease(reviewer=reviewer2, dataset=reviewed_once, label="Cat")
    ids = sorted(Prediction.objects.filter(batch_id=lease.batch_id).values_list("id", flat=True))
    votes_submit(reviewer=reviewer2, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids[::3]))
    reviewed_once.consensus = policy
    reviewed_once.save()

    report = report_for_dataset(reviewed_once)
    from_report = {
        (entry["label"], index, bucket["reviewed"], bucket["reviewed"] - bucket["incorrect"])
        for entry in report["classes"]
        for index, bucket in enumerate(entry["buckets"])
        if bucket["total"]
    }
    assert set(cell_counts(reviewed_once)) == from_report
    assert any(reviewed > confirmed > 0 for _label, _bucket, reviewed, confirmed in from_report), from_report


@pytest.mark.django_db(transaction=True)
def test_a_re_rank_waiting_on_one_batch_leaves_the_others_to_lease(reviewed_once, reviewer2, monkeypatch):
    """Leasing skips locked batches: a re-rank must not hold every open batch while it runs."""
    assert connection.vendor == "postgresql", "row locking is only meaningful on PostgreSQL (make test uses it)"
    reviewed_once.prioritise_uncertain = True
    reviewed_once.save()
    monkeypatch.setattr(analytics_services, "PRIORITY_ROWS_PER_UPDATE", 1)
    last = Batch.objects.order_by("-id").first()  # written last by a statement that walks the table
    assert last.label == "Dog", "its priority changes, so the re-rank must wait for it"
    done = threading.Event()
    leases = []

    def in_thread(work):
        try:
            work()
        finally:
            connections.close_all()

    def re_rank():
        batch_priorities_refresh(dataset_id=reviewed_once.pk)
        done.set()

    with transaction.atomic():
        list(Batch.objects.select_for_update().filter(pk=last.pk))  # a submit holding this batch's row
        ranking = threading.Thread(target=in_thread, args=(re_rank,))
        ranking.start()
        assert not done.wait(0.5), "the re-rank waits for the held batch"
        leasing = threading.Thread(
            target=in_thread, args=(lambda: leases.append(batch_lease(reviewer=reviewer2, dataset=reviewed_once)),)
        )
        leasing.start()
        leasing.join()
    ranking.join()
    assert done.is_set() and leases[0] is not None and leases[0].batch_id != last.pk
    assert Batch.objects.filter(label="Dog", priority__gt=0).count() == 2


@pytest.mark.django_db
def test_a_re_rank_that_read_before_the_switch_went_off_writes_nothing(reviewed_once, monkeypatch):
    reviewed_once.prioritise_uncertain = True
    reviewed_once.save()
    write = analytics_services._priorities_write

    def switched_off_meanwhile(dataset, priorities):
        Dataset.objects.filter(pk=dataset.pk).update(prioritise_uncertain=False)  # an admin, between read and write
        return write(dataset, priorities)

    monkeypatch.setattr(analytics_services, "_priorities_write", switched_off_meanwhile)
    batch_priorities_refresh(dataset_id=reviewed_once.pk)
    assert set(Batch.objects.values_list("priority", flat=True)) == {0}
