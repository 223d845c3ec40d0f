"""The correction pass (issue 6): reviewers name the right class of the images that review disconfirmed.

An admin opens the pass per dataset. From then on every image that is disconfirmed under the dataset's consensus
policy (Dawid–Skene datasets: the majority of the tally stands in, as on the analytics pages) and whose image can
be shown is offered, one at a time, until `corrections_per_item` reviewers have named its class. Leasing works as
for batches (`labelqa.review.leasing`): an image is locked with SKIP LOCKED and its free slots counted again under
the lock; a lease expires and returns the image; a reviewer never gets an image twice, not even one they skipped.
Skips ("not sure") do not fill a slot, so a skipped image goes to someone else.

The corrected label of an image is the most common answer of the reviewers whose votes count on the dataset;
a tie leaves it unresolved (empty). It is computed when asked, never stored, so excluding a reviewer or adding
an answer can never leave a stale value behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, F, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from labelqa.analytics.correction_agreement import HIDDEN_MARK, agreed_label, tidy_label
from labelqa.analytics.selectors import disconfirmed_filter
from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.rows import MAX_LABEL_LENGTH
from labelqa.review.leasing import first_claimed, lease_expiry
from labelqa.review.models import Correction, CorrectionPass
from labelqa.review.selectors import excluded_reviewers
from labelqa.review.services import LeaseRefused, tallies_refresh

QUICK_CHOICES = 9  # one per number key
WORK_COUNT_CAP = 100  # low enough that PostgreSQL plans the count without JIT compilation


class CorrectionRejected(ValueError):
    """The answer cannot be recorded as given; the message says what to change. Nothing was saved."""


@dataclass(frozen=True)
class CorrectionResult:
    recorded: bool  # False when this lease had already been answered: a resubmitted form records nothing new
    label: str  # the label as recorded ("" for a skip)


# --- Writes -------------------------------------------------------------------------------------------------------


@transaction.atomic
def corrections_open(*, dataset: Dataset, corrections_per_item: int | None = None, by=None) -> CorrectionPass:
    """Open (or reopen) the dataset's correction pass, optionally changing how many answers each image needs."""
    correction_pass, _ = CorrectionPass.objects.select_for_update().get_or_create(dataset=dataset)
    correction_pass.is_open = True
    if corrections_per_item is not None:
        correction_pass.corrections_per_item = corrections_per_item
    correction_pass.changed_by = by
    try:
        correction_pass.full_clean(exclude=["dataset"])
    except ValidationError as exc:
        raise ValueError(" ".join(exc.messages)) from None
    correction_pass.save()
    return correction_pass


@transaction.atomic
def corrections_close(*, dataset: Dataset, by=None) -> bool:
    """Stop handing out the dataset's disconfirmed images (answers are kept); return False if it was not open."""
    return bool(
        CorrectionPass.objects.filter(dataset=dataset, is_open=True).update(
            is_open=False, changed_by=by, changed_at=timezone.now()
        )
    )


def correction_lease(*, reviewer, dataset: Dataset | None = None) -> Correction | None:
    """Lease the next disconfirmed image this reviewer has not had, or return None when none is left for them.

    The reviewer's unexpired lease is handed back first (a reload shows the same image). Without `dataset`, the
    open passes are tried in dataset name order.
    """
    now = timezone.now()
    expires_at = lease_expiry(now)
    held = _held_lease(reviewer, dataset, now)
    if held is not None:
        held.expires_at = expires_at
        held.save(update_fields=["expires_at"])
        return held
    for correction_pass in _open_passes(dataset):
        # Statuses are read from the tallies: count votes that a worker has not counted yet.
        tallies_refresh(dataset_id=correction_pass.dataset_id)
        lease = first_claimed(
            lambda skipped, p=correction_pass: _next_image(reviewer, p, now, skipped),
            lambda prediction, p=correction_pass: _claim(reviewer, prediction, p.corrections_per_item, now, expires_at),
        )
        if lease is not None:
            return lease
    return None


def correction_renewed(*, reviewer, token: str) -> Correction | None:
    """Renew the reviewer's unanswered lease named by `token`, or return None.

    None when the token names no unanswered lease of theirs, or the lease ran out and others filled the image's slots.
    """
    lease_token = _parsed_token(token)
    if lease_token is None:
        return None
    correction = (
        Correction.objects.filter(token=lease_token, reviewer=reviewer, submitted_at__isnull=True)
        .select_related("prediction")
        .first()
    )
    if correction is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        # Under the image's row lock, as leasing counts its slots.
        prediction = _locked_image(correction.prediction)
        if prediction is None or not _lease_still_counts(correction, prediction, reviewer, now):
            return None
        correction.expires_at = lease_expiry(now)
        correction.save(update_fields=["expires_at"])
    return correction


