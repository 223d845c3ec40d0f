"""Classifier runs: start one, and execute it (claimed once, resumable, bad images flagged, not fatal)."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from labelqa.catalog.jobs import connection_reopened_if_lost, dataset_turn, job_claimed
from labelqa.catalog.models import ClassificationRun, Dataset, Image, Prediction, name_problem_if_new
from labelqa.catalog.services import QUEUE_DOWN, chunks, create_batches_for_unbatched, dataset_get_or_create
from labelqa.catalog.storage import no_local_folder, root_problem
from worker.model_files import DEFAULT_MODEL, model_file_missing
from worker.sources import list_images, path_inside, read_image_under

if TYPE_CHECKING:
    from worker.classifier import ImageResult

log = logging.getLogger("labelqa")
SAVE_EVERY = 256  # results are written in chunks so a killed run loses at most one chunk
FLAGGED_FILES_LISTED = 100  # on the run's page; the worker's log names every one


class RunRefused(ValueError):
    """A classifier run that cannot start; `field` names the input at fault (source, model or batch_size)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def classification_start(
    *, dataset_name: str, source: str, model: str | None = None, batch_size: int | None = None
) -> ClassificationRun:
    """Record a run over `source` for the dataset and enqueue it on the gpu queue after commit.

    Raise RunRefused, having created nothing (no run, no dataset), when the run could not start.
    """
    if problem := name_problem_if_new(dataset_name):
        raise RunRefused(problem, field="dataset")
    if (refusal := root_problem(source)) is not None:  # before looking: no answer about directories outside them
        raise RunRefused(refusal, field="source")
    if no_local_folder(source):
        raise RunRefused(
            f"{source} is not a directory on the server; give a folder or s3://bucket/prefix", field="source"
        )
    if model and (refusal := _model_refusal(model)) is not None:  # before looking for it, as for the source
        raise RunRefused(refusal, field="model")
    if model and model_file_missing(model):
        raise RunRefused(
            f"there is no model file {model} on this machine; give the path of a TorchScript file that is here "
            f"(with its labels file beside it), or {DEFAULT_MODEL} for the built-in model",
            field="model",
        )
    if batch_size is not None and batch_size < 1:
        raise RunRefused(f"the batch size is a number of images, 1 or more, not {batch_size}", field="batch_size")
    with transaction.atomic():
        try:
            dataset = dataset_get_or_create(name=dataset_name, images_root=source)
        except ValueError as exc:  # past the form's name check, that is the dataset's other images root
            raise RunRefused(str(exc), field="source") from None
        run = ClassificationRun.objects.create(
            dataset=dataset, source=source, model=model or settings.LABELQA_MODEL, batch_size=batch_size
        )
        transaction.on_commit(lambda: _enqueue_or_fail(run))
    return run


def _model_refusal(model: str) -> str | None:
    """Say why runs may not load `model`, or None when LABELQA_MODEL_DIRS allows it (empty: any file).

    The built-in model and LABELQA_MODEL are always allowed: whoever runs the server chose them.
    """
    allowed = settings.LABELQA_MODEL_DIRS
    if model in (DEFAULT_MODEL, settings.LABELQA_MODEL) or not allowed or any(path_inside(model, d) for d in allowed):
        return None
    return (
        f"{model} is not in a directory this server loads models from (LABELQA_MODEL_DIRS: {', '.join(allowed)}); "
        f"put the file in one of them, or use {DEFAULT_MODEL}"
    )


def _enqueue_or_fail(run: ClassificationRun) -> None:
    from worker.tasks import classify_run, enqueue

    if not enqueue(classify_run, run.pk, consequence="the run is marked failed."):
        _fail(run, QUEUE_DOWN)


def _fail(run: ClassificationRun, error: str) -> None:
    run.status, run.error, run.finished_at = ClassificationRun.Status.FAILED, error[:2000], timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


