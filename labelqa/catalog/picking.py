"""The dataset picker that the quality, gold, correction-pass and analytics pages share: `?dataset=<name>`."""

from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse

from labelqa.catalog.models import Dataset

# The session remembers the dataset picked last, so that every page opens on the one being worked on.
LAST_PICKED = "picked_dataset_id"


def dataset_picked(request: HttpRequest, name: str | None) -> tuple[QuerySet, Dataset | None]:
    """Return the datasets to pick from and the one named (404 when there is none).

    Without a name: the one this session picked last, else the first by name.
    """
    datasets = Dataset.objects.order_by("name")
    if name:
        dataset = get_object_or_404(Dataset, name=name)
        request.session[LAST_PICKED] = dataset.pk
        return datasets, dataset
    remembered = request.session.get(LAST_PICKED)
    dataset = datasets.filter(pk=remembered).first() if remembered is not None else None
    return datasets, dataset or datasets.first()


def url_with_dataset(view_name: str, dataset: Dataset | None) -> str:
    """Return the page's URL, picking `dataset` when there is one."""
    url = reverse(view_name)
    return f"{url}?{urlencode({'dataset': dataset.name})}" if dataset is not None else url
