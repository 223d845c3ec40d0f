"""Delete a dataset and everything in it with a statement per table, not an object per row.

Django's own delete (the admin's included) first loads every related row to cascade through it: for a dataset of
100,000 predictions and 100,000 votes its confirmation listing alone took 97 s (bench/delete_dataset.py --django),
so a million-row dataset could not be deleted before the request timed out. Here the cascade follows the same
`on_delete` rules through the models' relations, found from their metadata so that a model added later is deleted
with its dataset too, but each step is one `DELETE … WHERE id IN (subquery)` (or `UPDATE … SET NULL`). No model here
has delete signals to miss.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection, models, transaction
from django.db.models import QuerySet
from django.db.models.deletion import get_candidate_relations_to_delete

from labelqa.catalog import storage
from labelqa.catalog.jobs import dataset_turn
from labelqa.catalog.key_checks import foreign_key_checks_skipped
from labelqa.catalog.models import Dataset
from labelqa.review.leasing import batches_lock
from labelqa.review.models import Batch, CorrectionPass


@dataclass(frozen=True)
class _Step:
    """Rows to delete (`field` None) or, for SET_NULL, whose `field` to empty."""

    queryset: QuerySet
    field: str | None = None


def _cascade(queryset: QuerySet, path: tuple[type[models.Model], ...] = ()) -> Iterator[_Step]:
    """Yield the steps that delete `queryset`, children first, as Django's collector would order them."""
    model = queryset.model
    if model in path:
        raise ValueError(f"cannot delete in bulk through the cycle {' → '.join(m.__name__ for m in (*path, model))}")
    # The relations Django's own deletion follows: hidden ones (related_name "+") and many-to-many rows included.
    for relation in get_candidate_relations_to_delete(model._meta):
        field = relation.field
        children = relation.related_model._base_manager.filter(**{f"{field.name}__in": queryset.values("pk")})
        on_delete = field.remote_field.on_delete
        if on_delete is models.CASCADE:
            yield from _cascade(children, (*path, model))
        elif on_delete is models.SET_NULL:
            yield _Step(children, field.name)
        elif on_delete is not models.DO_NOTHING:
            raise ValueError(f"{field.model.__name__}.{field.name}: on_delete {on_delete.__name__} is not handled here")
    yield _Step(queryset)


def dataset_deletion_counts(dataset: Dataset) -> dict[type[models.Model], int]:
    """Return how many rows of each model deleting the dataset removes (what the admin asks to confirm).

    The dataset comes first, then what hangs off it, in the order of the relations.
    """
    reached: dict[type[models.Model], list[QuerySet]] = {}
    for step in _cascade(Dataset.objects.filter(pk=dataset.pk)):
        if step.field is None:
            reached.setdefault(step.queryset.model, []).append(step.queryset)
    # A model reached along two paths (a prediction through its image and through its dataset) is counted once, by
    # a UNION: the same IN subqueries joined by OR compare every row with every other at a million rows.
    return {model: _union(paths).count() for model, paths in reversed(reached.items())}


def _union(paths: list[QuerySet]) -> QuerySet:
    first, *others = (queryset.values("pk") for queryset in paths)
    return first.union(*others) if others else first


class DatasetBusy(Exception):
    """A classifier run is working on the dataset: deleting it would fail the run on its next image."""


def dataset_busy_message(dataset: Dataset) -> str:
    return f"a classifier run is working on dataset {dataset.name!r}: delete the dataset once that run has ended"


def dataset_busy(dataset: Dataset) -> bool:
    """Tell whether a classifier run is working on the dataset now (a live worker holds the dataset's turn)."""
    with dataset_turn(dataset.pk, wait=False) as free:
        return not free


def dataset_delete(dataset: Dataset) -> int:
    """Delete the dataset and everything that cascades from it; return how many rows were deleted in all.

    Raise DatasetBusy while a classifier run works on it. Holding the dataset's turn keeps a run from starting
    meanwhile, and its row lock an import from writing (one under way finishes first).
    """
    dataset_id = dataset.pk
    with dataset_turn(dataset_id, wait=False) as free:
        if not free:
            raise DatasetBusy(dataset_busy_message(dataset))
        with transaction.atomic():
            _writers_held_off(dataset_id)
            # Every row that refers to a deleted one is deleted or emptied too, by the cascade's construction and
            # because no writer into the dataset gets past its first lock until this commits.
            with foreign_key_checks_skipped():
                deleted = sum(rows_delete(Dataset.objects.filter(pk=dataset_id)).values())
            transaction.on_commit(lambda: dataset_files_delete_enqueue(dataset_id))
    return deleted


def _writers_held_off(dataset_id: int) -> None:
    """Take the locks that every writer into the dataset takes first, so that none adds a row while it goes.

    The dataset's row: imports of predictions, votes and gold, gold marks (and a classifier run's key checks). Its
    batches, in id order as leasing takes them: grid submits, leases and the gold shown on them. Its correction
    pass: correction leases and answers. A writer waiting on one of them finds the dataset gone.
    """
    Dataset.objects.select_for_update().filter(pk=dataset_id).exists()
    batches_lock(Batch.objects.filter(dataset_id=dataset_id).values("pk"))
    CorrectionPass.objects.select_for_update().filter(dataset_id=dataset_id).exists()


def rows_delete(queryset: QuerySet) -> dict[type[models.Model], int]:
    """Delete the queryset's rows and all that cascades from them, a statement per table; count the rows per model.

    What `queryset.delete()` does (on_delete CASCADE and SET_NULL), without loading a row or sending signals.
    """
    deleted: dict[type[models.Model], int] = {}
    for step in _cascade(queryset):
        if step.field is not None:
            step.queryset.update(**{step.field: None})
        else:
            model = step.queryset.model
            deleted[model] = deleted.get(model, 0) + _delete_rows(step.queryset)
    return deleted


def dataset_files_delete(*, dataset_id: int) -> int:
    """Delete a deleted dataset's cached thumbnails and zoom renditions from storage; return how many files."""
    return sum(storage.folder_delete(folder) for folder in storage.dataset_folders(dataset_id))


def dataset_files_delete_enqueue(dataset_id: int) -> None:
    from worker.tasks import dataset_files_delete_run, enqueue

    folders = ", ".join(f"{folder}/" for folder in storage.dataset_folders(dataset_id))
    enqueue(dataset_files_delete_run, dataset_id, consequence=f"its cached files stay in storage ({folders}).")


def _delete_rows(queryset: QuerySet) -> int:
    """DELETE the queryset's rows in one statement, without loading them (QuerySet.delete would collect them)."""
    meta = queryset.model._meta
    select, params = queryset.values("pk").query.sql_with_params()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} IN ({select})", params)
        return cursor.rowcount
