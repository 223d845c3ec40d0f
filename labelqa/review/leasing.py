"""The claim loop shared by every kind of review work that is leased: batches and correction items.

Work is handed out one row at a time. The next candidate row is locked with SELECT ... FOR UPDATE SKIP LOCKED,
so concurrent reviewers fan out over different rows instead of queueing on one, and its free slots are counted
again under that lock before a lease is written, so a row never gets more reviewers than it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from labelqa.review.models import Batch

Row = TypeVar("Row")
Claimed = TypeVar("Claimed")


def lease_expiry(now: datetime) -> datetime:
    """Return when a lease taken at `now` runs out (settings.LABELQA_LEASE_TTL_SECONDS)."""
    return now + timedelta(seconds=settings.LABELQA_LEASE_TTL_SECONDS)


def first_claimed(
    next_candidate: Callable[[list[int]], Row | None], claim: Callable[[Row], Claimed | None]
) -> Claimed | None:
    """Return the first lease `claim` grants, trying candidates in order; None when no candidate is left.

    `next_candidate(skipped)` must lock (SKIP LOCKED) and return the next row whose pk is not in `skipped`, or None.
    `claim(row)` runs under that lock: it recounts the row's free slots and returns a lease, or None when they filled
    up since the candidate query looked, and the loop moves on. Each try is its own short transaction.
    """
    skipped: list[int] = []
    while True:
        with transaction.atomic():
            row = next_candidate(skipped)
            if row is None:
                return None
            claimed = claim(row)
            if claimed is not None:
                return claimed
        skipped.append(row.pk)


def batches_lock(batch_ids: Iterable[int] | QuerySet) -> None:
    """Take the batches' row locks for this transaction, in id order as every taker does, so that none deadlock.

    Leasing and submitting take them; so do whatever must keep votes and leases off the batches while it works (a
    `--replace` import's checks and write, a dataset's deletion).
    """
    list(Batch.objects.select_for_update().filter(pk__in=batch_ids).order_by("pk").values_list("pk"))