def correction_submit(*, reviewer, token: str, label: str = "", skip: bool = False) -> CorrectionResult:
    """Record the reviewer's answer on their lease: the class they named, or a skip.

    A typed label is tidied (whitespace) and takes the spelling the dataset already uses for it, ignoring case.
    A lease answered before records nothing new. An expired lease still counts while the image has a free slot.
    """
    answer = "" if skip else _checked_label(label)
    token = _parsed_token(token)
    if token is None:
        raise LeaseRefused("The form carried no valid lease. Open the next image to continue.")
    leased = Correction.objects.filter(token=token, reviewer=reviewer).select_related("prediction").first()
    if leased is None:
        raise LeaseRefused("This image is not leased to you. Open the next image to continue.")
    with transaction.atomic():
        # Lock the image before the lease, in the same order as leasing does, so the two never deadlock.
        prediction = _locked_image(leased.prediction)
        correction = Correction.objects.select_for_update().filter(token=token).first()
        if prediction is None or correction is None:
            raise LeaseRefused(
                "This image is no longer in review (its dataset was deleted), so your answer was not saved."
            )
        if correction.submitted_at is not None:
            return CorrectionResult(recorded=False, label=correction.label)
        now = timezone.now()
        if not _lease_still_counts(correction, prediction, reviewer, now):
            raise LeaseRefused(
                "Your lease on this image expired and other reviewers have taken it; "
                "your answer was not saved. Open the next image to continue."
            )
        correction.label = (
            _new_label_checked(prediction.dataset, _spelling_in_use(prediction.dataset, answer)) if answer else ""
        )
        correction.submitted_at = now
        correction.save(update_fields=["label", "submitted_at"])
    return CorrectionResult(recorded=True, label=correction.label)


def _checked_label(text: str) -> str:
    label = tidy_label(text or "")
    if not label:
        raise CorrectionRejected("Pick one of the labels, type one, or choose “Not sure” to skip this image.")
    if len(label) > MAX_LABEL_LENGTH:
        raise CorrectionRejected(f"A label can be at most {MAX_LABEL_LENGTH} characters; yours has {len(label)}.")
    if HIDDEN_MARK.search(label):
        raise CorrectionRejected("A label cannot hold control characters or text-direction marks; type it plainly.")
    return label


# A spreadsheet opening the labels export runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@")


def _new_label_checked(dataset: Dataset, label: str) -> str:
    """Refuse a typed label, not one of the model's, that a spreadsheet would run as a formula."""
    if label.startswith(FORMULA_STARTS) and label not in dataset_labels(dataset.pk):
        raise CorrectionRejected(
            f"A new label cannot begin with {', '.join(FORMULA_STARTS)}: spreadsheets would run it as a formula. "
            "Type the class name without it."
        )
    return label


def _spelling_in_use(dataset: Dataset, label: str) -> str:
    """Return the dataset's own spelling of `label` (a model label or an earlier answer), ignoring case.

    "cat" typed where the model says "Cat" must count as the same answer.
    """
    # The model's labels through dataset_labels' index hops: a case-blind filter would scan every prediction.
    model_labels = dataset_labels(dataset.pk)
    if label in model_labels:
        return label
    spelling = next((known for known in model_labels if known.casefold() == label.casefold()), None)
    if spelling is None:
        answers = Correction.objects.filter(prediction__dataset=dataset, label__iexact=label)
        spelling = answers.order_by("label").values_list("label", flat=True).first()
    return spelling or label


def _held_lease(reviewer, dataset: Dataset | None, now) -> Correction | None:
    leases = Correction.objects.filter(
        reviewer=reviewer,
        submitted_at__isnull=True,
        expires_at__gt=now,
        prediction__dataset__correction_pass__is_open=True,
    )
    if dataset is not None:
        leases = leases.filter(prediction__dataset=dataset)
    return leases.order_by("created_at").first()


def _open_passes(dataset: Dataset | None) -> QuerySet:
    passes = CorrectionPass.objects.filter(is_open=True).select_related("dataset").order_by("dataset__name")
    return passes.filter(dataset=dataset) if dataset is not None else passes


