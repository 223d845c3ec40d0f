"""Writes of the review flow: leasing batches, recording votes and keeping each image's tally in step."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import IO

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.template.defaultfilters import pluralize
from django.utils import timezone

from labelqa import roles
from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.rows import ErrorList, read_vote_rows
from labelqa.catalog.services import chunks, dataset_for_import, predictions_of_rows
from labelqa.review.gold import gold_attach
from labelqa.review.gold_selectors import grid_prediction_ids
from labelqa.review.leasing import batches_lock, first_claimed, lease_expiry
from labelqa.review.models import Batch, Lease, ReviewerExclusion, Vote
from labelqa.review.selectors import batches_open_to, excluded_reviewers, live_leases_of_others

# Stale tallies recounted per transaction: after a broker outage a whole dataset may be stale, and its rows are
# locked a part at a time rather than all at once.
TALLY_REFRESH_ROWS = 5000
# Grids one reviewer may hold at once: a few tabs' worth. More would only keep batches from other reviewers.
OPEN_LEASES_PER_REVIEWER = 3


# A grid's batch goes with its dataset, or once its lease ran out, when an admin re-forms batches or replaces images.
BATCH_GONE = (
    "That batch is no longer there (its dataset was deleted, or its images were regrouped after your time on it ran "
    "out), so your answers for it were not saved. Here is your next batch."
)


class LeaseRefused(Exception):
    """The lease cannot take votes; the message tells the reviewer what happened."""


@dataclass(frozen=True)
class SubmitResult:
    recorded: int  # votes written by this call; 0 when the lease had already been submitted
    batch_id: int
    repeated: bool = False  # the lease had been submitted before and no revision was asked for: nothing changed


def _batch_has_slot(batch: Batch, reviewer, now, reviews_per_item: int) -> bool:
    """Whether the batch can still take this reviewer: its reviews plus others' live leases leave a slot.

    Called under the batch's row lock, where a fresh statement sees every committed lease of it.
    """
    return batch.reviews_done + live_leases_of_others(reviewer, now).filter(batch=batch).count() < reviews_per_item


def batch_lease(*, reviewer, dataset: Dataset | None = None, label: str | None = None) -> Lease | None:
    """Lease the next batch this reviewer has not had, or return None when nothing is left for them.

    A reviewer's open lease is handed back first. The least-reviewed batch with a free slot is locked with
    SKIP LOCKED and its slots are counted again under the lock, so concurrent reviewers never over-fill a batch.
    A reviewer holds at most OPEN_LEASES_PER_REVIEWER open leases: a new one releases the oldest beyond that.
    """
    now = timezone.now()
    expires_at = lease_expiry(now)
    open_lease = _open_lease(reviewer, dataset, label, now)
    if open_lease is not None and _lease_extended(open_lease, expires_at):
        return open_lease
    datasets = [dataset] if dataset is not None else Dataset.objects.order_by("name")
    for candidate_dataset in datasets:
        lease = _lease_in_dataset(reviewer, candidate_dataset, label, now, expires_at)
        if lease is not None:
            return lease
    return None


def _lease_in_dataset(reviewer, dataset: Dataset, label: str | None, now, expires_at) -> Lease | None:
    def claim(batch: Batch) -> Lease | None:
        if not _batch_has_slot(batch, reviewer, now, dataset.reviews_per_item):
            return None
        lease, created = Lease.objects.update_or_create(
            batch=batch, reviewer=reviewer, defaults={"expires_at": expires_at}
        )
        if created:  # a lease of theirs that expired keeps the gold items it was given
            gold_attach(lease=lease, dataset=dataset)
        _oldest_leases_released(lease, now)
        return lease

    return first_claimed(lambda skipped: _next_candidate(reviewer, dataset, label, now, skipped), claim)


def lease_revived(*, lease: Lease) -> bool:
    """Give a reviewer's expired, unsubmitted lease a new term if its batch still has a slot for them.

    False when other reviewers have filled the batch since: that grid's answers could no longer be saved.
    """
    now = timezone.now()
    with transaction.atomic():
        batches_lock([lease.batch_id])
        batch = Batch.objects.select_related("dataset").filter(pk=lease.batch_id).first()
        if batch is None:  # gone since (re-formed, emptied by a --replace import, or its dataset deleted), lease too
            return False
        if not _batch_has_slot(batch, lease.reviewer_id, now, batch.dataset.reviews_per_item):
            return False
        lease.expires_at = lease_expiry(now)
        lease.save(update_fields=["expires_at"])
        _oldest_leases_released(lease, now)
    return True


def _oldest_leases_released(lease: Lease, now) -> None:
    """End the reviewer's open leases beyond the newest few, so one reviewer cannot hold a whole queue.

    Each label or dataset filter gets its own lease, so without a cap a loop over filters leased every batch.
    Ending a lease only frees a slot, so it needs no lock on those batches: a reviewer counting them meanwhile at
    worst misses the slot this frees. A released grid still saves while its batch has a slot.
    """
    others = Lease.objects.filter(reviewer_id=lease.reviewer_id, submitted_at__isnull=True, expires_at__gt=now)
    others = others.exclude(pk=lease.pk)
    newest = others.order_by("-expires_at", "-pk").values("pk")[: OPEN_LEASES_PER_REVIEWER - 1]
    others.exclude(pk__in=newest).update(expires_at=now)  # one statement: it runs on every lease


def _lease_extended(lease: Lease, expires_at) -> bool:
    """Extend the reviewer's open lease under its batch's lock, unless it expired since it was read.

    Leasing counts a batch's live leases under the same lock: once this lease expired, another reviewer may have
    taken its slot, and extending it would over-fill the batch.
    """
    with transaction.atomic():
        batches_lock([lease.batch_id])
        live = Lease.objects.filter(pk=lease.pk, submitted_at__isnull=True, expires_at__gt=timezone.now())
        if not live.update(expires_at=expires_at):
            return False
    lease.expires_at = expires_at
    return True


def _open_lease(reviewer, dataset, label, now) -> Lease | None:
    leases = Lease.objects.filter(reviewer=reviewer, submitted_at__isnull=True, expires_at__gt=now)
    if dataset is not None:
        leases = leases.filter(batch__dataset=dataset)
    if label:
        leases = leases.filter(batch__label=label)
    return leases.select_related("batch").order_by("created_at").first()


def _next_candidate(reviewer, dataset: Dataset, label, now, skipped) -> Batch | None:
    active = (
        live_leases_of_others(reviewer, now)
        .filter(batch=OuterRef("pk"))
        .values("batch")
        .annotate(n=Count("*"))
        .values("n")
    )
    candidates = (
        batches_open_to(reviewer, dataset, now)
        .exclude(pk__in=skipped)
        .alias(active=Coalesce(Subquery(active), Value(0)))
        .filter(active__lt=dataset.reviews_per_item - F("reviews_done"))
    )
    if label:
        candidates = candidates.filter(label=label)
    return candidates.select_for_update(skip_locked=True, of=("self",)).first()


def votes_submit(*, reviewer, batch_id: int, token: str, confirmed_ids: set[int], revise: bool = False) -> SubmitResult:
    """Record a confirm for each checked prediction and a disconfirm for the rest of the batch, atomically.

    A lease submitted before records nothing new, unless `revise` asks to change its votes (updated in place,
    never duplicated). An expired lease still counts when the batch has a free slot.
    """
    try:
        token = uuid.UUID(str(token))
    except ValueError:
        raise LeaseRefused("The form carried no valid lease. Open the next batch to continue.") from None
    with transaction.atomic():
        # Lock the batch before the lease, in the same order as leasing does, so the two never deadlock.
        batch = Batch.objects.select_for_update(of=("self",)).select_related("dataset").filter(pk=batch_id).first()
        lease = Lease.objects.select_for_update().filter(token=token, reviewer=reviewer, batch_id=batch_id).first()
        if batch is None:
            raise LeaseRefused(BATCH_GONE)
        if lease is None:
            raise LeaseRefused("This batch is not leased to you. Open the next batch to continue.")
        first = lease.submitted_at is None
        if not first and not revise:
            return SubmitResult(0, batch.pk, repeated=True)
        now = timezone.now()
        if (
            first
            and lease.expires_at <= now
            and not _batch_has_slot(batch, reviewer, now, batch.dataset.reviews_per_item)
        ):
            raise LeaseRefused(
                "Your lease on this batch expired and another reviewer has taken it; "
                "your answers for it were not saved. Open the next batch to continue."
            )
        # The grid's images: the batch's own and any gold items mixed into this lease; other ids are ignored.
        prediction_ids = grid_prediction_ids(lease)
        _record(lease, batch.dataset_id, prediction_ids, confirmed_ids)
        if first:
            lease.submitted_at = now
            lease.save(update_fields=["submitted_at"])
            batch.reviews_done = F("reviews_done") + 1
            batch.save(update_fields=["reviews_done"])
    return SubmitResult(len(prediction_ids), batch.pk)


def _record(lease: Lease, dataset_id: int, prediction_ids: list[int], confirmed_ids: set[int]) -> None:
    _votes_upsert(
        [
            Vote(prediction_id=pid, reviewer_id=lease.reviewer_id, lease=lease, confirm=pid in confirmed_ids)
            for pid in prediction_ids
        ]
    )
    _tallies_mark_stale(dataset_id, prediction_ids)


def _votes_upsert(votes: list[Vote]) -> None:
    now = timezone.now()
    for vote in votes:
        vote.created_at = vote.updated_at = now
    Vote.objects.bulk_create(
        votes,
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["prediction", "reviewer"],
        update_fields=["confirm", "lease", "updated_at"],
    )


def _tallies_mark_stale(dataset_id: int, prediction_ids: list[int]) -> None:
    """Flag the images whose votes changed and have a worker recompute their tallies after commit."""
    for chunk in chunks(prediction_ids):
        Prediction.objects.filter(pk__in=chunk).update(tally_stale=True)
    _tallies_refresh_on_commit(dataset_id)


def _tallies_refresh_on_commit(dataset_id: int) -> None:
    from worker.tasks import refresh_tallies_enqueue

    # Never fails the request: with the broker down the rows stay stale and are counted later.
    transaction.on_commit(lambda: refresh_tallies_enqueue(dataset_id))


def tallies_refresh(*, dataset_id: int, wait: bool = True) -> int:
    """Recompute confirm/disconfirm counts of the dataset's stale images from their votes; return how many.

    Votes of reviewers excluded from the dataset are kept but not counted.
    Recomputing (never incrementing) makes this safe to run twice or concurrently.
    Rows another transaction holds (a submit, another refresh mid-count) are waited for, so the tallies then count
    every vote committed before the call. The aggregation task passes wait=False and leaves such a row to the
    refresh its submit queues: a worker never waits on a reviewer's request.
    """

    excluded = excluded_reviewers(dataset_id)

    def count(confirm: bool):
        votes = (
            Vote.objects.filter(prediction=OuterRef("pk"), confirm=confirm)
            .exclude(reviewer_id__in=excluded)
            .values("prediction")
        )
        return Coalesce(Subquery(votes.annotate(n=Count("*")).values("n")), Value(0))

    stale = Prediction.objects.filter(dataset_id=dataset_id, tally_stale=True)
    # Lock first, count in a later statement. One UPDATE that waited on a submit's row lock would count with the
    # snapshot it started with, miss that submit's votes and still clear the flag.
    locks = [stale.select_for_update(skip_locked=True)]
    if wait:
        # In id order, as an UPDATE by id takes them, so two waiters never deadlock. A row whose holder cleared its
        # flag meanwhile drops out (the condition is checked again on the row's new version).
        locks.append(stale.select_for_update(no_key=True).order_by("pk"))
    refreshed = 0
    for locked in locks:
        while True:
            with transaction.atomic():
                ids = list(locked.values_list("pk", flat=True)[:TALLY_REFRESH_ROWS])
                if not ids:
                    break
                refreshed += Prediction.objects.filter(pk__in=ids).update(
                    confirms=count(True), disconfirms=count(False), tally_stale=False
                )
    return refreshed


@transaction.atomic
def reviewer_exclude(*, dataset: Dataset, reviewer, by) -> ReviewerExclusion:
    """Leave the reviewer's votes on the dataset out of its tallies and consensus (the votes are kept)."""
    exclusion, created = ReviewerExclusion.objects.get_or_create(
        dataset=dataset, reviewer=reviewer, defaults={"created_by": by}
    )
    if created:
        _tallies_mark_stale_for_reviewer(dataset, reviewer)
    return exclusion


