"""The dataset picker that the quality, gold, correction-pass and analytics pages share: `?dataset=<name>`."""

from urllib.parse import urlencode

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse

from labelqa.catalog.models import Dataset


def dataset_picked(name: str | None) -> tuple[QuerySet, Dataset | None]:
    """Return the datasets to pick from and the one named (404 when there is none), or the first without a name."""
    datasets = Dataset.objects.order_by("name")
    return datasets, get_object_or_404(Dataset, name=name) if name else datasets.first()


def url_with_dataset(view_name: str, dataset: Dataset | None) -> str:
    """Return the page's URL, picking `dataset` when there is one."""
    url = reverse(view_name)
    return f"{url}?{urlencode({'dataset': dataset.name})}" if dataset is not None else url
