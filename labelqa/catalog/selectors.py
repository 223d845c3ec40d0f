"""Reads of the catalog."""

from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.template.defaultfilters import pluralize
from django.utils import timezone

from labelqa.catalog.models import ClassificationRun, Dataset, ImportJob, Prediction
from labelqa.catalog.rows import names_lines, replace_would_help
from labelqa.review.models import Batch


def dataset_images_root(name: str) -> str:
    """Return the images root of the dataset called `name` ("" when there is no such dataset or it has none)."""
    return Dataset.objects.filter(name=name).values_list("images_root", flat=True).first() or ""


def _count_per_dataset(queryset: QuerySet) -> Coalesce:
    counted = queryset.filter(dataset=OuterRef("pk")).order_by().values("dataset").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def datasets_overview() -> QuerySet:
    """Return the datasets with their counts of images, batches and reviewed batches.

    One subquery per count: counting over joins of predictions and batches would multiply the rows (200k x 8k).
    """
    return Dataset.objects.annotate(
        n_images=_count_per_dataset(Prediction.objects.all()),
        n_batches=_count_per_dataset(Batch.objects.all()),
        # Reviewed: as many grid reviews as the dataset asks of each batch, when the queue stops serving it.
        n_done=_count_per_dataset(Batch.objects.filter(reviews_done__gte=F("dataset__reviews_per_item"))),
    )


def _rate_and_eta(*, done: float, total: float | None, started_at, finished_at, running: bool):
    """Return (units per second, seconds left) of a job from its counts and times; None where unknown."""
    if not (started_at and done):
        return None, None
    elapsed = ((finished_at or timezone.now()) - started_at).total_seconds()
    rate = done / elapsed if elapsed > 0 else None
    eta = (total - done) / rate if rate and running and total is not None else None
    return rate, (max(eta, 0) if eta is not None else None)


def _speed_text(rate: float | None, eta: float | None, unit: str) -> str:
    text = f" · {rate:,.1f} {unit}/s" if rate else ""
    return text + (f" · about {eta:,.0f} s left" if eta is not None else "")


def run_progress(run: ClassificationRun) -> dict:
    """Return a run's progress for its page: counts, images per second and the time left."""
    running = run.status == ClassificationRun.Status.RUNNING
    rate, eta = _rate_and_eta(
        done=run.done, total=run.total, started_at=run.started_at, finished_at=run.finished_at, running=running
    )
    summary = f"{run.status}: {run.done} of {run.total} images"
    waiting = run.status == ClassificationRun.Status.QUEUED or (running and not run.total)
    if ahead := waiting and _run_ahead_on_dataset(run):
        summary = f"waiting for run {ahead} on {run.dataset.name} to finish (runs on one dataset take turns)"
    if run.flagged:
        summary += f" ({run.flagged} flagged as unreadable)"
    summary += _speed_text(rate, eta, "images")
    return {
        "id": run.pk,
        "dataset": run.dataset.name,
        "status": run.status,
        "done": run.done,
        "total": run.total,
        "flagged": run.flagged,
        "percent": round(100 * run.done / run.total, 1) if run.total else 0.0,
        "images_per_second": round(rate, 1) if rate else None,
        "eta_seconds": round(eta) if eta is not None else None,
        "summary": summary,
        "errors": [run.error] if run.error else [],
        "errors_more": 0,
        "error_kinds": [],
        "error_lines": [run.error] if run.error else [],
        "flagged_files": run.flagged_files,
    }


def _run_ahead_on_dataset(run: ClassificationRun) -> int | None:
    """Return the id of another run on the same dataset that is running (and started first, if this one runs)."""
    others = ClassificationRun.objects.filter(dataset_id=run.dataset_id, status=ClassificationRun.Status.RUNNING)
    if run.started_at is not None:
        others = others.filter(started_at__lt=run.started_at)
    return others.exclude(pk=run.pk).order_by("started_at").values_list("pk", flat=True).first()


def import_progress(job: ImportJob) -> dict:
    """Return an import job's progress: rows validated and imported, rows per second, time left, the errors.

    Until the file is read to its end the row count is estimated from the bytes read. Each row is worked on twice
    (validated, then imported), so the bar and the rate count both halves.
    """
    total = job.rows_total
    if total is None and job.bytes_read and job.rows_validated:
        total = round(job.rows_validated * job.file_size / job.bytes_read)
    done = job.status == ImportJob.Status.DONE
    work = job.rows_validated + job.rows_imported
    rate, eta = _rate_and_eta(
        done=work / 2,
        total=total,
        started_at=job.started_at,
        finished_at=job.finished_at,
        running=job.status == ImportJob.Status.RUNNING,
    )
    failed = job.status == ImportJob.Status.FAILED
    if done:
        percent = 100.0
    elif total and not failed:
        percent = min(round(50 * work / total, 1), 99.0)  # 100 % only once the import is committed
    else:
        percent = 0.0
    if failed:
        summary = f"failed: nothing was imported ({job.error_total:,} problem{pluralize(job.error_total)})"
        if replace_would_help(job.errors, job.options.get("replace", False)):
            summary += "; to replace the predictions of images nobody has reviewed yet, upload it again with Replace"
        elif names_lines(job.errors):  # not for a file-wide problem, such as the task queue being down
            summary += "; fix these lines and upload the file again"
    else:
        of = f" of {'' if job.rows_total is not None else '~'}{total:,}" if total is not None and not done else ""
        rows = job.rows_validated if total is None or done else total  # "1 row", "1 of 2 rows"
        summary = (
            f"{job.status}: {job.rows_validated:,}{of} row{pluralize(rows)} validated, {job.rows_imported:,} imported"
        )
        summary += f" in {job.batches:,} batch{pluralize(job.batches, 'es')}" if done else ""
        summary += _speed_text(rate, eta, "rows")
    more = max(job.error_total - len(job.errors), 0)
    return {
        "id": job.pk,
        "dataset": job.dataset_name,
        "status": job.status,
        "rows_validated": job.rows_validated,
        "rows_imported": job.rows_imported,
        "rows_total": total,
        "rows_total_exact": job.rows_total is not None,
        "percent": percent,
        "rows_per_second": round(rate, 1) if rate else None,
        "eta_seconds": round(eta) if eta is not None else None,
        "summary": summary,
        "errors": job.errors,
        "errors_more": more,
        "error_kinds": job.error_kinds,
        "error_lines": _error_lines(job.errors, more, job.error_kinds),
    }


def _error_lines(errors: list[str], more: int, kinds: list[str]) -> list[str]:
    """Return a failed job's list as its page shows it, worded here once for the page and its script."""
    lines = list(errors)
    if more:
        lines.append(f"… and {more} more")
    if kinds:
        lines += ["All of them by problem, most frequent first:", *kinds]
    return lines
