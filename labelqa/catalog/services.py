"""Writes to the catalog: datasets, prediction imports and the batches they form."""

from __future__ import annotations

import io
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, NamedTuple, TypeVar

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef
from django.db.models.expressions import RawSQL
from django.template.defaultfilters import pluralize
from django.utils import timezone

from labelqa.catalog import imaging, pg_import, storage
from labelqa.catalog.deletion import dataset_files_delete, rows_delete
from labelqa.catalog.models import UNCHECKED_IMAGE, Dataset, Image, Prediction, name_problem_if_new
from labelqa.catalog.rows import (
    CONFIDENCE_SCALES,
    PREDICTION_FORMATS,
    ErrorList,
    PredictionRow,
    ProgressCallback,
    detect_format,
    existing_problem,
    gold_problem,
    in_review_problem,
    read_prediction_rows,
    scale_confidences,
    voted_problem,
)
from labelqa.review.leasing import batches_lock
from labelqa.review.models import Batch, GoldItem, Lease, Vote

log = logging.getLogger("labelqa")
CHUNK = 5000

# A run or upload whose task could not be queued fails with this, rather than waiting for a message never sent.
QUEUE_DOWN = (
    "The task queue (Redis, CELERY_BROKER_URL) could not be reached, so nothing was started and nothing was "
    "imported. Try again once it is back."
)


@dataclass(frozen=True)
class ImportSummary:
    dataset: str
    imported: int
    skipped_below_min: int
    batches: int
    replaced: int
    dataset_id: int


def chunks(items: Iterable, size: int = CHUNK):
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def dataset_get_or_create(
    *, name: str, images_root: str | None = None, batch_size: int | None = None, reviews_per_item: int | None = None
) -> Dataset:
    """Return the dataset called `name`, creating it or updating the settings given; refuse a changed images root.

    ValueError says what is wrong with a name or setting that a dataset cannot have.
    """
    try:
        Dataset._meta.get_field("name").run_validators(name)  # its length too: PostgreSQL would refuse it later
    except ValidationError as exc:
        raise ValueError(f"dataset name {name!r}: {' '.join(exc.messages)}") from None
    if problem := name_problem_if_new(name):
        raise ValueError(f"dataset name {name!r}: {problem}")
    dataset, created = Dataset.objects.select_for_update().get_or_create(name=name)
    changed = []
    if images_root:
        if not created and dataset.images_root and dataset.images_root != images_root and dataset.images.exists():
            raise ValueError(
                f"dataset {name!r} already reads its images from {dataset.images_root!r}; "
                f"import into a new dataset to use {images_root!r}"
            )
        dataset.images_root, changed = images_root, changed + ["images_root"]
    if batch_size is not None:
        dataset.batch_size, changed = batch_size, changed + ["batch_size"]
    if reviews_per_item is not None:
        dataset.reviews_per_item, changed = reviews_per_item, changed + ["reviews_per_item"]
    if changed:
        try:
            dataset.full_clean()
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
            raise ValueError(f"dataset {name!r}: {problems}") from None
        dataset.save(update_fields=changed)
    return dataset


class _Prefixed(io.RawIOBase):
    """A binary stream that first gives back the bytes already read from it to sniff its format."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _sniffed(stream: IO[bytes], file_format: str, name: str) -> tuple[IO[bytes], str]:
    """Return a readable stream from the start and the file's format, detected when `file_format` is auto."""
    if file_format not in PREDICTION_FORMATS:
        raise ValueError(f"format must be one of {', '.join(PREDICTION_FORMATS)}, not {file_format!r}")
    head = stream.read(4096)
    if file_format == "auto":
        file_format = detect_format(head, name)
    return io.BufferedReader(_Prefixed(head, stream), buffer_size=2**20), file_format


