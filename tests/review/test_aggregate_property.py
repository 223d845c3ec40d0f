"""Tallies refreshed after every step equal the tallies recomputed from the Vote table, whatever the steps."""

import io
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelqa import roles
from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Batch, Lease, ReviewerExclusion, Vote
from labelqa.review.services import (
    batch_lease,
    reviewer_exclude,
    reviewer_include,
    tallies_recompute,
    tallies_refresh,
    votes_import,
    votes_submit,
)
from tests.conftest import make_user, seed_csv

REVIEWERS = ("r0", "r1", "r2")
IMAGES = [f"images/cat-{i:04d}.jpg" for i in range(3)] + [f"images/dog-{i:04d}.jpg" for i in range(2)]

reviewer_index = st.integers(0, len(REVIEWERS) - 1)
operations = st.lists(
    st.one_of(
        # One vote cast or changed, through the import's upsert.
        st.tuples(st.just("vote"), reviewer_index, st.integers(0, len(IMAGES) - 1), st.booleans()),
        # A whole batch submitted, or revised when this reviewer submitted it before.
        st.tuples(st.just("batch"), reviewer_index, st.sampled_from(["Cat", "Dog"]), st.sets(st.integers(0, 4))),
        st.tuples(st.just("exclude"), reviewer_index),
        st.tuples(st.just("include"), reviewer_index),
    ),
    max_size=10,
)


@pytest.fixture
def world(db, tmp_path):
    predictions_import(
        dataset_name="prop", stream=io.BytesIO(seed_csv({"Cat": 3, "Dog": 2})), images_root=str(tmp_path)
    )
    dataset = Dataset.objects.get(name="prop")
    dataset.reviews_per_item = len(REVIEWERS)
    dataset.save()
    users = [make_user(name, roles.REVIEWER) for name in REVIEWERS]
    admin = make_user("boss", roles.ADMIN)
    return dataset, users, admin


def reset(dataset) -> None:
    """Hypothesis runs every example inside the one test transaction: start each from no votes."""
    Vote.objects.all().delete()
    Lease.objects.all().delete()
    ReviewerExclusion.objects.all().delete()
    Batch.objects.update(reviews_done=0)
    Prediction.objects.update(confirms=0, disconfirms=0, tally_stale=False)


def apply(op, dataset, users, admin) -> None:
    kind, who = op[0], users[op[1]]
    if kind == "vote":
        verdict = "confirm" if op[3] else "disconfirm"
        csv = f"image,reviewer,verdict\n{IMAGES[op[2]]},{who.username},{verdict}\n"
        votes_import(dataset_name=dataset.name, stream=io.BytesIO(csv.encode()))
    elif kind == "batch":
        batch = Batch.objects.get(dataset=dataset, label=op[2])
        lease = Lease.objects.filter(batch=batch, reviewer=who).first() or batch_lease(
            reviewer=who, dataset=dataset, label=op[2]
        )
        ids = list(batch.predictions.order_by("id").values_list("id", flat=True))
        confirmed = {ids[i] for i in op[3] if i < len(ids)}
        votes_submit(reviewer=who, batch_id=batch.pk, token=str(lease.token), confirmed_ids=confirmed, revise=True)
    elif kind == "exclude":
        reviewer_exclude(dataset=dataset, reviewer=who, by=admin)
    else:
        reviewer_include(dataset=dataset, reviewer=who)


def tallies(dataset) -> dict[int, tuple[int, int]]:
    return {
        pid: (c, d)
        for pid, c, d in Prediction.objects.filter(dataset=dataset).values_list("id", "confirms", "disconfirms")
    }


def expected_tallies(dataset) -> dict[int, tuple[int, int]]:
    """Count the Vote table in Python, leaving out excluded reviewers."""
    excluded = set(ReviewerExclusion.objects.filter(dataset=dataset).values_list("reviewer_id", flat=True))
    counts = Counter(
        (pid, confirm)
        for pid, reviewer_id, confirm in Vote.objects.values_list("prediction_id", "reviewer_id", "confirm")
        if reviewer_id not in excluded
    )
    return {pid: (counts[(pid, True)], counts[(pid, False)]) for pid in tallies(dataset)}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_incremental_tallies_equal_a_recomputation_from_scratch(world, ops):
    dataset, users, admin = world
    reset(dataset)
    for op in ops:
        apply(op, dataset, users, admin)
        tallies_refresh(dataset_id=dataset.pk)
        assert tallies(dataset) == expected_tallies(dataset), op
    incremental = tallies(dataset)
    tallies_recompute(dataset=dataset)
    assert tallies(dataset) == incremental