def classification_execute(run_id: int, *, wait_turn: bool = False) -> ClassificationRun:
    """Claim the run and classify every image of its source that has no prediction yet.

    Two workers never execute one run; a run a killed worker left `running` is claimed again and resumes where it
    stopped, because the images it saved are skipped (see `jobs.job_claimed`). Runs on one dataset take turns: while
    another holds the dataset, the run goes back to `queued` for its caller to send again later, unless `wait_turn`
    asks to wait here (where no other worker would take it up).
    """
    with job_claimed(ClassificationRun, run_id) as claimed:
        run = ClassificationRun.objects.select_related("dataset").get(pk=run_id)
        if not claimed:
            return run
        try:
            with dataset_turn(run.dataset_id, wait=wait_turn) as turn:
                if not turn:
                    run.status, run.started_at = ClassificationRun.Status.QUEUED, None
                    run.save(update_fields=["status", "started_at"])
                    return run
                _classify(run)
        except Exception as exc:
            connection_reopened_if_lost()
            _fail(run, str(exc))
            raise
        return run


def _classify(run: ClassificationRun) -> None:
    from worker.classifier import Classifier

    dataset = run.dataset
    listing = list_images(run.source)
    for name, problem in listing.refused:
        log.warning("classifier run %s: %r is not classified: %s", run.pk, name, problem)
    # An image saved without a prediction because its file could not be read (storage down for a moment) is
    # classified again; one whose file was read and is no image would only fail again.
    settled = {
        path: problem if unusable else None
        for path, unusable, problem in Image.objects.filter(dataset=dataset)
        .filter(Q(prediction__isnull=False) | Q(unusable=True))
        .values_list("path", "unusable", "problem")
    }
    todo = [p for p in listing.paths if p not in settled]
    unusable = [(p, settled[p]) for p in listing.paths if settled.get(p) is not None]
    run.total = len(listing.paths) + len(listing.refused)
    run.done = run.total - len(todo)
    run.flagged = len(listing.refused) + len(unusable)
    run.classified_earlier = len(listing.paths) - len(todo) - len(unusable)
    run.flagged_files = _flagged_listed([], [*listing.refused, *unusable])
    run.save(update_fields=["total", "done", "flagged", "classified_earlier", "flagged_files"])
    if todo:
        classifier = Classifier(run.model, settings.LABELQA_DEVICE, run.batch_size)
        results = classifier.classify(todo, read_bytes=functools.partial(read_image_under, run.source))
        for chunk in chunks(results, SAVE_EVERY):
            _save_results(dataset, run, classifier.model_name, chunk)
    with transaction.atomic():
        create_batches_for_unbatched(dataset)
        run.status, run.finished_at = ClassificationRun.Status.DONE, timezone.now()
        run.save(update_fields=["status", "finished_at"])


@transaction.atomic
def _save_results(dataset: Dataset, run: ClassificationRun, model_name: str, results: list[ImageResult]) -> None:
    # An image an earlier run could not read is already there: it takes this run's outcome.
    images = Image.objects.bulk_create(
        [Image(dataset=dataset, path=r.key, problem=(r.problem or "")[:500], unusable=r.unusable) for r in results],
        update_conflicts=True,
        unique_fields=["dataset", "path"],
        update_fields=["problem", "unusable"],
    )
    Prediction.objects.bulk_create(
        [
            Prediction(
                dataset=dataset,
                image=image,
                label=r.label[:200],
                confidence=r.confidence,
                model_name=model_name,
                top_k=[list(t) for t in r.top5],
            )
            for image, r in zip(images, results, strict=True)
            if r.problem is None
        ]
    )
    flagged = [(r.key, r.problem) for r in results if r.problem is not None]
    run.done += len(results)
    run.flagged += len(flagged)
    run.flagged_files = _flagged_listed(run.flagged_files, flagged)
    ClassificationRun.objects.filter(pk=run.pk).update(
        done=run.done, flagged=run.flagged, flagged_files=run.flagged_files
    )


def _flagged_listed(listed: list[str], flagged: list[tuple[str, str]]) -> list[str]:
    """Add flagged files, as `path: why`, to a run's list while it is shorter than FLAGGED_FILES_LISTED."""
    room = max(FLAGGED_FILES_LISTED - len(listed), 0)
    # A name that is not UTF-8 holds surrogate escapes, which JSON cannot store: they are written out as \udcff.
    return listed + [f"{path}: {why}".encode(errors="backslashreplace").decode() for path, why in flagged[:room]]
