"""Compare the classifier's end-to-end throughput with its pure forward throughput.

Writes N photo-like 640x480 JPEGs to a temporary folder, then times, on the same
device and at the same batch size:

- end to end: ``Classifier.classify`` over the files (read, decode through the
  DataLoader, in worker processes or in-process threads, forward, softmax), worker
  start-up included;
- pure forward: ``Classifier.predict`` over the same images decoded beforehand.

Rounds alternate the two so that both see the same machine (shared VMs drift by tens
of percent within a minute); the ratio is the median of the rounds' ratios.
Prints figures only; it asserts nothing about time.

    python bench/classify.py [-n 512] [--batch-size N] [--workers N] [--threads N]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from worker.classifier import DEFAULT_MODEL, Classifier, default_num_workers, load_pixels  # noqa: E402


def photo_like_jpeg(rng: np.random.Generator, width: int = 640, height: int = 480) -> bytes:
    """Return a JPEG of random content with the smooth areas and grain of a photo.

    Pure noise would compress to ~3x the size of a real photo and decode slower than
    any; a random colour field blown up from 40x30 plus sensor-like grain sits at the
    size of a typical 640x480 camera JPEG.
    """
    field = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(field).resize((width, height), Image.Resampling.BICUBIC))
    grain = rng.normal(0.0, 6.0, base.shape)
    pixels = np.clip(base + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def end_to_end(clf: Classifier, paths: list[str], workers: int | None) -> float:
    """Time classify() over the files; return images per second."""
    start = time.perf_counter()
    done = sum(1 for result in clf.classify(paths, num_workers=workers) if result.ok)
    elapsed = time.perf_counter() - start
    if done != len(paths):
        raise SystemExit(f"only {done} of {len(paths)} generated images were classified")
    return len(paths) / elapsed


def pure_forward(clf: Classifier, batches: list[torch.Tensor]) -> float:
    """Time predict() over pre-decoded batches; return images per second."""
    start = time.perf_counter()
    for batch in batches:
        clf.predict(batch)
    elapsed = time.perf_counter() - start
    return sum(len(b) for b in batches) / elapsed


def main() -> None:
    """Parse flags, run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--images", type=int, default=512, help="JPEGs to generate")
    parser.add_argument("--batch-size", type=int, default=None, help="default: automatic")
    parser.add_argument("--workers", type=int, default=None, help="decode workers (default: automatic)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default=os.environ.get("LABELQA_DEVICE", "auto"))
    parser.add_argument("--model", default=os.environ.get("LABELQA_MODEL", DEFAULT_MODEL))
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    clf = Classifier(args.model, device=args.device, batch_size=args.batch_size)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="labelqa-bench-") as tmp:
        paths, sizes = [], []
        for i in range(args.images):
            data = photo_like_jpeg(rng)
            path = Path(tmp, f"img{i:05d}.jpg")
            path.write_bytes(data)
            paths.append(str(path))
            sizes.append(len(data))
        decoded = torch.from_numpy(np.stack([load_pixels(Path(p).read_bytes(), clf.preprocessing) for p in paths]))
        batches = list(decoded.split(clf.batch_size))
        workers = default_num_workers(clf.device) if args.workers is None else args.workers
        print(f"device:       {clf.device}")
        print(f"os.cpu_count: {os.cpu_count()}")
        print(f"torch threads: {torch.get_num_threads()}")
        print(f"batch size:   {clf.batch_size}")
        print(f"workers:      {workers}")
        print(f"images:       {args.images} JPEGs 640x480, mean {statistics.mean(sizes) / 1024:.0f} KiB")

        pure_forward(clf, batches[:2])  # warm-up: allocator, kernels, caches
        e2e_rates, fwd_rates = [], []
        for round_no in range(1, args.rounds + 1):
            e2e_rates.append(end_to_end(clf, paths, workers))
            fwd_rates.append(pure_forward(clf, batches))
            print(
                f"round {round_no}: end-to-end {e2e_rates[-1]:6.1f} img/s   "
                f"pure forward {fwd_rates[-1]:6.1f} img/s   "
                f"ratio {e2e_rates[-1] / fwd_rates[-1]:.2f}"
            )
    ratio = statistics.median(e / f for e, f in zip(e2e_rates, fwd_rates, strict=True))
    print(f"end-to-end (classify):      {statistics.median(e2e_rates):6.1f} images/s (median)")
    print(f"pure forward (pre-decoded): {statistics.median(fwd_rates):6.1f} images/s (median)")
    print(f"ratio end-to-end / forward: {ratio:.2f} (median of rounds)")


if __name__ == "__main__":
    main()
