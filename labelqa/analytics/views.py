"""Analytics pages for data scientists and admins: the class × bucket table and its downloads."""

import json

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from labelqa.analytics.exports import labels_csv, labels_jsonl
from labelqa.analytics.forms import ReportParamsForm
from labelqa.analytics.report import report_to_csv
from labelqa.analytics.selectors import report_for_dataset
from labelqa.catalog.models import Consensus, Dataset
from labelqa.permissions import analytics_required


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


@require_GET
@analytics_required
def index(request: HttpRequest) -> HttpResponse:
    datasets = Dataset.objects.all()
    name = request.GET.get("dataset")
    dataset = get_object_or_404(Dataset, name=name) if name else datasets.first()
    form, report = _report(request, dataset) if dataset else (ReportParamsForm(), None)
    return render(
        request,
        "analytics/index.html",
        {"datasets": datasets, "dataset": dataset, "form": form, "report": report, "query": request.GET.urlencode()},
    )


@require_GET
@analytics_required
def report_download(request: HttpRequest, dataset: str, fmt: str) -> HttpResponse:
    if fmt not in ("json", "csv"):
        raise Http404("Reports come as .json or .csv.")
    ds = get_object_or_404(Dataset, name=dataset)
    form, report = _report(request, ds)
    if report is None:
        return HttpResponseBadRequest(json.dumps(form.errors), content_type="application/json")
    if fmt == "json":
        response = HttpResponse(json.dumps(report, indent=2), content_type="application/json")
    else:
        response = HttpResponse(report_to_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{ds.pk}-report.{fmt}"'
    return response


@require_GET
@analytics_required
def labels_download(request: HttpRequest, dataset: str, fmt: str) -> StreamingHttpResponse:
    renderers = {"csv": (labels_csv, "text/csv; charset=utf-8"), "jsonl": (labels_jsonl, "application/x-ndjson")}
    if fmt not in renderers:
        raise Http404("Labels come as .csv or .jsonl.")
    ds = get_object_or_404(Dataset, name=dataset)
    consensus = request.GET.get("consensus") or None
    if consensus is not None and consensus not in Consensus.values:
        return HttpResponseBadRequest(f"consensus must be one of {', '.join(Consensus.values)}")
    render_rows, content_type = renderers[fmt]
    response = StreamingHttpResponse(render_rows(ds, consensus=consensus), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{ds.pk}-labels.{fmt}"'
    return response
