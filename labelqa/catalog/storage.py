"""Read images from a dataset's images root (a local directory or s3://bucket/prefix); cache thumbnails and zooms."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import posixpath
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from worker.sources import MAX_IMAGE_BYTES, ImageTooLarge, path_inside, read_regular_file, resolved_within, split_s3_uri

log = logging.getLogger("labelqa")


class ImageUnavailable(Exception):
    """The image could not be read; the message says why."""


@functools.cache
def s3_client():
    """Return a boto3 S3 client for the configured endpoint (shared by the process; boto3 clients are thread-safe)."""
    return boto3.client(
        "s3",
        endpoint_url=settings.AWS_S3_ENDPOINT_URL,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=32),
    )


def is_s3(root: str) -> bool:
    return root.startswith("s3://")


def root_refusal(root: str) -> str | None:
    """Say why datasets may not read images from `root`, or None when LABELQA_IMAGE_ROOTS allows it (empty: any)."""
    allowed = settings.LABELQA_IMAGE_ROOTS
    if not allowed or any(_root_within(root, parent) for parent in allowed):
        return None
    return (
        f"{root} is not under an images root this server allows (LABELQA_IMAGE_ROOTS: {', '.join(allowed)}); "
        "use a directory or s3:// prefix under one of them, or ask whoever runs the server to add yours"
    )


def root_problem(root: str) -> str | None:
    """Say why a dataset or a run cannot take `root` as its images root: its form, or LABELQA_IMAGE_ROOTS; else None."""
    if is_s3(root):
        try:
            split_s3_uri(root)
        except ValueError as exc:
            return str(exc)
    elif not os.path.isabs(root):  # it would be looked up wherever each process happens to run
        return f"{root} is a relative path; give the directory's whole path, starting with /"
    return root_refusal(root)


def no_local_folder(root: str) -> bool:
    """Whether `root` names a local directory that this machine does not have (an s3:// root never does)."""
    return not is_s3(root) and not Path(root).is_dir()


def _root_within(root: str, parent: str) -> bool:
    if is_s3(root) != is_s3(parent):
        return False
    if is_s3(root):  # keys are plain strings: the prefix must match up to a slash
        return f"{root.rstrip('/')}/".startswith(f"{parent.rstrip('/')}/")
    return path_inside(root, parent)


def read_image(root: str, path: str) -> bytes:
    """Return the bytes of `path` under `root`, refusing anything outside the root or too large to be a photo."""
    if root and root_refusal(root) is not None:
        # A root set before LABELQA_IMAGE_ROOTS was, or since narrowed: its images are not served any more.
        raise ImageUnavailable("the dataset's images root is not one this server allows (LABELQA_IMAGE_ROOTS)")
    if is_s3(root):
        bucket, prefix = split_s3_uri(root)
        key = posixpath.join(prefix, path) if prefix else path
        try:
            obj = s3_client().get_object(Bucket=bucket, Key=key)
            if obj["ContentLength"] > MAX_IMAGE_BYTES:
                raise ImageUnavailable(str(ImageTooLarge()))
            # The body streams after the headers: a timeout or a dropped connection surfaces in read().
            return obj["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise ImageUnavailable(f"cannot read s3://{bucket}/{key}: {exc}") from None
    if not root:
        # An empty root would resolve against whatever directory the process runs in.
        raise ImageUnavailable("the dataset has no images root: set one on its admin page")
    try:
        full = resolved_within(Path(root).resolve(), path)
        if full is None:
            raise ImageUnavailable("path leaves the images root")
        return read_regular_file(full)
    except ImageTooLarge as exc:
        raise ImageUnavailable(str(exc)) from None
    except OSError as exc:
        raise ImageUnavailable(f"cannot read {path}: {exc.strerror or exc}") from None
    except RuntimeError:  # resolve() on a symlink loop (Python 3.13 raises OSError instead)
        raise ImageUnavailable(f"cannot read {path}: symbolic link loop") from None
    except ValueError as exc:  # a NUL byte in the path
        raise ImageUnavailable(f"cannot read {path}: {exc}") from None


# The storage folders of a dataset's cached files, one per kind; the keys below lie in them.
THUMBNAILS, ZOOMS = "thumbnails", "zooms"


def thumbnail_key(dataset_id: int, image_id: int) -> str:
    return f"{THUMBNAILS}/{dataset_id}/{image_id}.webp"


def dataset_folders(dataset_id: int) -> list[str]:
    """The storage folders that hold a dataset's cached files (thumbnails, zoom renditions)."""
    return [f"{kind}/{dataset_id}" for kind in (THUMBNAILS, ZOOMS)]


def folder_delete(folder: str) -> int:
    """Delete every file under `folder` in storage, subfolders included; return how many."""
    bucket = getattr(default_storage, "bucket", None)
    if bucket is not None:  # S3: a thousand keys a request, not a request for each of a million thumbnails
        prefix = f"{posixpath.join(default_storage.location, folder)}/"
        return sum(len(answer.get("Deleted", [])) for answer in bucket.objects.filter(Prefix=prefix).delete())
    try:
        # Not exists() first: S3 storage answers it for an object, never for a prefix.
        subfolders, files = default_storage.listdir(folder)
    except FileNotFoundError:  # local storage, nothing was ever cached there
        return 0
    for name in files:
        default_storage.delete(posixpath.join(folder, name))
    deleted = len(files) + sum(folder_delete(posixpath.join(folder, sub)) for sub in subfolders)
    empty_folder_remove(folder)
    return deleted


def empty_folder_remove(folder: str) -> None:
    """Remove an emptied folder of local storage, which would otherwise stay behind (S3 has no folders)."""
    if getattr(default_storage, "bucket", None) is not None:
        return
    try:
        os.rmdir(default_storage.path(folder))
    except OSError:  # a file saved into it meanwhile, or the folder already gone
        pass


def zoom_key(dataset_id: int, image_id: int, source: bytes) -> str:
    """Return the key of the zoom rendition of the image's `source` bytes.

    The key names the bytes, not just the image: a file replaced under the same path, or read from a changed images
    root, gets a key of its own and never the rendition of the file it replaced.
    """
    digest = hashlib.blake2b(source, digest_size=16).hexdigest()
    return f"{ZOOMS}/{dataset_id}/{image_id}/{digest}.webp"


# What local or S3 storage raises when it is full, refuses access or cannot be reached.
STORAGE_ERRORS = (OSError, ClientError, BotoCoreError)


def thumbnail_save(key: str, data: bytes) -> bool:
    """Cache a thumbnail or zoom rendition; False when storage refused it (it is then simply not cached)."""
    try:
        if default_storage.exists(key):
            default_storage.delete(key)
        default_storage.save(key, ContentFile(data))
    except STORAGE_ERRORS as exc:
        log.warning("Could not cache thumbnail %s: %s", key, exc)
        return False
    return True


def zoom_save(key: str, data: bytes) -> None:
    """Cache a zoom rendition like `thumbnail_save`, and drop the image's renditions of files it no longer has."""
    if not thumbnail_save(key, data):
        return
    folder, name = posixpath.split(key)
    try:
        for other in default_storage.listdir(folder)[1]:
            if other != name:
                default_storage.delete(posixpath.join(folder, other))
    except STORAGE_ERRORS as exc:
        log.warning("Could not drop the earlier zoom renditions beside %s: %s", key, exc)


def thumbnail_read(key: str) -> bytes | None:
    """Return a cached thumbnail or zoom rendition; None when it is missing or storage cannot be read (made again)."""
    try:
        with default_storage.open(key, "rb") as f:
            return f.read()
    except STORAGE_ERRORS:
        return None