@transaction.atomic
def reviewer_include(*, dataset: Dataset, reviewer) -> bool:
    """Count the reviewer's votes on the dataset again; return False when they were not excluded."""
    deleted, _ = ReviewerExclusion.objects.filter(dataset=dataset, reviewer=reviewer).delete()
    if deleted:
        _tallies_mark_stale_for_reviewer(dataset, reviewer)
    return bool(deleted)


def _tallies_mark_stale_for_reviewer(dataset: Dataset, reviewer) -> None:
    voted = Vote.objects.filter(reviewer=reviewer, prediction__dataset=dataset).values("prediction_id")
    Prediction.objects.filter(pk__in=voted).update(tally_stale=True)
    _tallies_refresh_on_commit(dataset.pk)


def tallies_recompute(*, dataset: Dataset) -> int:
    """Mark every image of the dataset stale and recompute its tallies now; return how many were recomputed."""
    with transaction.atomic():
        Prediction.objects.filter(dataset=dataset).update(tally_stale=True)
        return tallies_refresh(dataset_id=dataset.pk)


@dataclass(frozen=True)
class VotesImported:
    new: int  # no vote of that reviewer on that image before
    changed: int  # the reviewer's verdict on the image was the other one
    unchanged: int  # the same verdict was already recorded: left as it was

    def describe(self, dataset_name: str) -> str:
        total = self.new + self.changed + self.unchanged
        return (
            f"{total} vote{pluralize(total)} for {dataset_name!r}: "
            f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged"
        )


