"""The correction pass's services: which images are offered, leasing, answers and their agreement."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from labelqa.catalog.deletion import dataset_delete
from labelqa.catalog.models import Consensus, Dataset, Image, Prediction
from labelqa.review import corrections
from labelqa.review.corrections import (
    CorrectionRejected,
    agreed_corrections,
    correction_choices,
    correction_lease,
    correction_overview,
    correction_renewed,
    correction_submit,
    correction_work,
    corrections_close,
    corrections_open,
)
from labelqa.review.models import Correction, CorrectionPass
from labelqa.review.services import LeaseRefused, reviewer_exclude
from tests.conftest import make_user, row_locked
from tests.review.correction_data import disconfirm, dog, prediction_id, vote

pytestmark = pytest.mark.usefixtures("eager_celery")


def answer(reviewer, dataset, label="", skip=False) -> int | None:
    """Lease the reviewer's next image and answer it; return its prediction id (None when nothing was left)."""
    lease = correction_lease(reviewer=reviewer, dataset=dataset)
    if lease is None:
        return None
    correction_submit(reviewer=reviewer, token=str(lease.token), label=label, skip=skip)
    return lease.prediction_id


def drain(reviewer, dataset, label="Cat") -> list[int]:
    served = []
    while (pid := answer(reviewer, dataset, label)) is not None:
        served.append(pid)
    return served