@transaction.atomic
def predictions_import(
    *,
    dataset_name: str,
    stream: IO[bytes],
    images_root: str | None = None,
    confidence_scale: str = "auto",
    min_confidence: float | None = None,
    batch_size: int | None = None,
    reviews_per_item: int | None = None,
    model_name: str = "",
    file_format: str = "auto",
    file_name: str = "",
    replace: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import a prediction file (CSV, JSON Lines or Ground Truth input) into a dataset, all or nothing.

    Forms the review batches of the new rows. An image already in the dataset is refused unless `replace`, which
    replaces the predictions of images nobody has voted on and refuses those with votes.
    Raises RowsRejected naming every bad line (the first 100); the database is then unchanged.
    `progress(validated, imported, total)`, when given, is called per block of rows or per phase, never per row.
    """
    if confidence_scale not in CONFIDENCE_SCALES:
        raise ValueError(f"confidence scale must be one of {', '.join(CONFIDENCE_SCALES)}, not {confidence_scale!r}")
    if min_confidence is not None and not 0 <= min_confidence <= 100:  # NaN fails both comparisons
        raise ValueError(f"the minimum confidence is a percent from 0 to 100, not {min_confidence}")
    stream, file_format = _sniffed(stream, file_format, file_name or str(getattr(stream, "name", "") or ""))
    dataset = dataset_get_or_create(
        name=dataset_name, images_root=images_root, batch_size=batch_size, reviews_per_item=reviews_per_item
    )
    transaction.on_commit(lambda: _thumbnails_enqueue(dataset.pk))
    if connection.vendor == "postgresql":
        # Set-based path: COPY and SQL instead of a Python object per row (see pg_import).
        result = pg_import.predictions_copy(
            dataset=dataset,
            stream=stream,
            file_format=file_format,
            confidence_scale=confidence_scale,
            min_confidence=min_confidence,
            model_name=model_name,
            replace=replace,
            progress=progress,
        )
        return ImportSummary(
            dataset.name, result.imported, result.skipped_below_min, result.batches, result.replaced, dataset.pk
        )

    errors = ErrorList(unit="item" if file_format == "gt" else "line")
    rows = list(read_prediction_rows(stream, errors, file_format, dataset.images_root))
    scale_confidences(rows, confidence_scale, errors)
    existing = _existing_predictions(dataset, [r.image for r in rows])
    for row in rows:
        if row.image not in existing:
            continue
        if not replace:
            errors.add(row.line, existing_problem(row.image, dataset.name))
        elif existing[row.image].voted:
            errors.add(row.line, voted_problem(row.image, dataset.name))
        elif existing[row.image].in_review:
            errors.add(row.line, in_review_problem(row.image, dataset.name))
        elif existing[row.image].gold:
            errors.add(row.line, gold_problem(row.image, dataset.name))
    errors.raise_if_any()
    if progress:
        progress(len(rows), 0, len(rows))

    kept = [r for r in rows if min_confidence is None or r.confidence >= min_confidence]
    batch_count = _create_predictions(dataset, kept, model_name, existing)
    if progress:
        progress(len(rows), len(kept), len(rows))
    replaced = sum(1 for r in kept if r.image in existing)
    return ImportSummary(dataset.name, len(kept), len(rows) - len(kept), batch_count, replaced, dataset.pk)


def dataset_for_import(name: str) -> Dataset:
    """Return the dataset that votes or gold answers are imported into; ValueError when there is none.

    Its row stays locked until the caller's transaction ends, as a prediction import locks it: imported votes or gold
    never land between a `--replace` import's checks and its write.
    """
    dataset = Dataset.objects.select_for_update().filter(name=name).first()
    if dataset is None:
        raise ValueError(f"no dataset named {name!r}; import its predictions first")
    return dataset


def predictions_of_rows(dataset: Dataset, rows: list, errors: ErrorList) -> dict[str, Prediction]:
    """Return {image path: prediction} for the rows' images; name every row whose image the dataset lacks and raise."""
    found: dict[str, Prediction] = {}
    for chunk in chunks(sorted({r.image for r in rows})):
        predictions = Prediction.objects.filter(dataset=dataset, image__path__in=chunk).select_related("image")
        found.update((p.image.path, p) for p in predictions.only("id", "label", "image__path"))
    for row in rows:
        if row.image not in found:
            errors.add(row.line, f"image {row.image!r} is not in dataset {dataset.name!r}")
    errors.raise_if_any()
    return found


class ExistingImage(NamedTuple):
    """An image of the file that the dataset has already, and what stands in the way of replacing its prediction."""

    image_id: int
    prediction_id: int | None
    voted: bool
    in_review: bool  # it is on a grid a reviewer has open (its batch's, or as gold)
    gold: bool


def _existing_predictions(dataset: Dataset, paths: list[str]) -> dict[str, ExistingImage]:
    """Return {path: ExistingImage} for the paths already in the dataset.

    Their batches stay locked until the import commits, as leasing and submitting lock them: no vote or lease
    reaches these images between this check and the write.
    """
    found: dict[str, ExistingImage] = {}
    voted = Exists(Vote.objects.filter(prediction_id=OuterRef("prediction")))
    open_leases = Lease.objects.filter(submitted_at__isnull=True, expires_at__gt=timezone.now())
    in_review = Exists(open_leases.filter(batch_id=OuterRef("prediction__batch_id"))) | Exists(
        open_leases.filter(gold_items__prediction_id=OuterRef("prediction"))
    )
    gold = Exists(GoldItem.objects.filter(prediction_id=OuterRef("prediction")))
    for chunk in chunks(paths):
        images = Image.objects.filter(dataset=dataset, path__in=chunk)
        batch_ids = images.filter(prediction__batch__isnull=False).values("prediction__batch_id")
        batches_lock(batch_ids)
        annotated = images.annotate(voted=voted, in_review=in_review, gold=gold)
        for image_id, path, prediction_id, *stops in annotated.values_list(
            "pk", "path", "prediction__pk", "voted", "in_review", "gold"
        ):
            found[path] = ExistingImage(image_id, prediction_id, *stops)
    return found


def _create_predictions(
    dataset: Dataset,
    rows: list[PredictionRow],
    model_name: str,
    existing: dict[str, ExistingImage],
) -> int:
    """Insert (or, for images in `existing`, replace) images and predictions, each in its batch; count batches."""
    groups = batch_groups(rows, key=lambda r: r.label, size=dataset.batch_size, seed=dataset.shuffle_seed)
    batches = Batch.objects.bulk_create([Batch(dataset=dataset, label=label) for label, _ in groups], batch_size=CHUNK)
    batch_of = {id(row): batch for batch, (_, members) in zip(batches, groups, strict=True) for row in members}
    new = [r for r in rows if r.image not in existing]
    for chunk in chunks(new):
        images = Image.objects.bulk_create([Image(dataset=dataset, path=r.image, metadata=r.metadata) for r in chunk])
        _insert_predictions(dataset, zip(images, chunk, strict=True), model_name, batch_of)
    old = [r for r in rows if r.image in existing]
    if old:
        _replace_predictions(dataset, old, model_name, existing, batch_of)
    return len(batches)


def _insert_predictions(dataset: Dataset, pairs, model_name: str, batch_of: dict) -> None:
    Prediction.objects.bulk_create(
        [
            Prediction(
                dataset=dataset,
                image=image,
                label=r.label,
                confidence=r.confidence,
                model_name=model_name,
                batch=batch_of[id(r)],
            )
            for image, r in pairs
        ]
    )


def _replace_predictions(
    dataset: Dataset,
    rows: list[PredictionRow],
    model_name: str,
    existing: dict[str, ExistingImage],
    batch_of: dict,
) -> None:
    """Overwrite the unreviewed predictions of `rows` and drop the batches this leaves empty."""
    images = Image.objects.in_bulk([existing[r.image].image_id for r in rows])
    for r in rows:
        image = images[existing[r.image].image_id]
        image.metadata = r.metadata
        image.thumbnail, image.problem, image.unusable = UNCHECKED_IMAGE.values()
    Image.objects.bulk_update(list(images.values()), ["metadata", *UNCHECKED_IMAGE], batch_size=CHUNK)
    with_prediction = [r for r in rows if existing[r.image].prediction_id is not None]
    predictions = Prediction.objects.in_bulk([existing[r.image].prediction_id for r in with_prediction])
    old_batches = {p.batch_id for p in predictions.values() if p.batch_id}
    for r in with_prediction:
        p = predictions[existing[r.image].prediction_id]
        p.label, p.confidence, p.model_name, p.top_k = r.label, r.confidence, model_name, []
        p.batch, p.confirms, p.disconfirms, p.tally_stale = batch_of[id(r)], 0, 0, False
    fields = ["label", "confidence", "model_name", "top_k", "batch", "confirms", "disconfirms", "tally_stale"]
    Prediction.objects.bulk_update(list(predictions.values()), fields, batch_size=CHUNK)
    without = [r for r in rows if existing[r.image].prediction_id is None]
    _insert_predictions(dataset, ((images[existing[r.image].image_id], r) for r in without), model_name, batch_of)
    Batch.objects.filter(pk__in=old_batches).annotate(n=Count("predictions")).filter(n=0).delete()


def create_batches_for_unbatched(dataset: Dataset) -> int:
    """Put every prediction of the dataset that is in no batch into new batches; return how many were made."""
    rows = list(Prediction.objects.filter(dataset=dataset, batch__isnull=True).values_list("id", "label"))
    groups = batch_groups(rows, key=lambda r: r[1], size=dataset.batch_size, seed=dataset.shuffle_seed)
    batches = Batch.objects.bulk_create([Batch(dataset=dataset, label=label) for label, _ in groups], batch_size=CHUNK)
    for batch, (_, members) in zip(batches, groups, strict=True):
        Prediction.objects.filter(pk__in=[pid for pid, _ in members]).update(batch=batch)
    return len(batches)


def batch_groups(items: Iterable, *, key, size: int, seed: int) -> list[tuple[str, list]]:
    """Split items into (label, members) groups of at most `size`, one label each, packed full.

    Items of a label are shuffled with a per-dataset seed so that a batch mixes confidence levels.
    """
    by_label: dict[str, list] = defaultdict(list)
    for item in items:
        by_label[key(item)].append(item)
    groups = []
    for label in sorted(by_label):
        members = by_label[label]
        random.Random(f"{seed}:{label}").shuffle(members)
        groups.extend((label, members[i : i + size]) for i in range(0, len(members), size))
    return groups


@dataclass(frozen=True)
class ReformSummary:
    regrouped: int  # predictions put into new batches
    dissolved: int  # batches they came from
    formed: int  # batches made

    def describe(self, dataset_name: str) -> str:
        return (
            # Not the name first: the admin capitalises a message's first letter, and names are case-sensitive.
            f"Dataset {dataset_name}: {self.regrouped} unreviewed prediction{pluralize(self.regrouped)} regrouped from "
            f"{self.dissolved} batch{pluralize(self.dissolved, 'es')} into {self.formed}."
        )


# Knuth's multiplicative hash, in plain integer SQL both PostgreSQL and SQLite run: a seeded, repeatable shuffle.
_SHUFFLE = "((p.id + %(seed)s) * 2654435761) %% 4294967296"
_REFORM_TABLES = ("lq_reform_batch", "lq_reform_item", "lq_reform_map")


@transaction.atomic
def batches_reform(*, dataset: Dataset) -> ReformSummary:
    """Regroup the dataset's unreviewed, unleased predictions into full batches per label, in set-based SQL.

    A batch stays as it is, with all its items, when anyone voted on one of its items or it has a submitted or
    unexpired lease. The items of every other batch, and items in no batch, are pooled per label, shuffled with the
    dataset's seed and cut into batches of `dataset.batch_size` -- so the part-filled tails that many small imports
    leave behind become full batches.
    """
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)  # imports of this dataset wait for us
    batch, lease, prediction, vote = (m._meta.db_table for m in (Batch, Lease, Prediction, Vote))
    params = {"ds": dataset.pk, "now": timezone.now(), "seed": dataset.shuffle_seed, "size": dataset.batch_size}
    if connection.vendor == "postgresql":
        new_id = f"nextval(pg_get_serial_sequence('{batch}', 'id'))"
    else:  # SQLite: the transaction holds the database's write lock, so nobody else takes ids meanwhile
        new_id = f"(SELECT coalesce(max(id), 0) FROM {batch}) + row_number() OVER (ORDER BY label, k)"
    # A reviewer who is leasing holds the batch's row lock; such batches are skipped, not waited for.
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    with connection.cursor() as cursor:
        for table in _REFORM_TABLES:  # one at a time: SQLite drops one table per statement
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute("CREATE TEMP TABLE lq_reform_batch (id bigint PRIMARY KEY)")
        cursor.execute(
            f"WITH locked AS (SELECT id FROM {batch} WHERE dataset_id = %(ds)s AND reviews_done = 0{lock}) "
            "INSERT INTO lq_reform_batch SELECT id FROM locked",
            params,
        )
        # Checked after the locks are held: no lease or vote can reach these batches until we commit.
        cursor.execute(
            f"""
            DELETE FROM lq_reform_batch
            WHERE EXISTS (SELECT 1 FROM {lease} l WHERE l.batch_id = lq_reform_batch.id
                            AND (l.submitted_at IS NOT NULL OR l.expires_at > %(now)s))
               OR EXISTS (SELECT 1 FROM {prediction} p JOIN {vote} v ON v.prediction_id = p.id
                          WHERE p.batch_id = lq_reform_batch.id)
            """,
            params,
        )
        cursor.execute(
            f"""
            CREATE TEMP TABLE lq_reform_item AS
            SELECT p.id, p.label,
                   (row_number() OVER (PARTITION BY p.label ORDER BY {_SHUFFLE}, p.id) - 1) / %(size)s AS k
            FROM {prediction} p
            WHERE p.dataset_id = %(ds)s
              AND (p.batch_id IS NULL OR p.batch_id IN (SELECT id FROM lq_reform_batch))
              AND NOT EXISTS (SELECT 1 FROM {vote} v WHERE v.prediction_id = p.id)
            """,
            params,
        )
        cursor.execute(
            f"CREATE TEMP TABLE lq_reform_map AS SELECT label, k, {new_id} AS batch_id "
            "FROM (SELECT DISTINCT label, k FROM lq_reform_item) g"
        )
        cursor.execute(
            f"INSERT INTO {batch} (id, dataset_id, label, reviews_done, priority, created_at) "
            "SELECT batch_id, %(ds)s, label, 0, 0, %(now)s FROM lq_reform_map ORDER BY batch_id",
            params,
        )
        formed = cursor.rowcount
        cursor.execute(
            f"""
            UPDATE {prediction} SET batch_id = x.batch_id
            FROM (SELECT i.id, m.batch_id
                  FROM lq_reform_item i JOIN lq_reform_map m ON m.label = i.label AND m.k = i.k) x
            WHERE {prediction}.id = x.id
            """
        )
        regrouped = cursor.rowcount
        # Only expired, never-submitted leases are left on these batches; they go with them, and the gold shown on
        # their grids with them.
        dissolved = rows_delete(Batch.objects.filter(id__in=RawSQL("SELECT id FROM lq_reform_batch", [])))[Batch]
        for table in _REFORM_TABLES:  # dropped here: inside a caller's transaction they would outlive this call
            cursor.execute(f"DROP TABLE {table}")
    return ReformSummary(regrouped=regrouped, dissolved=dissolved, formed=formed)


