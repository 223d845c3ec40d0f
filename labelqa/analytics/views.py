"""Analytics pages for data scientists and admins: the class × bucket table, class pages, charts, downloads."""

import json
from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST, require_safe

from labelqa.analytics import charts
from labelqa.analytics.exports import labels_csv, labels_jsonl
from labelqa.analytics.forms import CalibrationParamsForm, ReportParamsForm
from labelqa.analytics.report import report_to_csv
from labelqa.analytics.selectors import (
    calibration_for_dataset,
    class_detail,
    disconfirmed_predictions,
    predictions_outside_edges,
    report_for_dataset,
)
from labelqa.analytics.services import prioritisation_set
from labelqa.analytics.stats import REVIEW_MARGIN, bucket_reviews_needed
from labelqa.catalog.models import Consensus, Dataset
from labelqa.catalog.picking import dataset_or_404, dataset_picked
from labelqa.parsing import parse_id
from labelqa.permissions import analytics_required
from labelqa.review.gold_forms import REFUSED_TRUTH
from labelqa.review.services import tallies_refresh


def _report(request: HttpRequest, dataset: Dataset) -> tuple[ReportParamsForm, dict | None]:
    """Return the parameter form bound to the query string and the report (None when the form is invalid)."""
    form = ReportParamsForm(request.GET)
    if not form.is_valid():
        return form, None
    params = form.cleaned_data
    report = report_for_dataset(
        dataset, edges=params["edges"], max_error_ratio=params["max_error_ratio"], consensus=params["consensus"] or None
    )
    return form, report


@require_safe
@analytics_required
def index(request: HttpRequest) -> HttpResponse:
    datasets, dataset = dataset_picked(request, request.GET.get("dataset"))
    # Recounted before the report: a count here means the background aggregation is behind (no worker, or the
    # broker is down) and what it derives, such as batch priorities, may lag.
    stale_tallies = tallies_refresh(dataset_id=dataset.pk) if dataset else 0
    form, report = _report(request, dataset) if dataset else (ReportParamsForm(), None)
    context = {"datasets": datasets, "dataset": dataset, "form": form, "report": report, "stale_tallies": stale_tallies}
    if report is not None:
        # The report's order breaks ties, here and in the page's script (data-report-order).
        entries = [{**_with_review_needs(c), "report_order": i} for i, c in enumerate(report["classes"])]
        classes = sorted_classes(entries, *_sort_param(request))
        context.update(
            classes=classes,
            totals_row=_with_review_needs(report["totals"]),
            **_sort_heads(request, report),
            calibration=calibration_for_dataset(dataset, consensus=report["consensus"]),
            outside_edges=predictions_outside_edges(dataset, report["edges"]),
        )
    context.update(
        query=request.GET.urlencode(), params=_params_query(request), margin_points=round(100 * REVIEW_MARGIN)
    )
    return render(request, "analytics/index.html", context)


@require_safe
@analytics_required
def class_page(request: HttpRequest, dataset: str, label: str) -> HttpResponse:
    ds = dataset_or_404(dataset)
    form = ReportParamsForm(request.GET)
    detail = None
    if form.is_valid():
        detail = _class_detail(ds, label, form.cleaned_data)
        detail["entry"] = _with_review_needs(detail["entry"])
    disconfirmed = disconfirmed_predictions(ds, label, consensus=form.cleaned_data.get("consensus") or None)
    return render(
        request,
        "analytics/class.html",
        {
            "dataset": ds,
            "label": label,
            "form": form,
            "detail": detail,
            "disconfirmed": disconfirmed[:DISCONFIRMED_SHOWN],
            "disconfirmed_count": disconfirmed.count(),
            "refused_truth": request.session.pop(REFUSED_TRUTH, None),
            "margin_points": round(100 * REVIEW_MARGIN),
            "params": _params_query(request),
        },
    )


@require_safe
@analytics_required
def calibration_png(request: HttpRequest, dataset: str) -> HttpResponse:
    ds = dataset_or_404(dataset)
    form = CalibrationParamsForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(json.dumps(form.errors), content_type="application/json")
    params = form.cleaned_data
    label = params["label"]
    table = calibration_for_dataset(ds, label=label, consensus=params["consensus"] or None, n_bins=params["bins"])
    title = f"{ds.name} · {label or 'all classes'} · {table['consensus']}"
    png = charts.reliability_png(table, title=title)
    return _png_response(png, f"{ds.name}-calibration-{label or 'all'}.png", download=params["download"])


@require_safe
@analytics_required
def threshold_png(request: HttpRequest, dataset: str) -> HttpResponse:
    ds = dataset_or_404(dataset)
    form = ReportParamsForm(request.GET)
    label = request.GET.get("label")
    if not label:
        return HttpResponseBadRequest("Name the class: ?label=<label>.")
    if not form.is_valid():
        return HttpResponseBadRequest(json.dumps(form.errors), content_type="application/json")
    detail = _class_detail(ds, label, form.cleaned_data)
    certified = detail["entry"]["certified"]
    png = charts.threshold_curve_png(
        detail["curve"],
        title=f"{ds.name} · {label} · {detail['consensus']}",
        target_error=certified["target_error"],
        certified=certified["threshold"],
    )
    return _png_response(png, f"{ds.name}-threshold-{label}.png", download=bool(request.GET.get("download")))


@require_safe
@analytics_required
def report_download(request: HttpRequest, dataset: str, fmt: str) -> HttpResponse:
    if fmt not in ("json", "csv"):
        raise Http404("Reports come as .json or .csv.")
    ds = dataset_or_404(dataset)
    form, report = _report(request, ds)
    if report is None:
        return HttpResponseBadRequest(json.dumps(form.errors), content_type="application/json")
    if fmt == "json":
        response = HttpResponse(json.dumps(report, indent=2), content_type="application/json")
    else:
        response = HttpResponse(report_to_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"{ds.name}-report.{fmt}")
    return response


