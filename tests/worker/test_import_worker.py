"""A real `celery worker` process takes an import job from Redis, imports it once, and records the outcome."""

import pytest
from django.core.files.base import ContentFile

from labelqa.catalog.imports import import_job_create
from labelqa.catalog.models import ImportJob, Prediction
from tests.conftest import seed_csv
from tests.live import wait_until
from worker.tasks import import_job_run, refresh_tallies


def wait_for_end(job_id: int, worker) -> ImportJob:
    def ended():
        job = ImportJob.objects.get(pk=job_id)
        return job if job.status not in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING) else None

    return wait_until(ended, timeout=60, what="the import job", process=worker)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_imports_a_job_once_even_when_its_task_comes_twice(admin_user, tmp_path, live_worker):
    job = import_job_create(
        dataset_name="queued",
        upload=ContentFile(seed_csv({"Dog": 3000, "Cat": 1000}), name="p.csv"),
        file_name="p.csv",
        options={"images_root": str(tmp_path), "batch_size": 20},
        uploaded_by=admin_user,
    )
    import_job_run.delay(job.pk)  # a duplicate delivery: the claim lets only one of them import

    job = wait_for_end(job.pk, live_worker)
    assert job.status == ImportJob.Status.DONE, job.errors
    assert (job.rows_validated, job.rows_imported, job.batches) == (4000, 4000, 150 + 50)
    assert job.started_at and job.finished_at and not job.file_key
    # The one-process worker runs its tasks in the order they came: once a task sent now has run, so has the duplicate.
    stale = Prediction.objects.filter(dataset__name="queued")[:1]
    Prediction.objects.filter(pk__in=stale.values("pk")).update(tally_stale=True)
    refresh_tallies.delay(job.dataset_id)
    wait_until(
        lambda: not Prediction.objects.filter(dataset__name="queued", tally_stale=True).exists(),
        timeout=60,
        what="a task sent after the duplicate",
        process=live_worker,
    )
    assert Prediction.objects.filter(dataset__name="queued").count() == 4000
    assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.DONE
