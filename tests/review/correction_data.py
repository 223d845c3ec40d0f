"""Votes that make images of the `pets` dataset disconfirmed, for the correction pass's tests."""

import io

from labelqa.catalog.models import Dataset, Prediction
from labelqa.review.services import votes_import


def dog(i: int) -> str:
    """Path of the i-th Dog image of `pets` (confidence 80 + (7 i mod 20))."""
    return f"images/dog-{i:04d}.jpg"


def vote(dataset: Dataset, verdicts: dict[str, str]) -> None:
    """Import votes: per image path a string of c (confirm) and d (disconfirm), one letter per voter."""
    lines = ["image,reviewer,verdict"]
    for path, letters in verdicts.items():
        for n, letter in enumerate(letters):
            lines.append(f"{path},voter{n},{'confirm' if letter == 'c' else 'disconfirm'}")
    votes_import(dataset_name=dataset.name, stream=io.BytesIO(("\n".join(lines) + "\n").encode()))


def disconfirm(dataset: Dataset, paths: list[str]) -> list[int]:
    """Have one voter disconfirm each image; return the prediction ids in the order of `paths`."""
    vote(dataset, {path: "d" for path in paths})
    return [prediction_id(dataset, path) for path in paths]


def prediction_id(dataset: Dataset, path: str) -> int:
    return Prediction.objects.get(dataset=dataset, image__path=path).pk
