"""The classifier: the shipped model labels real photos, hostile files become problems, user models load."""

import functools
import io
import multiprocessing
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from worker.classifier import (
    EFFICIENTNET_LITE,
    IMAGENET_CLASSES,
    Classifier,
    ModelError,
    load_pixels,
    resolve_device,
)

DEMO = Path(__file__).resolve().parents[2] / "labelqa" / "catalog" / "demo" / "images"
CAT_CLASSES = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(device="cpu")


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def png_bomb() -> bytes:
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", 20_000, 10_000)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    return bytes(data)


def read_from(root: Path, key: str) -> bytes:
    """A reader for keys relative to a folder (module level, so worker processes can use it)."""
    return (root / key).read_bytes()


def refuse(key: str) -> bytes:
    raise PermissionError(f"access denied to {key}")


def test_imagenet_class_names_are_complete_and_readable():
    names = IMAGENET_CLASSES.read_text(encoding="utf-8").splitlines()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[281] == "tabby" and names[285] == "Egyptian cat" and names[967] == "espresso"


def test_the_cat_photo_is_a_cat(classifier):
    [result] = classifier.classify([str(DEMO / "chelsea.jpg")])
    assert result.ok and result.problem is None
    assert result.label in CAT_CLASSES
    assert 20 < result.confidence <= 100
    assert len(result.top5) == 5 and result.top5[0] == (result.label, result.confidence)
    scores = [score for _, score in result.top5]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 100.01
    assert sum(score for label, score in result.top5 if label in CAT_CLASSES) > 80


def test_preprocessing_matches_the_weights(classifier):
    # with the usual ImageNet mean/std instead of the Lite builder's 127/128 this drops to ~80 %
    [result] = classifier.classify([str(DEMO / "coffee.jpg")])
    assert result.label == "espresso" and result.confidence > 90
    assert classifier.preprocessing == EFFICIENTNET_LITE