PLACEHOLDER_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 256 256"><rect width="256" height="256" fill="#eee"/>'
    b'<text x="128" y="132" font-family="sans-serif" font-size="18" text-anchor="middle" fill="#a33">'
    b"image unavailable</text></svg>"
)


@dataclass(frozen=True)
class ImageBytes:
    data: bytes
    content_type: str
    placeholder: bool = False  # shown instead of an image that cannot be: browsers should not keep it long


PLACEHOLDER = ImageBytes(PLACEHOLDER_SVG, "image/svg+xml", placeholder=True)
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # what Pillow calls a JPEG with a multi-picture index, as many cameras write
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "AVIF": "image/avif",
}
# Formats most browsers cannot show: the zoom gets a WebP rendition of them instead.
RENDERED_FORMATS = {"TIFF"}
ZOOM_SIZE = 2048


IMAGE_CHECK_FIELDS = list(UNCHECKED_IMAGE)
T = TypeVar("T")


def _image_note_problem(image: Image, exc: storage.ImageUnavailable | imaging.ImageProblem | None) -> None:
    """Note why the image cannot be shown, or that it can; bytes that were read and are no image make it unusable."""
    image.problem = str(exc)[:500] if exc is not None else ""
    image.unusable = isinstance(exc, imaging.ImageProblem)


