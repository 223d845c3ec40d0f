"""Dataset management for admins, and image serving behind the session for everyone with a role."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from labelqa.catalog import selectors, services
from labelqa.catalog.classification import FLAGGED_FILES_LISTED, RunRefused, classification_start
from labelqa.catalog.forms import ClassifyForm, PredictionUploadForm
from labelqa.catalog.imports import import_job_create
from labelqa.catalog.models import ClassificationRun, Dataset, Image, ImportJob
from labelqa.catalog.uploads import SizeLimitedUploadHandler, size_limited_upload
from labelqa.permissions import admin_required, image_viewer_required


@admin_required
@require_http_methods(["GET", "HEAD", "POST"])
@size_limited_upload
def datasets(request: HttpRequest, upload_handler: SizeLimitedUploadHandler) -> HttpResponse:
    """List datasets and take uploads of prediction files."""
    # Own ids: the classify form on the same page has a `dataset` field too.
    form = PredictionUploadForm(
        request.POST or None, request.FILES or None, upload_too_large=upload_handler.exceeded, auto_id="upload_%s"
    )
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        job = import_job_create(
            dataset_name=form.cleaned_data["dataset"],
            upload=upload,
            file_name=upload.name or "upload",
            options=form.import_options(),
            uploaded_by=request.user,
        )
        return redirect("catalog:import_job", job.pk)
    context = {
        "form": form,
        "classify_form": ClassifyForm(),
        "datasets": selectors.datasets_overview(),
        "runs": ClassificationRun.objects.select_related("dataset")[:10],
        "imports": ImportJob.objects.defer("errors", "options")[:10],  # the list shows neither
        "max_upload": settings.LABELQA_MAX_UPLOAD_BYTES,
    }
    return render(request, "catalog/datasets.html", context)


@admin_required
@require_http_methods(["GET", "HEAD", "POST"])
def classify(request: HttpRequest) -> HttpResponse:
    """Start a classifier run over a folder or S3 prefix and show its progress page.

    A GET's query fills the form in (an earlier run's "Run again"): nothing starts before the admin submits it.
    """
    form = ClassifyForm(request.POST or None, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = classification_start(
                dataset_name=data["dataset"],
                source=data["source"],
                model=data["model"] or None,
                batch_size=data["batch_size"],
            )
        except RunRefused as exc:
            form.add_error(exc.field, str(exc))
        else:
            return redirect("catalog:run", run.pk)
    return render(request, "catalog/classify.html", {"form": form})


@admin_required
@require_safe
def run(request: HttpRequest, run_id: int) -> HttpResponse:
    found = get_object_or_404(ClassificationRun.objects.select_related("dataset"), pk=run_id)
    settings_used = {"dataset": found.dataset.name, "source": found.source, "model": found.model}
    if found.batch_size is not None:
        settings_used["batch_size"] = found.batch_size
    context = {
        "run": found,
        "progress": selectors.run_progress(found),
        "flagged_listed": FLAGGED_FILES_LISTED,
        "run_again_query": urlencode(settings_used),
    }
    return render(request, "catalog/run.html", context)


@require_safe
@admin_required
def run_progress(request: HttpRequest, run_id: int) -> JsonResponse:
    found = get_object_or_404(ClassificationRun.objects.select_related("dataset"), pk=run_id)
    return JsonResponse(selectors.run_progress(found))


@admin_required
@require_safe
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("uploaded_by"), pk=job_id)
    context = {
        "job": job,
        "progress": selectors.import_progress(job),
        # A failed import into a new dataset made none: no analytics link that would 404.
        "dataset_exists": Dataset.objects.filter(name=job.dataset_name).exists(),
    }
    return render(request, "catalog/import_job.html", context)


@require_safe
@admin_required
def import_progress(request: HttpRequest, job_id: int) -> JsonResponse:
    return JsonResponse(selectors.import_progress(get_object_or_404(ImportJob, pk=job_id)))


@admin_required
@require_POST
def reform(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """Regroup a dataset's unreviewed, unleased items into full batches."""
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    summary = services.batches_reform(dataset=dataset)
    messages.success(request, summary.describe(dataset.name))
    return redirect("catalog:datasets")


# Placeholders are kept briefly: the file may be fixed and checked again.
PLACEHOLDER_MAX_AGE = 60


def _image_response(image_id: int, render, max_age: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("dataset"), pk=image_id)
    found = render(image)
    response = HttpResponse(found.data, content_type=found.content_type)
    patch_cache_control(response, private=True, max_age=PLACEHOLDER_MAX_AGE if found.placeholder else max_age)
    return response


@require_safe
@image_viewer_required
def thumbnail(request: HttpRequest, image_id: int) -> HttpResponse:
    return _image_response(image_id, services.image_thumbnail, max_age=86400)


@require_safe
@image_viewer_required
def original(request: HttpRequest, image_id: int) -> HttpResponse:
    return _image_response(image_id, services.image_original, max_age=3600)