def _pass_held(dataset_id: int) -> bool:
    """Hold the dataset's correction pass for this transaction (deleting the dataset waits), or say it is gone.

    KEY SHARE: reviewers never wait on each other here, only a deletion of the pass waits on them and they on it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {CorrectionPass._meta.db_table} WHERE dataset_id = %s FOR KEY SHARE", [dataset_id]
        )
        return cursor.fetchone() is not None


def _locked_image(prediction: Prediction) -> Prediction | None:
    """Lock the image for answering it, its pass first as leasing takes them; None when its dataset went since."""
    if not _pass_held(prediction.dataset_id):
        return None
    images = Prediction.objects.select_for_update(of=("self",)).select_related("dataset")
    return images.filter(pk=prediction.pk).first()


def _next_image(reviewer, correction_pass: CorrectionPass, now, skipped: list[int]) -> Prediction | None:
    if not _pass_held(correction_pass.dataset_id):  # its dataset was deleted since the passes were listed
        return None
    # Images this reviewer holds right now are left out too: another of their tabs may be mid-submit.
    held_by_me = Correction.objects.filter(reviewer=reviewer, submitted_at__isnull=True, expires_at__gt=now)
    return (
        _open_images(correction_pass, reviewer, now)
        .exclude(pk__in=held_by_me.values("prediction_id"))
        .exclude(pk__in=skipped)
        # The model's most confident mistakes first: they teach the most when relabelled.
        .order_by("-confidence", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )


def _claim(reviewer, prediction: Prediction, per_item: int, now, expires_at) -> Correction | None:
    if not _has_free_slot(prediction, reviewer, per_item, now):
        return None
    correction, created = Correction.objects.get_or_create(
        prediction=prediction, reviewer=reviewer, defaults={"expires_at": expires_at}
    )
    if not created:
        if correction.submitted_at is not None:  # answered in another tab since the candidate query looked
            return None
        correction.expires_at = expires_at
        correction.save(update_fields=["expires_at"])
    return correction


def _parsed_token(token: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(token))
    except ValueError:
        return None


def _lease_still_counts(correction: Correction, prediction: Prediction, reviewer, now) -> bool:
    """Whether the lease is live, or ran out while the image still has a slot for this reviewer (under its lock)."""
    return correction.expires_at > now or _has_free_slot(prediction, reviewer, _per_item(prediction), now)


def _has_free_slot(prediction: Prediction, reviewer, per_item: int, now) -> bool:
    """Count, under the image's row lock, its answers and the unexpired leases of other reviewers."""
    answered = _answers().filter(prediction=prediction).count()
    held = _held_by_others(reviewer, now).filter(prediction=prediction).count()
    return answered + held < per_item


def _per_item(prediction: Prediction) -> int:
    correction_pass = CorrectionPass.objects.filter(dataset_id=prediction.dataset_id).first()
    return correction_pass.corrections_per_item if correction_pass is not None else 1


def _answers() -> QuerySet:
    """Submitted corrections that name a class (skips fill no slot)."""
    return Correction.objects.filter(submitted_at__isnull=False).exclude(label="")


def _held_by_others(reviewer, now) -> QuerySet:
    return Correction.objects.filter(submitted_at__isnull=True, expires_at__gt=now).exclude(reviewer=reviewer)


def _count_per_image(corrections: QuerySet):
    counts = corrections.filter(prediction=OuterRef("pk")).values("prediction").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counts), Value(0))


def _open_images(correction_pass: CorrectionPass, reviewer, now) -> QuerySet:
    """Disconfirmed, showable images of the pass's dataset with a free slot that this reviewer has not answered."""
    dataset = correction_pass.dataset
    answered_by_me = Correction.objects.filter(reviewer=reviewer, submitted_at__isnull=False).values("prediction_id")
    return (
        # disconfirms > 0 holds for every disconfirmed image; saying so lets PostgreSQL walk the partial index
        # prediction_disconfirmed in confidence order instead of sorting every image of the dataset.
        Prediction.objects.filter(disconfirmed_filter(dataset.consensus), dataset=dataset, disconfirms__gt=0)
        .filter(image__problem="")
        .exclude(pk__in=answered_by_me)
        .alias(answered=_count_per_image(_answers()), held=_count_per_image(_held_by_others(reviewer, now)))
        .filter(held__lt=correction_pass.corrections_per_item - F("answered"))
    )


# --- Reads --------------------------------------------------------------------------------------------------------


def correction_work(reviewer) -> list[dict]:
    """Return each open pass with how many images this reviewer could correct now (passes with none left out).

    Counting stops at WORK_COUNT_CAP (`capped` is then true): the home page needs "there is work", not an exact
    figure, and an exact count costs a scan of every disconfirmed image on every visit.
    """
    now = timezone.now()
    work = []
    for correction_pass in _open_passes(None):
        tallies_refresh(dataset_id=correction_pass.dataset_id)
        images = _open_images(correction_pass, reviewer, now)[: WORK_COUNT_CAP + 1].count()
        if images:
            work.append(
                {
                    "dataset": correction_pass.dataset,
                    "images": min(images, WORK_COUNT_CAP),
                    "capped": images > WORK_COUNT_CAP,
                }
            )
    return work