def _image_checked(image: Image, check: Callable[[], T]) -> T:
    """Run `check` on the image and save what it noted, if that changed: a flagged image shown again writes nothing."""
    before = [getattr(image, name) for name in IMAGE_CHECK_FIELDS]
    result = check()
    if [getattr(image, name) for name in IMAGE_CHECK_FIELDS] != before:
        image.save(update_fields=IMAGE_CHECK_FIELDS)
    return result


def image_thumbnail(image: Image) -> ImageBytes:
    """Return the image's cached thumbnail, making and caching it first if needed; PLACEHOLDER if it cannot be.

    An unusable image is not decoded again here (a hostile file would cost its decode on every grid); one that
    could not be read is tried again, and clears its problem once it reads.
    """
    if image.thumbnail and (cached := storage.thumbnail_read(image.thumbnail)) is not None:
        return ImageBytes(cached, "image/webp")
    if image.unusable:
        return PLACEHOLDER
    data = _image_checked(image, lambda: _thumbnail_store(image, image.dataset.images_root))
    return ImageBytes(data, "image/webp") if data is not None else PLACEHOLDER


def _thumbnail_store(image: Image, images_root: str) -> bytes | None:
    """Make and store the image's thumbnail and set `image.thumbnail`, or its problem; the caller saves.

    Storage that refuses the thumbnail leaves it uncached (made again when next shown); the bytes are returned.
    """
    try:
        data = imaging.make_thumbnail(storage.read_image(images_root, image.path))
    except (storage.ImageUnavailable, imaging.ImageProblem) as exc:
        _image_note_problem(image, exc)
        return None
    _image_note_problem(image, None)
    key = storage.thumbnail_key(image.dataset_id, image.pk)
    if storage.thumbnail_save(key, data):
        image.thumbnail = key
    return data