def expire(correction: Correction) -> None:
    Correction.objects.filter(pk=correction.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db
def test_nothing_is_offered_until_an_admin_opens_the_pass(pets, reviewer, admin_user):
    disconfirm(pets, [dog(0)])
    assert correction_lease(reviewer=reviewer) is None
    assert correction_work(reviewer) == []
    corrections_open(dataset=pets, by=admin_user)
    assert correction_lease(reviewer=reviewer).prediction_id == prediction_id(pets, dog(0))
    assert correction_work(reviewer) == [{"dataset": pets, "images": 1, "capped": False}]


@pytest.mark.django_db
def test_the_work_count_stops_at_its_cap(pets, reviewer, monkeypatch):
    disconfirm(pets, [dog(0), dog(1), dog(2)])
    corrections_open(dataset=pets)
    monkeypatch.setattr(corrections, "WORK_COUNT_CAP", 2)
    assert correction_work(reviewer) == [{"dataset": pets, "images": 2, "capped": True}]


@pytest.mark.django_db
def test_only_disconfirmed_images_are_offered_most_confident_first(pets, reviewer):
    # dog 1, 2, 3 have confidences 87, 94, 81; dog 4 is confirmed and dog 5 split (unanimous policy).
    vote(pets, {dog(1): "d", dog(2): "dd", dog(3): "d", dog(4): "c", dog(5): "cd"})
    corrections_open(dataset=pets)
    assert drain(reviewer, pets) == [prediction_id(pets, dog(i)) for i in (2, 1, 3)]


@pytest.mark.django_db
def test_the_datasets_consensus_policy_decides_what_is_disconfirmed(pets, reviewer):
    vote(pets, {dog(1): "d", dog(5): "cdd"})  # dog 5: split when unanimous, disconfirmed by majority
    pets.consensus = Consensus.MAJORITY
    pets.save()
    corrections_open(dataset=pets)
    assert sorted(drain(reviewer, pets)) == sorted([prediction_id(pets, dog(1)), prediction_id(pets, dog(5))])


@pytest.mark.django_db
def test_images_that_cannot_be_shown_are_not_offered(pets, reviewer):
    ids = disconfirm(pets, [dog(0), dog(1)])
    Image.objects.filter(prediction__pk=ids[0]).update(problem="truncated")
    corrections_open(dataset=pets)
    assert drain(reviewer, pets) == [ids[1]]


@pytest.mark.django_db
def test_two_reviewers_never_hold_the_same_image(pets, reviewer, reviewer2):
    disconfirm(pets, [dog(0), dog(1)])
    corrections_open(dataset=pets)
    first = correction_lease(reviewer=reviewer, dataset=pets)
    second = correction_lease(reviewer=reviewer2, dataset=pets)
    assert first.prediction_id != second.prediction_id
    assert correction_lease(reviewer=make_user("erin", "reviewer"), dataset=pets) is None
    # A reload hands the same image back.
    assert correction_lease(reviewer=reviewer, dataset=pets).pk == first.pk


@pytest.mark.django_db
def test_a_reviewer_never_gets_an_image_twice_not_even_one_they_skipped(pets, reviewer, reviewer2):
    ids = disconfirm(pets, [dog(2), dog(1)])
    corrections_open(dataset=pets, corrections_per_item=2)
    assert answer(reviewer, pets, skip=True) == ids[0]
    assert answer(reviewer, pets, "Cat") == ids[1]
    assert correction_lease(reviewer=reviewer, dataset=pets) is None
    # The skip filled no slot, so both images still go to someone else.
    assert drain(reviewer2, pets) == ids


@pytest.mark.django_db
def test_an_image_is_served_until_it_has_enough_answers(pets, reviewer, reviewer2):
    (pid,) = disconfirm(pets, [dog(0)])
    corrections_open(dataset=pets, corrections_per_item=2)
    third = make_user("erin", "reviewer")
    held = correction_lease(reviewer=reviewer, dataset=pets)
    assert answer(reviewer2, pets, "Cat") == pid
    assert correction_lease(reviewer=third, dataset=pets) is None  # one answer plus one lease fill both slots
    correction_submit(reviewer=reviewer, token=str(held.token), label="Fox")
    assert correction_lease(reviewer=third, dataset=pets) is None
    assert Correction.objects.filter(prediction_id=pid).exclude(label="").count() == 2


@pytest.mark.django_db
def test_an_expired_lease_returns_the_image_and_a_late_answer_is_refused(pets, reviewer, reviewer2):
    (pid,) = disconfirm(pets, [dog(0)])
    corrections_open(dataset=pets)
    late = correction_lease(reviewer=reviewer, dataset=pets)
    expire(late)
    assert answer(reviewer2, pets, "Fox") == pid
    with pytest.raises(LeaseRefused, match="other reviewers have taken it"):
        correction_submit(reviewer=reviewer, token=str(late.token), label="Cat")
    assert not Correction.objects.filter(reviewer=reviewer, submitted_at__isnull=False).exists()


@pytest.mark.django_db
def test_a_late_answer_counts_while_the_slot_is_free(pets, reviewer):
    disconfirm(pets, [dog(0)])
    corrections_open(dataset=pets)
    lease = correction_lease(reviewer=reviewer, dataset=pets)
    expire(lease)
    assert correction_submit(reviewer=reviewer, token=str(lease.token), label="Cat").recorded


@pytest.mark.django_db
def test_a_resubmitted_answer_and_a_foreign_lease_record_nothing(pets, reviewer, reviewer2):
    disconfirm(pets, [dog(0)])
    corrections_open(dataset=pets)
    lease = correction_lease(reviewer=reviewer, dataset=pets)
    assert correction_submit(reviewer=reviewer, token=str(lease.token), label="Cat").recorded
    again = correction_submit(reviewer=reviewer, token=str(lease.token), label="Fox")
    assert not again.recorded and again.label == "Cat"
    with pytest.raises(LeaseRefused, match="not leased to you"):
        correction_submit(reviewer=reviewer2, token=str(lease.token), label="Fox")
    with pytest.raises(LeaseRefused, match="no valid lease"):
        correction_submit(reviewer=reviewer, token="not-a-uuid", label="Fox")
    assert list(Correction.objects.values_list("label", flat=True)) == ["Cat"]


@pytest.mark.django_db
def test_a_typed_label_is_tidied_and_takes_the_spelling_already_in_use(pets, reviewer, reviewer2):
    disconfirm(pets, [dog(2), dog(1)])
    corrections_open(dataset=pets)
    assert answer(reviewer, pets, "  cAT ") and Correction.objects.get(reviewer=reviewer).label == "Cat"
    assert answer(reviewer2, pets, "golden   retriever")
    third = make_user("erin", "reviewer")
    corrections_open(dataset=pets, corrections_per_item=2)
    assert answer(third, pets, "Golden Retriever")
    assert set(Correction.objects.values_list("label", flat=True)) == {"Cat", "golden retriever"}


@pytest.mark.django_db
def test_an_empty_too_long_formula_or_hidden_character_label_is_refused_and_the_lease_kept(pets, reviewer):
    disconfirm(pets, [dog(0)])
    corrections_open(dataset=pets)
    lease = correction_lease(reviewer=reviewer, dataset=pets)
    with pytest.raises(CorrectionRejected, match="Pick one of the labels"):
        correction_submit(reviewer=reviewer, token=str(lease.token), label="   ")
    with pytest.raises(CorrectionRejected, match="at most 200 characters"):
        correction_submit(reviewer=reviewer, token=str(lease.token), label="x" * 201)
    with pytest.raises(CorrectionRejected, match="spreadsheets would run it as a formula"):
        correction_submit(reviewer=reviewer, token=str(lease.token), label='=HYPERLINK("http://evil.example/")')
    # Invisible on the page, but a terminal escape or reversed text in the exports.
    for hidden in ("\x1b]0;pwned\x07red", "\x01Dog", "Dog\x7f", "\u202egpj.exe", "Cat\u2066", "\x9b2JDog", "Fox\u061c"):
        with pytest.raises(CorrectionRejected, match="control characters or text-direction marks"):
            correction_submit(reviewer=reviewer, token=str(lease.token), label=hidden)
    lease.refresh_from_db()
    assert lease.submitted_at is None and lease.label == ""
    assert correction_lease(reviewer=reviewer, dataset=pets).pk == lease.pk


@pytest.mark.django_db
def test_the_corrected_label_is_the_most_common_answer_and_a_tie_is_unresolved(pets):
    agreed, _tied = disconfirm(pets, [dog(2), dog(1)])
    corrections_open(dataset=pets, corrections_per_item=3)
    answers = {"r1": ("Cat", "Cat"), "r2": ("Cat", "Fox"), "r3": ("Fox", None)}
    for name, labels in answers.items():
        user = make_user(name, "reviewer")
        for label in labels:
            if label:
                answer(user, pets, label)
            else:
                answer(user, pets, skip=True)
    # dog 2 (served first): Cat, Cat, Fox; dog 1: Cat, Fox and a skip.
    assert agreed_corrections(pets) == {agreed: "Cat"}


@pytest.mark.django_db
def test_answers_of_an_excluded_reviewer_do_not_count(pets, admin_user):
    (pid,) = disconfirm(pets, [dog(0)])
    corrections_open(dataset=pets, corrections_per_item=3)
    r1, r2, r3 = (make_user(name, "reviewer") for name in ("r1", "r2", "r3"))
    answer(r1, pets, "Cat")
    answer(r2, pets, "Fox")
    answer(r3, pets, "Fox")
    assert agreed_corrections(pets) == {pid: "Fox"}
    reviewer_exclude(dataset=pets, reviewer=r3, by=admin_user)
    assert agreed_corrections(pets) == {}


@pytest.mark.django_db
def test_the_overview_counts_progress_and_lists_the_latest_answers_first(pets, reviewer, reviewer2):
    agreed, tied, _untouched = disconfirm(pets, [dog(2), dog(1), dog(3)])
    corrections_open(dataset=pets, corrections_per_item=2)
    for user, labels in ((reviewer, ("Cat", "Cat")), (reviewer2, ("Cat", "Fox"))):
        for label in labels:
            answer(user, pets, label)
    overview = correction_overview(pets)
    assert overview["pass"].corrections_per_item == 2
    counts = {key: overview[key] for key in ("disconfirmed", "answered_images", "agreed", "unresolved")}
    assert counts == {"disconfirmed": 3, "answered_images": 2, "agreed": 1, "unresolved": 1}
    assert [(i["prediction"].pk, i["answers"], i["agreed"]) for i in overview["items"]] == [
        (tied, [("Cat", 1), ("Fox", 1)], ""),
        (agreed, [("Cat", 2)], "Cat"),
    ]


@pytest.mark.django_db
def test_a_closed_pass_hands_out_nothing_and_keeps_its_answers(pets, reviewer, reviewer2):
    (pid, _) = disconfirm(pets, [dog(2), dog(1)])
    corrections_open(dataset=pets)
    answer(reviewer, pets, "Cat")
    assert corrections_close(dataset=pets)
    assert not corrections_close(dataset=pets)
    assert correction_lease(reviewer=reviewer2, dataset=pets) is None
    assert agreed_corrections(pets) == {pid: "Cat"}


@pytest.mark.django_db
def test_a_bad_number_of_answers_per_image_is_refused(pets):
    with pytest.raises(ValueError, match="less than or equal to 25"):
        corrections_open(dataset=pets, corrections_per_item=26)
    assert not CorrectionPass.objects.filter(dataset=pets).exists()


@pytest.mark.django_db
def test_quick_choices_are_the_models_other_guesses(pets):
    (pid,) = disconfirm(pets, [dog(0)])
    Prediction.objects.filter(pk=pid).update(top_k=[["Dog", 60.0], ["Wolf", 30.5], ["bad"], [7, 1], ["Fox", "x"]])
    choices = correction_choices(Prediction.objects.get(pk=pid))
    assert choices["from_model"]
    # The rejected label is left out; malformed entries are skipped or lose their confidence.
    assert choices["quick"] == [
        {"label": "Wolf", "confidence": 30.5},
        {"label": "bad", "confidence": None},
        {"label": "Fox", "confidence": None},
    ]


@pytest.mark.django_db
def test_without_top_k_the_models_usual_confusions_come_before_the_other_labels(pets, reviewer, reviewer2):
    first, second, third = disconfirm(pets, [dog(2), dog(1), dog(3)])
    corrections_open(dataset=pets)
    fallback = correction_choices(Prediction.objects.get(pk=first))
    assert not fallback["from_model"]
    assert [c["label"] for c in fallback["quick"]] == ["Cat", "Fox"]  # A to Z; Dog was rejected
    assert fallback["labels"] == ["Cat", "Dog", "Fox"]
    answer(reviewer, pets, "Fox")
    answer(reviewer2, pets, "Wolf")
    after = correction_choices(Prediction.objects.get(pk=third))
    # What reviewers named other Dog images, most often first (a tie A to Z), then the rest A to Z.
    assert [c["label"] for c in after["quick"]] == ["Fox", "Wolf", "Cat"]
    assert after["labels"] == ["Cat", "Dog", "Fox", "Wolf"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_never_over_serve_an_image(pets):
    assert connection.vendor == "postgresql", "row locking is only meaningful on PostgreSQL (make test uses it)"
    ids = disconfirm(pets, [dog(i) for i in range(12)])
    corrections_open(dataset=pets, corrections_per_item=2)
    reviewers = [make_user(f"r{i}", "reviewer") for i in range(6)]
    errors: list[BaseException] = []

    def work(user):
        try:
            while answer(user, pets, f"label-of-{user.username}") is not None:
                pass
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connections.close_all()

    # Two threads per reviewer: one person in two tabs must not answer an image twice either.
    threads = [threading.Thread(target=work, args=(reviewers[i % 6],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    answered = Correction.objects.exclude(label="")
    assert Counter(answered.values_list("prediction_id", flat=True)) == {pid: 2 for pid in ids}
    pairs = list(answered.values_list("prediction_id", "reviewer_id"))
    assert len(pairs) == len(set(pairs))


@pytest.mark.django_db
def test_an_answer_to_an_image_whose_dataset_was_deleted_is_refused_with_a_message(pets, reviewer, monkeypatch):
    """The page answered 500 (Prediction.DoesNotExist) when the answer came after an admin deleted the dataset."""
    disconfirm(pets, [dog(0)])
    corrections_open(dataset=pets)
    lease = correction_lease(reviewer=reviewer, dataset=pets)
    original = corrections._pass_held

    def deleted_first(dataset_id):  # the admin deletes the dataset just as the answer arrives
        if Dataset.objects.filter(pk=dataset_id).exists():
            dataset_delete(Dataset.objects.get(pk=dataset_id))
        return original(dataset_id)

    monkeypatch.setattr(corrections, "_pass_held", deleted_first)
    with pytest.raises(LeaseRefused, match=r"^This image is no longer in review \(its dataset was deleted\)"):
        correction_submit(reviewer=reviewer, token=str(lease.token), label="Cat")
    # Once it is gone, the lease is too: a reload finds nothing to renew, and an answer is not leased.
    assert correction_renewed(reviewer=reviewer, token=str(lease.token)) is None
    with pytest.raises(LeaseRefused, match="not leased to you"):
        correction_submit(reviewer=reviewer, token=str(lease.token), label="Cat")


@pytest.mark.django_db(transaction=True)
def test_correction_leases_and_answers_hold_their_pass_as_a_deletion_locks_it(pets, reviewer, monkeypatch):
    """A correction written between a deletion's statements was left pointing at a deleted image."""
    disconfirm(pets, [dog(0)])
    correction_pass = corrections_open(dataset=pets)
    held = []

    def checked(original):
        def step(*args, **kwargs):
            held.append(row_locked("review_correctionpass", correction_pass.pk))  # as a deletion would lock it
            return original(*args, **kwargs)

        return step

    monkeypatch.setattr(corrections, "_claim", checked(corrections._claim))  # leasing, under its transaction
    monkeypatch.setattr(corrections, "_lease_still_counts", checked(corrections._lease_still_counts))  # answering
    lease = correction_lease(reviewer=reviewer, dataset=pets)
    correction_submit(reviewer=reviewer, token=str(lease.token), label="Cat")
    assert held == [True, True]
    assert not row_locked("review_correctionpass", correction_pass.pk)