@transaction.atomic
def votes_import(*, dataset_name: str, stream: IO[bytes]) -> VotesImported:
    """Import votes cast elsewhere (image,reviewer,verdict), all or nothing; return what changed.

    Unknown reviewers become reviewer accounts without a usable password. A vote that is already recorded with
    the same verdict is left as it was, so importing a file again writes nothing.
    """
    dataset = dataset_for_import(dataset_name)
    errors = ErrorList()
    rows = list(read_vote_rows(stream, errors))
    _new_reviewer_names_checked(rows, errors)
    prediction_of = predictions_of_rows(dataset, rows, errors)

    reviewers = _reviewers_get_or_create({r.reviewer for r in rows})
    votes = [
        Vote(prediction_id=prediction_of[r.image].pk, reviewer=reviewers[r.reviewer], confirm=r.confirm) for r in rows
    ]
    recorded = _recorded_verdicts(votes)
    written = [v for v in votes if recorded.get((v.prediction_id, v.reviewer_id)) != v.confirm]
    if written:
        _votes_upsert(written)
        _tallies_mark_stale(dataset.pk, list({v.prediction_id for v in written}))
    _batches_count_imported_reviews(dataset, [user.pk for user in reviewers.values()])
    changed = sum((v.prediction_id, v.reviewer_id) in recorded for v in written)
    return VotesImported(new=len(written) - changed, changed=changed, unchanged=len(votes) - len(written))