THUMBNAIL_CHUNK = 200


@dataclass(frozen=True)
class ThumbnailsMade:
    made: int
    flagged: int
    more: bool  # images were left for a later call (`limit` reached)
    last: int = field(default=0, compare=False)  # the last image checked: a later call goes on after it


def thumbnails_make(
    *, dataset_id: int, limit: int | None = None, flagged_again: bool = False, after: int = 0
) -> ThumbnailsMade:
    """Check the dataset's images that have no thumbnail yet (at most `limit`): make and cache each one, or flag it.

    Runs after an import so that the grid never waits for a decode and missing or hostile files show up on the
    datasets page before a reviewer meets them. Images already done or flagged are skipped, so a rerun (a
    redelivered task) carries on where the last one stopped; `flagged_again` checks the flagged ones once more
    (after the files or the images root were fixed), from image id `after` on.
    """
    images_root = Dataset.objects.values_list("images_root", flat=True).filter(pk=dataset_id).first()
    if images_root is None:  # deleted since the pass was queued
        return ThumbnailsMade(0, 0, more=False, last=after)
    pending = Image.objects.filter(dataset_id=dataset_id, thumbnail="").order_by("pk")
    if not flagged_again:
        pending = pending.filter(problem="")
    made = flagged = 0
    last = after
    while limit is None or made + flagged < limit:
        size = THUMBNAIL_CHUNK if limit is None else min(THUMBNAIL_CHUNK, limit - made - flagged)
        chunk = list(pending.filter(pk__gt=last)[:size])
        if not chunk:
            return ThumbnailsMade(made, flagged, more=False, last=last)
        for image in chunk:
            if _thumbnail_checked_in_pass(image, images_root) is None:
                flagged += 1
            else:
                made += 1
        if not Dataset.objects.filter(pk=dataset_id).exists():
            # Deleted meanwhile: its files task may have run before this chunk's thumbnails were saved.
            dataset_files_delete(dataset_id=dataset_id)
            return ThumbnailsMade(made, flagged, more=False, last=last)
        Image.objects.bulk_update(chunk, IMAGE_CHECK_FIELDS)
        last = chunk[-1].pk
    return ThumbnailsMade(made, flagged, more=pending.filter(pk__gt=last).exists(), last=last)


