"""Classifier runs that go wrong: a dropped database connection."""

from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError, connection

from labelqa.catalog.classification import classification_execute
from labelqa.catalog.models import ClassificationRun, Dataset
from tests.conftest import jpeg
from worker import sources


def new_run(folder: Path) -> ClassificationRun:
    dataset, _ = Dataset.objects.get_or_create(name="runs", defaults={"images_root": str(folder)})
    return ClassificationRun.objects.create(dataset=dataset, source=str(folder), model=settings.LABELQA_MODEL)


def executed(run: ClassificationRun) -> ClassificationRun:
    classification_execute(run.pk)
    run.refresh_from_db()
    return run


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_database_connection_drops_is_recorded_as_failed(tmp_path):
    # A failover or pg_terminate_backend mid-run: the outcome is written on a new connection, not left `running`.
    (tmp_path / "a.jpg").write_bytes(jpeg(size=(64, 48)))
    run = new_run(tmp_path)
    real_list = sources.list_images

    def connection_dropped(root: str):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return real_list(root)

    with mock.patch("labelqa.catalog.classification.list_images", connection_dropped):
        with pytest.raises(OperationalError):
            classification_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ClassificationRun.Status.FAILED and run.error
    assert executed(new_run(tmp_path)).status == ClassificationRun.Status.DONE  # no lock was left behind