@require_safe
@analytics_required
def labels_download(request: HttpRequest, dataset: str, fmt: str) -> StreamingHttpResponse:
    renderers = {"csv": (labels_csv, "text/csv; charset=utf-8"), "jsonl": (labels_jsonl, "application/x-ndjson")}
    if fmt not in renderers:
        raise Http404("Labels come as .csv or .jsonl.")
    ds = dataset_or_404(dataset)
    consensus = request.GET.get("consensus") or None
    if consensus is not None and consensus not in Consensus.values:
        return HttpResponseBadRequest(f"consensus must be one of {', '.join(Consensus.values)}")
    render_rows, content_type = renderers[fmt]
    response = StreamingHttpResponse(render_rows(ds, consensus=consensus), content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, f"{ds.name}-labels.{fmt}")
    return response


DISCONFIRMED_SHOWN = 48
SORT_KEYS: dict[str, Callable[[dict], object]] = {
    # Case-insensitive, as the page's script sorts: a reload must not reorder the table.
    "label": lambda c: (c["label"].lower(), c["label"]),
    "total": lambda c: c["total"],
    "confirmed": lambda c: c["confirmed"],
    "disconfirmed": lambda c: c["disconfirmed"],
    "split": lambda c: c["split"],
    "accuracy": lambda c: c["accuracy"],
    # A withheld class has no threshold at all: it sorts above every number.
    "threshold": lambda c: float("inf") if c["withhold"] else c["threshold"],
    "certified": lambda c: (c.get("certified") or {}).get("threshold"),
}


def sorted_classes(classes: list[dict], key: str, descending: bool) -> list[dict]:
    """Return the class entries ordered by a column of the table; entries without a value go last."""
    value_of = _sort_value(key)
    present = [c for c in classes if value_of(c) is not None]
    missing = [c for c in classes if value_of(c) is None]
    return sorted(present, key=value_of, reverse=descending) + missing


def _sort_value(key: str) -> Callable[[dict], object]:
    """Return the function reading column `key` ("b2" is the accuracy of bucket 2); unknown keys sort by label."""
    if key.startswith("b") and (index := parse_id(key[1:])) is not None:

        def bucket_accuracy(entry: dict) -> float | None:
            buckets = entry["buckets"]
            return buckets[index]["accuracy"] if index < len(buckets) else None

        return bucket_accuracy
    return SORT_KEYS.get(key, SORT_KEYS["label"])


def _sort_param(request: HttpRequest) -> tuple[str, bool]:
    return request.GET.get("sort", "label"), request.GET.get("dir") == "desc"


def _sort_heads(request: HttpRequest, report: dict) -> dict[str, object]:
    """Return the table's sortable headings: per column its key, the link that sorts by it and its aria-sort.

    Names sort A to Z first and numbers largest first; the current column's link reverses it.
    """
    sort, descending = _sort_param(request)
    n_buckets = len(report["edges"]) - 1
    heads = {}
    for key in [*SORT_KEYS, *(f"b{i}" for i in range(n_buckets))]:
        query = request.GET.copy()
        query["sort"] = key
        query["dir"] = "asc" if key == "label" else "desc"
        aria = ""
        if key == sort:
            query["dir"] = "asc" if descending else "desc"
            aria = "descending" if descending else "ascending"
        heads[key] = {"key": key, "href": "?" + query.urlencode(), "aria": aria}
    return {"heads": heads, "bucket_heads": [heads[f"b{i}"] for i in range(n_buckets)]}


def _params_query(request: HttpRequest) -> str:
    """Return the report parameters of the query string, without the table's sort."""
    query = request.GET.copy()
    for name in ("sort", "dir"):
        query.pop(name, None)
    return query.urlencode()


def _with_review_needs(entry: dict) -> dict:
    """Return a copy of a class entry whose buckets also say how many more reviews reach +/- 5 points."""
    buckets = [
        {**b, "reviews_needed": bucket_reviews_needed(b), "unreviewed": b["total"] - b["reviewed"]}
        for b in entry["buckets"]
    ]
    return {**entry, "buckets": buckets}


def _class_detail(dataset: Dataset, label: str, params: dict) -> dict:
    detail = class_detail(
        dataset,
        label,
        edges=params["edges"],
        max_error_ratio=params["max_error_ratio"],
        consensus=params["consensus"] or None,
    )
    if detail is None:
        raise Http404(f"No predictions labelled {label!r} in {dataset.name} within the bucket edges.")
    return detail


def _png_response(png: bytes, filename: str, *, download: bool) -> HttpResponse:
    response = HttpResponse(png, content_type="image/png")
    response["Content-Disposition"] = content_disposition_header(download, filename)
    return response


@analytics_required
@require_POST
def prioritise(request: HttpRequest, dataset: str) -> HttpResponse:
    """Switch "prioritise uncertain buckets" for a dataset; reviewers then get the least certain batches first."""
    ds = dataset_or_404(dataset)
    enabled = request.POST.get("enabled") == "1"
    prioritisation_set(dataset=ds, enabled=enabled)
    state = "now get the least certain batches first" if enabled else "get batches in order again"
    messages.success(request, f"Reviewers of {ds.name} {state}.")
    # Back to the report as it was shown (its edges, consensus and sort ride on the form's address).
    report = request.GET.copy()
    report["dataset"] = ds.name
    return redirect(f"{reverse('analytics:index')}?{report.urlencode()}")