def _thumbnail_checked_in_pass(image: Image, images_root: str) -> bytes | None:
    """Make the image's thumbnail like `_thumbnail_store`, flagging it when that fails in a way nobody foresaw.

    One image must never stop the pass: the chunk's findings are saved only at its end, and the images after it
    would never be checked.
    """
    try:
        return _thumbnail_store(image, images_root)
    except Exception as exc:
        log.exception("Checking image %s (%r) of dataset %s failed", image.pk, image.path, image.dataset_id)
        # Unavailable, not unusable: the file may be fine, so it is tried again when shown or checked again.
        _image_note_problem(image, storage.ImageUnavailable(f"could not be checked: {exc}"))
        return None


def _thumbnails_enqueue(dataset_id: int, *, flagged_again: bool = False) -> None:
    from worker.tasks import enqueue, thumbnails_run

    consequence = "thumbnails will be made when the grid first shows them."
    enqueue(thumbnails_run, dataset_id, flagged_again, 0, consequence=consequence)


def images_check_again(*, dataset: Dataset) -> int:
    """Have a worker check the dataset's flagged images once more (their files or its root were fixed).

    Return how many are flagged. The check is queued once the caller's transaction commits.
    """
    flagged = dataset.images.exclude(problem="").count()
    if flagged:
        transaction.on_commit(lambda: _thumbnails_enqueue(dataset.pk, flagged_again=True))
    return flagged


