"""Find and read images in a local folder or under an S3 prefix (no Django: runs in decode processes)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

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


def list_images(root: str) -> Iterator[str]:
    """Yield the image paths under `root`, relative to it, in sorted order."""
    if root.startswith("s3://"):
        bucket, prefix = split_s3_uri(root)
        pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        start = len(prefix) + 1 if prefix else 0
        yield from sorted(k[start:] for k in keys if Path(k).suffix.lower() in IMAGE_SUFFIXES)
        return
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    yield from sorted(
        p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


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
    path = Path(key)
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise ImageTooLarge
    return path.read_bytes()


def full_key(root: str, path: str) -> str:
    """Join an images root and a relative path into a key read_image_bytes understands."""
    return f"{root.rstrip('/')}/{path}" if root.startswith("s3://") else str(Path(root) / path)
