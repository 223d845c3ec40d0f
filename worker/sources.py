"""Find and read images in a local folder or under an S3 prefix (no Django: runs in decode processes)."""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from labelqa.catalog.rows import normalise_image_path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
# Larger files are refused before they are read: no legitimate photo for review is this big.
MAX_IMAGE_BYTES = 64 * 1024 * 1024


class ImageTooLarge(ValueError):
    def __init__(self) -> None:
        super().__init__(f"file is larger than {MAX_IMAGE_BYTES // 2**20} MiB")


@functools.cache
def _s3():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_S3_ENDPOINT_URL") or None)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Return (bucket, prefix) of an s3://bucket/prefix URI; the prefix has no leading or trailing slash."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket; write s3://bucket/prefix")
    return bucket, prefix.strip("/")


class Listing(NamedTuple):
    paths: list[str]  # image paths relative to the root, sorted, each one the importer would accept
    refused: list[tuple[str, str]]  # image files that are not classified: (name as listed, why)


def list_images(root: str) -> Listing:
    """List the image files under `root`, refusing those that cannot be stored or read as the viewer reads them.

    Paths follow the importer's rules (length, no control characters, nothing it would rewrite), so one odd name
    is a flagged file rather than an insert that fails the run at the same spot on every retry; a local file that
    resolves outside the root (a symlink) is refused, as the image viewer refuses it.
    """
    if root.startswith("s3://"):
        bucket, prefix = split_s3_uri(root)
        pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        start = len(prefix) + 1 if prefix else 0
        names = [k[start:] for k in keys if Path(k).suffix.lower() in IMAGE_SUFFIXES]
        return _checked(names, lambda name: None)
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    resolved_base = base.resolve()
    files = [p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]

    def outside(name: str) -> str | None:
        return None if resolved_within(resolved_base, name) else "it resolves outside the images root"

    return _checked([p.relative_to(base).as_posix() for p in files], outside)


def _checked(names: list[str], problem_of: Callable[[str], str | None]) -> Listing:
    paths, refused = [], []
    for name in sorted(names):
        problem = _path_problem(name) or problem_of(name)
        if problem is None:
            paths.append(name)
        else:
            refused.append((name, problem))
    return Listing(paths, refused)


def _path_problem(name: str) -> str | None:
    """Say why `name` cannot be stored as an image path, or return None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.listdir keeps bytes that are not UTF-8 as surrogates
        return "its name is not valid UTF-8"
    try:
        clean = normalise_image_path(name)
    except ValueError as exc:
        return str(exc)
    # A path the importer rewrites (spaces trimmed, a backslash, a/./b) would name another file, or none.
    return None if clean == name else f"the importer would read its name as {clean!r}"


def read_image_bytes(key: str) -> bytes:
    """Read an image given as a local path or an s3://bucket/key URI (picklable, for DataLoader workers).

    ImageTooLarge refuses a file over MAX_IMAGE_BYTES before its bytes are read.
    """
    if key.startswith("s3://"):
        bucket, name = split_s3_uri(key)
        obj = _s3().get_object(Bucket=bucket, Key=name)
        if obj["ContentLength"] > MAX_IMAGE_BYTES:
            raise ImageTooLarge
        return obj["Body"].read()
    return read_regular_file(key)


def read_regular_file(path: Path | str) -> bytes:
    """Read a local file, refusing one that is not a regular file (OSError) or over MAX_IMAGE_BYTES (ImageTooLarge).

    Opened without blocking, as a FIFO would otherwise wait for a writer for ever (O_NONBLOCK changes nothing for a
    regular file), and checked on the opened file, not the name, so nothing can be swapped in between; a file that
    grows past the limit while it is read is refused too.
    """
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = file.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLarge
    return data


def full_key(root: str, path: str) -> str:
    """Join an images root and a relative path into a key read_image_bytes understands."""
    return f"{root.rstrip('/')}/{path}" if root.startswith("s3://") else str(Path(root) / path)


def path_inside(path: str, directory: str) -> bool:
    """Tell whether `path` is `directory` or lies below it, both resolved: neither `..` nor a symlink leads out."""
    return Path(path).resolve().is_relative_to(Path(directory).resolve())


def resolved_within(base: Path, path: str) -> Path | None:
    """Return `path` below the resolved directory `base` with its symlinks resolved, or None if it leaves `base`."""
    full = (base / path).resolve()
    return full if full.is_relative_to(base) else None


def read_image_under(root: str, path: str) -> bytes:
    """Read `path` below the images root `root`, refusing a local file that resolves outside it."""
    key = full_key(root, path)
    if not root.startswith("s3://") and resolved_within(Path(root).resolve(), path) is None:
        # A symlink made or changed after the listing: the viewer would refuse it, so the classifier does too.
        raise PermissionError(f"{path} resolves outside the images root")
    return read_image_bytes(key)
