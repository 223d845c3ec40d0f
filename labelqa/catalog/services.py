"""Writes to the catalog: datasets, prediction imports and the batches they form."""

from __future__ import annotations

import io
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import IO

from django.db import transaction
from PIL import Image as PILImage

from labelqa.catalog import imaging, storage
from labelqa.catalog.models import Dataset, Image, Prediction
from labelqa.catalog.rows import ErrorList, PredictionRow, read_prediction_rows, scale_confidences
from labelqa.review.models import Batch

CHUNK = 5000


@dataclass(frozen=True)
class ImportSummary:
    dataset: str
    imported: int
    skipped_below_min: int
    batches: int


def chunks(items: Iterable, size: int = CHUNK):
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def dataset_get_or_create(
    *, name: str, images_root: str | None = None, batch_size: int | None = None, reviews_per_item: int | None = None
) -> Dataset:
    """Return the dataset called `name`, creating it or updating the settings given; refuse a changed images root."""
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
        dataset.full_clean()
        dataset.save(update_fields=changed)
    return dataset


def _existing_paths(dataset: Dataset, paths: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(paths):
        found.update(Image.objects.filter(dataset=dataset, path__in=chunk).values_list("path", flat=True))
    return found


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
) -> ImportSummary:
    """Import a prediction file into a dataset, all or nothing, and form its review batches.

    Raises RowsRejected naming every bad line (the first 100); the database is then unchanged.
    """
    errors = ErrorList()
    rows = list(read_prediction_rows(stream, errors))
    scale_confidences(rows, confidence_scale, errors)
    dataset = dataset_get_or_create(
        name=dataset_name, images_root=images_root, batch_size=batch_size, reviews_per_item=reviews_per_item
    )
    already = _existing_paths(dataset, [r.image for r in rows])
    for row in rows:
        if row.image in already:
            errors.add(row.line, f"image {row.image!r} is already in dataset {dataset.name!r}")
    errors.raise_if_any()

    kept = [r for r in rows if min_confidence is None or r.confidence >= min_confidence]
    batch_count = _create_predictions(dataset, kept, model_name)
    return ImportSummary(dataset.name, len(kept), len(rows) - len(kept), batch_count)


def _create_predictions(dataset: Dataset, rows: list[PredictionRow], model_name: str) -> int:
    """Insert images and predictions in bulk, each prediction already in its batch; return the batch count."""
    groups = batch_groups(rows, key=lambda r: r.label, size=dataset.batch_size, seed=dataset.shuffle_seed)
    batches = Batch.objects.bulk_create([Batch(dataset=dataset, label=label) for label, _ in groups], batch_size=CHUNK)
    batch_of = {id(row): batch for batch, (_, members) in zip(batches, groups, strict=True) for row in members}
    for chunk in chunks(rows):
        images = Image.objects.bulk_create([Image(dataset=dataset, path=r.image, metadata=r.metadata) for r in chunk])
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
                for image, r in zip(images, chunk, strict=True)
            ]
        )
    return len(batches)


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


PLACEHOLDER_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 256 256"><rect width="256" height="256" fill="#eee"/>'
    b'<text x="128" y="132" font-family="sans-serif" font-size="18" text-anchor="middle" fill="#a33">'
    b"image unavailable</text></svg>"
)
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "AVIF": "image/avif",
}


def image_flag(image: Image, problem: str) -> None:
    """Record why an image cannot be shown, so reviewers and admins see it instead of a broken page."""
    if image.problem != problem:
        image.problem = problem[:500]
        image.save(update_fields=["problem"])


def image_thumbnail(image: Image) -> tuple[bytes, str]:
    """Return the image's cached thumbnail, making and caching it first if needed; a placeholder if unusable."""
    if image.thumbnail and (cached := storage.thumbnail_read(image.thumbnail)) is not None:
        return cached, "image/webp"
    try:
        data = imaging.make_thumbnail(storage.read_image(image.dataset.images_root, image.path))
    except (storage.ImageUnavailable, imaging.ImageProblem) as exc:
        image_flag(image, str(exc))
        return PLACEHOLDER_SVG, "image/svg+xml"
    key = storage.thumbnail_key(image.dataset_id, image.pk)
    storage.thumbnail_save(key, data)
    image.thumbnail = key
    image.save(update_fields=["thumbnail"])
    return data, "image/webp"


def image_original(image: Image) -> tuple[bytes, str]:
    """Return the original bytes once they decode as a safe image; a placeholder otherwise."""
    try:
        data = storage.read_image(image.dataset.images_root, image.path)
        imaging.open_image(data, target_size=(2048, 2048))
    except (storage.ImageUnavailable, imaging.ImageProblem) as exc:
        image_flag(image, str(exc))
        return PLACEHOLDER_SVG, "image/svg+xml"
    with PILImage.open(io.BytesIO(data)) as header:
        return data, CONTENT_TYPES.get(header.format, "application/octet-stream")
