"""Reads of the catalog."""

from django.utils import timezone

from labelqa.catalog.models import ClassificationRun


def run_progress(run: ClassificationRun) -> dict:
    """Return a run's progress for its page: counts, images per second and the time left."""
    rate = eta = None
    if run.started_at and run.done:
        end = run.finished_at or timezone.now()
        elapsed = (end - run.started_at).total_seconds()
        rate = run.done / elapsed if elapsed > 0 else None
        if rate and run.status == ClassificationRun.Status.RUNNING:
            eta = (run.total - run.done) / rate
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
        "error": run.error,
    }
