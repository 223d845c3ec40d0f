"""Fuzzing the review POST (/review/batch/<id>/): never a 500, never a vote outside the lease's batch.

Alice holds a lease on one batch, Bob on another. Alice posts anything: any batch id, her lease, Bob's lease, no
lease or garbage, prediction ids of other batches, odd numbers, huge bodies, with or without the CSRF token.
"""

import uuid

import pytest
from django.db.models import F
from django.test import Client
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from labelqa.catalog.models import Prediction
from labelqa.review.models import Batch, Lease, Vote
from labelqa.review.services import batch_lease

ANSWERS = {302, 400, 403, 404}  # 302 back to the queue, with a message when the lease was refused


@pytest.fixture
def leases(pets, reviewer, reviewer2):
    return batch_lease(reviewer=reviewer, dataset=pets), batch_lease(reviewer=reviewer2, dataset=pets)


def prediction_ids() -> list[int]:
    return list(Prediction.objects.values_list("pk", flat=True))


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", " 1", "1.0", "0x1", "²", "١", "9" * 5000, "-0", "1e3", "\x00"]),
    st.text(max_size=12),
)


@st.composite
def posts(draw, alice_lease: Lease, bob_lease: Lease) -> tuple[int, dict, bool]:
    """Return (batch id in the URL, form fields, whether to send the CSRF token)."""
    # Alice's own batch and lease come up often enough that some posts record votes (and revise them).
    batch_ids = [alice_lease.batch_id] * 4 + [bob_lease.batch_id, *Batch.objects.values_list("pk", flat=True)]
    batch_id = draw(st.one_of(st.sampled_from(batch_ids), st.integers(min_value=0, max_value=2**70)))
    token = draw(
        st.one_of(
            st.sampled_from([str(alice_lease.token)] * 3 + [str(bob_lease.token), str(uuid.uuid4()), ""]),
            st.text(max_size=40),
        )
    )
    confirm = draw(st.lists(st.one_of(st.sampled_from(prediction_ids()).map(str), numbers), max_size=30))
    fields = {"confirm": confirm}
    if draw(st.integers(0, 3)) > 0:
        fields["lease"] = token
    if draw(st.booleans()):
        fields["revise"] = draw(st.sampled_from(["1", "0", "yes", ""]))
    if draw(st.integers(0, 9)) == 0:  # a huge body: too many fields, or too many bytes
        fields[draw(st.sampled_from(["confirm", "padding"]))] = ["1"] * 1500 if draw(st.booleans()) else "x" * 6_000_000
    return batch_id, fields, draw(st.integers(0, 4)) > 0


def assert_votes_stay_inside_their_leases(alice, bob, alice_lease: Lease) -> None:
    outside = Vote.objects.exclude(prediction__batch_id=F("lease__batch_id")).exclude(lease__isnull=True)
    assert not outside.exists(), "a vote was recorded for a prediction outside its lease's batch"
    assert not Vote.objects.exclude(reviewer_id=F("lease__reviewer_id")).exists(), "a vote went under another's lease"
    assert not Vote.objects.filter(reviewer=alice).exclude(prediction__batch_id=alice_lease.batch_id).exists()
    assert not Vote.objects.filter(reviewer=bob).exists(), "Bob never posted"


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
# Found by this test: Unicode digits ("²") pass str.isdigit() but not int(), and so do 4300+-digit numbers.
@example(data=None)
def test_any_review_post_answers_without_a_500_and_keeps_votes_inside_the_lease(
    data, leases, reviewer, reviewer2, pets
):
    alice_lease, bob_lease = leases
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    client.get("/review/")  # sets the CSRF cookie
    if data is None:
        batch_id, fields, with_csrf = (
            alice_lease.batch_id,
            {"lease": str(alice_lease.token), "confirm": ["²", "9" * 5000]},
            True,
        )
    else:
        batch_id, fields, with_csrf = data.draw(posts(alice_lease, bob_lease))
    if with_csrf:
        fields["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    votes_before = Vote.objects.count()

    response = client.post(f"/review/batch/{batch_id}/", fields)

    assert response.status_code in ANSWERS, response.status_code
    assert_votes_stay_inside_their_leases(reviewer, reviewer2, alice_lease)
    event(f"answered {response.status_code}")
    if Vote.objects.filter(lease=alice_lease).exists():
        event("Alice's lease holds votes")
    if Vote.objects.count() != votes_before:
        # Only a well-formed post of Alice's own lease to its own batch can record anything.
        assert with_csrf and batch_id == alice_lease.batch_id and fields.get("lease") == str(alice_lease.token)