def _recorded_verdicts(votes: list[Vote]) -> dict[tuple[int, int], bool]:
    """Return {(prediction id, reviewer id): confirm} of the votes already recorded on these votes' images."""
    reviewer_ids = sorted({v.reviewer_id for v in votes})
    recorded: dict[tuple[int, int], bool] = {}
    for chunk in chunks(sorted({v.prediction_id for v in votes})):
        found = Vote.objects.filter(prediction_id__in=chunk, reviewer_id__in=reviewer_ids)
        for prediction_id, reviewer_id, confirm in found.values_list("prediction_id", "reviewer_id", "confirm"):
            recorded[prediction_id, reviewer_id] = confirm
    return recorded


def _batches_count_imported_reviews(dataset: Dataset, reviewer_ids: list[int]) -> None:
    """Count a reviewer who now has a vote on every image of a batch as one of its reviews, as a submitted grid is.

    Leasing knows who reviewed a batch from submitted leases: each such (batch, reviewer) gets one, so the batch
    is never served to them again and closes once it has `reviews_per_item` reviewers. A batch they voted on only
    in part stays open to them, to finish it.
    """
    batch_sizes = dict(
        Prediction.objects.filter(dataset=dataset, batch__isnull=False)
        .values_list("batch_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    voted = (
        Vote.objects.filter(reviewer_id__in=reviewer_ids, prediction__dataset=dataset, prediction__batch__isnull=False)
        .values_list("prediction__batch_id", "reviewer_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    covered = {(batch_id, reviewer_id) for batch_id, reviewer_id, n in voted if n == batch_sizes[batch_id]}
    if not covered:
        return
    now = timezone.now()
    batch_ids = sorted({batch_id for batch_id, _ in covered})
    batches_lock(batch_ids)  # under their locks, reviews_done stays exact
    leases = Lease.objects.filter(batch_id__in=batch_ids, reviewer_id__in=reviewer_ids)
    held = {
        (lease.batch_id, lease.reviewer_id): lease for lease in leases if (lease.batch_id, lease.reviewer_id) in covered
    }
    Lease.objects.filter(pk__in=[lease.pk for lease in held.values() if lease.submitted_at is None]).update(
        submitted_at=now
    )
    Lease.objects.bulk_create(
        Lease(batch_id=batch_id, reviewer_id=reviewer_id, expires_at=now, submitted_at=now)
        for batch_id, reviewer_id in covered - held.keys()
    )
    submitted = Lease.objects.filter(batch=OuterRef("pk"), submitted_at__isnull=False).values("batch")
    Batch.objects.filter(pk__in=batch_ids).update(reviews_done=Subquery(submitted.annotate(n=Count("*")).values("n")))


def _new_reviewer_names_checked(rows: list, errors: ErrorList) -> None:
    """Name each line whose reviewer is no account yet and cannot become one (spaces, a colon, too long)."""
    User = get_user_model()
    names = {r.reviewer for r in rows}
    known = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    field = User._meta.get_field(User.USERNAME_FIELD)
    problems: dict[str, str] = {}
    for name in names - known:
        try:
            field.run_validators(name)
        except ValidationError as exc:
            problems[name] = " ".join(exc.messages)
    for row in rows:
        if row.reviewer in problems:
            errors.add(row.line, f"reviewer {row.reviewer!r} cannot be an account name: {problems[row.reviewer]}")


def _reviewers_get_or_create(usernames: set[str]) -> dict:
    """Return {name: user}, creating reviewer accounts without a usable password for new (checked) names."""
    User = get_user_model()
    users = {u.username: u for u in User.objects.filter(username__in=usernames)}
    for name in sorted(usernames - users.keys()):
        user = User(username=name)
        user.set_unusable_password()
        user.save()
        roles.grant_role(user, roles.REVIEWER)
        users[name] = user
    return users
