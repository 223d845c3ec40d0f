"""What a TIFF zoom costs: rendering its WebP, as on a first zoom, against a zoom served from the cached rendition.

Writes a single-colour 7900x7900 deflate TIFF (62 megapixels, a few hundred KiB, under the pixel and byte limits),
then times, in this process, what the zoom view does with the file's bytes:

- first zoom: `imaging.make_thumbnail(data, ZOOM_SIZE, quality=90)`, the rendition that is then cached, with the
  growth of the process's peak RSS;
- later zooms: the key of the cached rendition (a hash of the bytes, `storage.zoom_key`) and the header check,
  which is all the view does besides reading the file and the cached rendition.

Prints figures only; it asserts nothing about time.

    python bench/zoom_tiff.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelqa.settings")

import django  # noqa: E402

django.setup()

from labelqa.catalog import imaging, storage  # noqa: E402
from labelqa.catalog.services import ZOOM_SIZE  # noqa: E402

SIDE = 7900


def big_tiff() -> bytes:
    """Make the file in a child process: its 190 MB of pixels would otherwise set this process's peak RSS."""
    make = (
        "import io, sys; from PIL import Image; out = io.BytesIO(); "
        f"Image.new('RGB', ({SIDE}, {SIDE}), (200, 120, 40)).save(out, 'TIFF', compression='tiff_deflate'); "
        "sys.stdout.buffer.write(out.getvalue())"
    )
    return subprocess.run([sys.executable, "-c", make], capture_output=True, check=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = big_tiff()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    renders = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        imaging.make_thumbnail(data, ZOOM_SIZE, quality=90)
        renders.append(time.perf_counter() - start)
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    start = time.perf_counter()
    for _ in range(100):
        storage.zoom_key(1, 1, data)
        imaging.image_header(data)
    cached = (time.perf_counter() - start) / 100
    print(f"machine: {os.cpu_count()} cores; TIFF {SIDE}x{SIDE}, {len(data) / 1024:.0f} KiB")
    render = statistics.median(renders)
    print(f"first zoom (render): median {render:.2f} s over {args.rounds}, peak RSS +{rss_growth:.0f} MiB")
    print(f"later zooms (hash and header): {cached * 1000:.2f} ms")


if __name__ == "__main__":
    main()