def correction_choices(prediction: Prediction) -> dict:
    """Return what the correction page offers for an image.

    `quick`: up to nine labels for the number keys, as dicts with `label` and `confidence` (percent or None): the
    model's top-k when it gave them; else what reviewers most often named images of the same model label (the
    model's usual confusions), then the dataset's other labels A to Z. The label reviewers rejected is left out.
    `labels`: every label the dataset knows (model labels and earlier answers), for the searchable list.
    `from_model`: whether `quick` is the model's top-k.
    """
    answers = _answers().filter(prediction__dataset_id=prediction.dataset_id)
    model_labels = dataset_labels(prediction.dataset_id)
    quick = [c for c in _top_k(prediction.top_k) if c["label"] != prediction.label][:QUICK_CHOICES]
    from_model = bool(quick)
    if not quick:
        confusions = list(
            answers.filter(prediction__label=prediction.label)
            .values("label")
            .annotate(n=Count("id"))
            .order_by("-n", "label")
            .values_list("label", flat=True)[:QUICK_CHOICES]
        )
        ranked = [label for label in dict.fromkeys(confusions + model_labels) if label != prediction.label]
        quick = [{"label": label, "confidence": None} for label in ranked[:QUICK_CHOICES]]
    labels = set(model_labels) | set(answers.values_list("label", flat=True).distinct())
    return {"quick": quick, "labels": sorted(labels), "from_model": from_model}


def dataset_labels(dataset_id: int) -> list[str]:
    """Return the dataset's distinct model labels, A to Z.

    A recursive query hops from each label to the next through the (dataset, label, confidence) index: one
    probe per label instead of a pass over every prediction (about 50 probes, not 1M rows). PostgreSQL and
    SQLite both run it.
    """
    table = connection.ops.quote_name(Prediction._meta.db_table)
    query = f"""
        WITH RECURSIVE hop(label) AS (
            SELECT MIN(label) FROM {table} WHERE dataset_id = %s
            UNION ALL
            SELECT (SELECT MIN(label) FROM {table} WHERE dataset_id = %s AND label > hop.label)
            FROM hop WHERE hop.label IS NOT NULL
        )
        SELECT label FROM hop WHERE label IS NOT NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(query, [dataset_id, dataset_id])
        return [row[0] for row in cursor.fetchall()]


def _top_k(top_k) -> list[dict]:
    """Read `Prediction.top_k` ([[label, confidence], …]) defensively: it may come from an uploaded file."""
    choices = []
    for entry in top_k if isinstance(top_k, list) else []:
        if not isinstance(entry, list | tuple) or not entry or not isinstance(entry[0], str) or not entry[0].strip():
            continue
        confidence = entry[1] if len(entry) > 1 and isinstance(entry[1], int | float) else None
        if all(c["label"] != entry[0] for c in choices):
            choices.append({"label": entry[0], "confidence": confidence})
    return choices


def agreed_corrections(dataset: Dataset) -> dict[int, str]:
    """Return the corrected label per prediction id: the most common answer, ties left out (unresolved).

    Answers of reviewers excluded from the dataset's aggregation are kept but do not count.
    """
    counts: dict[int, dict[str, int]] = {}
    rows = (
        _answers()
        .filter(prediction__dataset=dataset)
        .exclude(reviewer_id__in=excluded_reviewers(dataset))
        .values_list("prediction_id", "label")
        .annotate(n=Count("id"))
        .order_by()
    )
    for prediction_id, label, n in rows.iterator(chunk_size=20000):
        counts.setdefault(prediction_id, {})[label] = n
    agreed = {pid: agreed_label(answers) for pid, answers in counts.items()}
    return {pid: label for pid, label in agreed.items() if label}


def correction_overview(dataset: Dataset, *, limit: int = 100) -> dict:
    """Return the dataset's pass (or None), how far it got, and its most recently answered images with answers."""
    tallies_refresh(dataset_id=dataset.pk)
    answers = _answers().filter(prediction__dataset=dataset)
    agreed = agreed_corrections(dataset)
    latest = list(
        answers.values("prediction_id")
        .annotate(last=Max("submitted_at"))
        .order_by("-last", "-prediction_id")
        .values_list("prediction_id", flat=True)[:limit]
    )
    given: dict[int, list[tuple[str, int]]] = {}
    for prediction_id, label, n in (
        answers.filter(prediction_id__in=latest)
        .values_list("prediction_id", "label")
        .annotate(n=Count("id"))
        .order_by("-n", "label")
    ):
        given.setdefault(prediction_id, []).append((label, n))
    predictions = Prediction.objects.select_related("image").in_bulk(latest)
    answered_images = answers.values("prediction_id").distinct().count()
    return {
        "pass": CorrectionPass.objects.filter(dataset=dataset).first(),
        "disconfirmed": Prediction.objects.filter(disconfirmed_filter(dataset.consensus), dataset=dataset).count(),
        "answered_images": answered_images,
        "agreed": len(agreed),
        "unresolved": answered_images - len(agreed),
        "items": [
            {"prediction": predictions[pid], "answers": given[pid], "agreed": agreed.get(pid, "")} for pid in latest
        ],
    }