def image_original(image: Image) -> ImageBytes:
    """Return the original bytes once they decode as a safe image; PLACEHOLDER otherwise."""
    if image.unusable:
        return PLACEHOLDER

    def read_and_check() -> ImageBytes:
        try:
            served = _zoomable(image, storage.read_image(image.dataset.images_root, image.path))
        except (storage.ImageUnavailable, imaging.ImageProblem) as exc:
            _image_note_problem(image, exc)
            return PLACEHOLDER
        _image_note_problem(image, None)  # it may not have read before
        return served

    return _image_checked(image, read_and_check)


def _zoomable(image: Image, data: bytes) -> ImageBytes:
    """Return what the zoom shows of the image's bytes, checked as far as needed; raise ImageProblem if no image."""
    file_format = imaging.image_header(data).format
    if file_format in RENDERED_FORMATS:
        return ImageBytes(_zoom_rendition(image, data), "image/webp")
    # Once its thumbnail was made the file has decoded: its header will do, where a full decode of a large photo
    # would be paid again on every zoom.
    if not image.thumbnail or image.problem:
        imaging.open_image(data, target_size=(ZOOM_SIZE, ZOOM_SIZE))
    return ImageBytes(data, CONTENT_TYPES.get(file_format, "application/octet-stream"))


def _zoom_rendition(image: Image, data: bytes) -> bytes:
    """Return the cached WebP rendition of the image's bytes, making and caching it first if needed.

    Made once per file rather than per zoom: rendering a 7900×7900 TIFF took 0.50 s and 268 MiB of peak memory each
    time (bench/zoom_tiff.py), reading the cached rendition 0.4 ms.
    Storage that refuses it leaves it uncached, as with thumbnails; raise ImageProblem if the bytes are no image.
    """
    key = storage.zoom_key(image.dataset_id, image.pk, data)
    if (cached := storage.thumbnail_read(key)) is not None:
        return cached
    rendition = imaging.make_thumbnail(data, ZOOM_SIZE, quality=90)
    storage.zoom_save(key, rendition)
    return rendition