def test_a_mixed_batch_flags_the_bad_images_and_labels_the_good(tmp_path):
    photo = Image.open(DEMO / "chelsea.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    cat_jpeg = (DEMO / "chelsea.jpg").read_bytes()
    files = {
        "cat.jpg": cat_jpeg,
        "truncated.jpg": cat_jpeg[: len(cat_jpeg) // 3],
        "empty.jpg": b"",
        "notes.jpg": b"image,label,confidence\n",
        "bomb.png": png_bomb(),
        "cmyk.jpg": encode(photo.convert("CMYK"), "JPEG"),
        "deep.png": encode(Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257), "PNG"),
        "palette.png": encode(photo.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "grey.jpg": encode(photo.convert("L"), "JPEG"),
        "rotated.jpg": encode(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif),
        "coffee.jpg": (DEMO / "coffee.jpg").read_bytes(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    keys = [*files, "missing.jpg"]
    bad = {"truncated.jpg", "empty.jpg", "notes.jpg", "bomb.png", "missing.jpg"}

    # batches of 3 mix good and bad images; two worker processes decode them
    small_batches = Classifier(device="cpu", batch_size=3)
    reader = functools.partial(read_from, tmp_path)
    results = list(small_batches.classify(keys, read_bytes=reader, num_workers=2))

    assert [r.key for r in results] == keys
    problems = {r.key: r.problem for r in results if not r.ok}
    assert set(problems) == bad
    assert problems["truncated.jpg"] == "truncated image file"
    assert problems["empty.jpg"].startswith("empty file")
    assert problems["notes.jpg"].startswith("not an image")
    assert problems["bomb.png"].startswith("decompression bomb")
    assert problems["missing.jpg"].startswith("cannot read image")
    # only a file that was read and is no image is unusable: a read failure may pass on a later run
    assert {r.key for r in results if r.unusable} == bad - {"missing.jpg"}
    for r in results:
        if r.ok:
            assert r.label and len(r.top5) == 5
        else:
            assert r.label is None and r.confidence is None and r.top5 == ()
    labels = {r.key: r.label for r in results}
    for converted in ("cat.jpg", "cmyk.jpg", "deep.png", "palette.png", "grey.jpg", "rotated.jpg"):
        assert labels[converted] in CAT_CLASSES, converted
    assert labels["coffee.jpg"] == "espresso"


def test_in_process_decoding_gives_the_same_results(classifier):
    keys = [str(p) for p in sorted(DEMO.glob("*.jpg"))]
    in_process = list(classifier.classify(keys, num_workers=0))
    in_workers = list(classifier.classify(keys, num_workers=1))
    assert in_process == in_workers


def classify_in_pool_worker(keys: list[str]) -> list[str | None]:
    return [r.label for r in Classifier(device="cpu").classify(keys, num_workers=2)]


def test_a_daemonic_process_decodes_in_process():
    # Celery's prefork children are daemonic, and daemonic processes may not start workers.
    # spawn: a child forked after this process ran torch's OpenMP threads would hang in them.
    keys = [str(DEMO / "chelsea.jpg"), str(DEMO / "coffee.jpg")]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        [labels] = pool.map(classify_in_pool_worker, [keys])
    assert labels[0] in CAT_CLASSES and labels[1] == "espresso"


def test_reader_failures_become_problems(classifier):
    results = list(classifier.classify(["s3://bucket/a.jpg", "s3://bucket/b.jpg"], read_bytes=refuse))
    assert [r.problem for r in results] == [
        "cannot read image: access denied to s3://bucket/a.jpg",
        "cannot read image: access denied to s3://bucket/b.jpg",
    ]


def test_a_file_too_large_to_be_a_photo_is_refused_before_it_is_read(classifier, tmp_path):
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as sparse:  # 65 MiB on paper, nothing on disk
        sparse.truncate(65 * 2**20)
    [result] = classifier.classify([str(huge)])
    assert result.problem == "cannot read image: file is larger than 64 MiB"


def test_no_keys_no_results(classifier):
    assert list(classifier.classify([])) == []


def test_load_pixels_centre_crops_and_resizes_like_pillow():
    data = (DEMO / "chelsea.jpg").read_bytes()
    pixels = load_pixels(data)
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8
    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (224, 224))
    img = img.convert("RGB")
    side = round(min(img.size) * 0.875)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    pillow = np.asarray(img.resize((224, 224), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)))
    assert np.abs(pillow.astype(int) - pixels.astype(int)).max() <= 2


def test_predict_returns_top_k_percent(classifier):
    batch = torch.from_numpy(np.stack([load_pixels((DEMO / "chelsea.jpg").read_bytes())] * 2))
    top, indices = classifier.predict(batch)
    assert top.shape == indices.shape == (2, 5)
    assert torch.equal(indices[0], indices[1]) and float(top[0].sum()) <= 100.01


class ColourModel(torch.nn.Module):
    """Says which of red, green or blue dominates the picture."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) * 10


def script_model(path: Path) -> None:
    torch.jit.script(ColourModel()).save(str(path))


def test_a_torchscript_model_with_a_labels_file_beside_it(tmp_path):
    script_model(tmp_path / "colours.pt")
    (tmp_path / "colours.labels.txt").write_text("red\ngreen\nblue\n")
    for colour in ("red", "green", "blue"):
        (tmp_path / f"{colour}.png").write_bytes(encode(Image.new("RGB", (64, 64), colour), "PNG"))

    clf = Classifier(str(tmp_path / "colours.pt"), device="cpu")
    results = list(clf.classify([str(tmp_path / f"{c}.png") for c in ("red", "green", "blue")]))

    assert [r.label for r in results] == ["red", "green", "blue"]
    assert all(len(r.top5) == 3 and r.confidence > 90 for r in results)


def test_labels_txt_is_the_fallback_labels_file(tmp_path):
    script_model(tmp_path / "model.pt")
    (tmp_path / "labels.txt").write_text("red\ngreen\nblue\n")
    assert Classifier(str(tmp_path / "model.pt"), device="cpu").labels == ["red", "green", "blue"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (None, "no labels file"),
        ("red\ngreen\n", "has 3 outputs but its labels file has 2 classes"),
        ("red\n\nblue\n", "none may be blank"),
        ("red\nred\nblue\n", "repeated: red"),
    ],
)
def test_bad_user_models_are_refused_with_a_reason(tmp_path, labels, message):
    script_model(tmp_path / "model.pt")
    if labels is not None:
        (tmp_path / "model.labels.txt").write_text(labels)
    with pytest.raises(ModelError, match=message):
        Classifier(str(tmp_path / "model.pt"), device="cpu")


def test_unknown_models_and_non_torchscript_files_are_refused(tmp_path):
    with pytest.raises(ModelError, match="neither 'efficientnet-lite0' nor an existing TorchScript file"):
        Classifier(str(tmp_path / "nope.pt"), device="cpu")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    (tmp_path / "labels.txt").write_text("a\n")
    with pytest.raises(ModelError, match="not a loadable TorchScript model"):
        Classifier(str(tmp_path / "junk.pt"), device="cpu")


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelError, match="unsupported device"):
        resolve_device("mps")
    with pytest.raises(ModelError, match="unknown device"):
        resolve_device("gpu please")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda:1")
