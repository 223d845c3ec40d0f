"""Import jobs: an uploaded prediction file is stored, recorded as a job and imported by a worker, with progress."""

from __future__ import annotations

import logging
import posixpath
import time
import uuid
from typing import IO

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from labelqa.catalog.jobs import connection_reopened_if_lost, job_claimed
from labelqa.catalog.models import ImportJob
from labelqa.catalog.rows import RowsRejected
from labelqa.catalog.services import QUEUE_DOWN, predictions_import
from labelqa.catalog.storage import empty_folder_remove

log = logging.getLogger("labelqa")
UPLOAD_PREFIX = "imports"
# Progress rows are written at most this often; the end of a phase is always written.
PROGRESS_INTERVAL_SECONDS = 0.25
# The options of predictions_import an upload may set.
IMPORT_OPTIONS = (
    "images_root",
    "file_format",
    "confidence_scale",
    "min_confidence",
    "batch_size",
    "reviews_per_item",
    "replace",
)


def import_job_create(*, dataset_name: str, upload: File, file_name: str, options: dict, uploaded_by) -> ImportJob:
    """Copy the upload into storage, record a queued job, and enqueue its import after commit."""
    unknown = set(options) - set(IMPORT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown import options: {', '.join(sorted(unknown))}")
    # Storage copies in chunks (multipart on S3), so the file is never held in memory whole.
    key = default_storage.save(f"{UPLOAD_PREFIX}/{uuid.uuid4().hex}/upload", upload)
    with transaction.atomic():
        job = ImportJob.objects.create(
            dataset_name=dataset_name,
            file_name=file_name[:255],
            file_key=key,
            file_size=upload.size or 0,
            options=options,
            uploaded_by=uploaded_by,
        )
        transaction.on_commit(lambda: _enqueue_or_fail(job))
    return job


def _enqueue_or_fail(job: ImportJob) -> None:
    from worker.tasks import enqueue, import_job_run

    if not enqueue(import_job_run, job.pk, consequence="the import job is marked failed."):
        _finish(job, ImportJob.Status.FAILED, errors=[QUEUE_DOWN], error_total=1)


def import_job_execute(job_id: int) -> ImportJob:
    """Claim the job and import its file, all or nothing; a job that is done, failed or being imported is left alone.

    A redelivered task never imports twice; a job a killed worker left `running` (its import rolled back with its
    connection) is imported again (see `jobs.job_claimed`).
    """
    with job_claimed(ImportJob, job_id) as claimed:
        job = ImportJob.objects.get(pk=job_id)
        if claimed:
            _import(job)
        return job


def _import(job: ImportJob) -> None:
    try:
        with default_storage.open(job.file_key, "rb") as stored:
            stream = _CountingReader(stored)
            with _ProgressWriter(job, stream) as progress:
                summary = predictions_import(
                    dataset_name=job.dataset_name,
                    stream=stream,
                    file_name=job.file_name,
                    progress=progress,
                    **job.options,
                )
    except RowsRejected as exc:
        kinds = [kind.describe(exc.unit) for kind in exc.kinds]
        _finish(job, ImportJob.Status.FAILED, errors=exc.errors, error_total=exc.total, error_kinds=kinds)
    except (ValueError, OSError) as exc:
        # Bad options (a changed images root, an unknown format) or an unreadable file: the admin can act on these.
        _finish(job, ImportJob.Status.FAILED, errors=[str(exc)], error_total=1)
    except Exception as exc:
        connection_reopened_if_lost()
        _finish(job, ImportJob.Status.FAILED, errors=[f"the import stopped: {exc}"[:2000]], error_total=1)
        raise
    else:
        job.dataset_id = summary.dataset_id
        job.rows_imported, job.batches = summary.imported, summary.batches
        job.rows_validated = job.rows_total = summary.imported + summary.skipped_below_min
        job.bytes_read = job.file_size
        _finish(job, ImportJob.Status.DONE, counted=True)


def _finish(
    job: ImportJob,
    status: str,
    *,
    errors: list[str] | None = None,
    error_total: int = 0,
    error_kinds: list[str] | None = None,
    counted: bool = False,
) -> None:
    """Record the outcome and drop the stored upload (the import has it, or it was refused).

    Only a finished import's own counts (`counted`) replace the ones the progress writer left in the row.
    """
    job.status, job.finished_at = status, timezone.now()
    job.errors, job.error_total, job.error_kinds = errors or [], error_total, error_kinds or []
    job.rows_imported = job.rows_imported if counted else 0  # a failed import rolled back: none of it is stored
    key, job.file_key = job.file_key, ""
    fields = ["status", "finished_at", "errors", "error_total", "error_kinds", "rows_imported", "file_key"]
    if counted:
        fields += ["dataset", "rows_validated", "rows_total", "bytes_read", "batches"]
    job.save(update_fields=fields)
    try:
        default_storage.delete(key)
        empty_folder_remove(posixpath.dirname(key))  # each upload has a folder of its own
    except OSError as exc:  # the job's outcome stands; a leftover file is only space
        log.warning("could not delete the upload %s of import job %s: %s", key, job.pk, exc)


class _CountingReader:
    """Pass reads through and count the bytes, so progress can estimate the rows still to come."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.bytes_read += len(data)
        return data


class _ProgressWriter:
    """A progress callback that writes the job's counters through a connection of its own.

    The import runs in one transaction; counters written inside it would stay invisible to the job page until the
    end. A second connection commits each write at once. Where that cannot work -- SQLite locks the whole file for
    the import, and a caller already inside a transaction holds the job row's lock since the claim -- the counters
    are only written when the job ends.
    """

    def __init__(self, job: ImportJob, stream: _CountingReader) -> None:
        self.job_id = job.pk
        self.file_size = job.file_size
        self.stream = stream
        self.last_write = 0.0
        self.connection = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self.connection = connections.create_connection("default")

    def __enter__(self):
        return self if self.connection is not None else None

    def __exit__(self, *exc_info) -> None:
        if self.connection is not None:
            self.connection.close()

    def __call__(self, validated: int, imported: int, total: int | None) -> None:
        now = time.monotonic()
        if total is None and now - self.last_write < PROGRESS_INTERVAL_SECONDS:
            return
        self.last_write = now
        table = connection.ops.quote_name(ImportJob._meta.db_table)
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET rows_validated = %s, rows_imported = %s, rows_total = %s, bytes_read = %s "
                    "WHERE id = %s",
                    [validated, imported, total, min(self.stream.bytes_read, self.file_size), self.job_id],
                )
        except DatabaseError as exc:  # progress is a courtesy; it never fails the import
            log.warning("import job %s: could not record progress: %s", self.job_id, exc)
