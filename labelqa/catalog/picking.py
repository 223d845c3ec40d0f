"""The dataset picker that the quality, gold, correction-pass and analytics pages share: `?dataset=<name>`."""

from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse

from labelqa.catalog.models import Dataset

# The session remembers the dataset picked last, so that every page opens on the one being worked on.
LAST_PICKED = "picked_dataset_id"


def dataset_or_404(name: str) -> Dataset:
    """Return the dataset called `name`; a 404 page that names it when there is none (a bookmark, a deleted one)."""
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        raise Http404(f"There is no dataset named {name!r}: it may have been deleted or renamed.")
    return dataset


def dataset_picked(request: HttpRequest, name: str | None) -> tuple[QuerySet, Dataset | None]:
    """Return the datasets to pick from and the one named (404 when there is none).

    Without a name: the one this session picked last, else the first by name.
    """
    datasets = Dataset.objects.order_by("name")
    if name:
        dataset = dataset_or_404(name)
        request.session[LAST_PICKED] = dataset.pk
        return datasets, dataset
    remembered = request.session.get(LAST_PICKED)
    dataset = datasets.filter(pk=remembered).first() if remembered is not None else None
    return datasets, dataset or datasets.first()


def url_with_dataset(view_name: str, dataset: Dataset | None) -> str:
    """Return the page's URL, picking `dataset` when there is one."""
    url = reverse(view_name)
    return f"{url}?{urlencode({'dataset': dataset.name})}" if dataset is not None else url
