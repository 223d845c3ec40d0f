"""Dataset management for admins, and image serving behind the session for everyone with a role."""

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from labelqa.catalog import selectors, services
from labelqa.catalog.classification import classification_start
from labelqa.catalog.forms import ClassifyForm, PredictionUploadForm
from labelqa.catalog.models import ClassificationRun, Dataset, Image
from labelqa.catalog.rows import RowsRejected
from labelqa.permissions import admin_required, image_viewer_required


@admin_required
def datasets(request: HttpRequest) -> HttpResponse:
    form = PredictionUploadForm(request.POST or None, request.FILES or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            summary = services.predictions_import(
                dataset_name=data["dataset"],
                stream=data["file"],
                images_root=data["images_root"] or None,
                confidence_scale=data["confidence_scale"],
                min_confidence=data["min_confidence"],
                batch_size=data["batch_size"],
                reviews_per_item=data["reviews_per_item"],
            )
        except RowsRejected as exc:
            errors = exc.message().splitlines()
        except ValueError as exc:
            errors = [str(exc)]
        else:
            messages.success(
                request, f"Imported {summary.imported} predictions into {summary.dataset} in {summary.batches} batches."
            )
            return redirect("catalog:datasets")
    listing = Dataset.objects.annotate(
        n_images=Count("predictions", distinct=True),
        n_batches=Count("batches", distinct=True),
        n_done=Count("batches", filter=Q(batches__reviews_done__gte=1), distinct=True),
    )
    context = {
        "form": form,
        "classify_form": ClassifyForm(),
        "datasets": listing,
        "errors": errors,
        "runs": ClassificationRun.objects.select_related("dataset")[:10],
    }
    return render(request, "catalog/datasets.html", context)


@admin_required
def classify(request: HttpRequest) -> HttpResponse:
    """Start a classifier run over a folder or S3 prefix and show its progress page."""
    form = ClassifyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = classification_start(
                dataset_name=data["dataset"],
                source=data["source"],
                model=data["model"] or None,
                batch_size=data["batch_size"],
            )
        except ValueError as exc:
            form.add_error("source", str(exc))
        else:
            return redirect("catalog:run", run.pk)
    return render(request, "catalog/classify.html", {"form": form})


@admin_required
def run(request: HttpRequest, run_id: int) -> HttpResponse:
    found = get_object_or_404(ClassificationRun.objects.select_related("dataset"), pk=run_id)
    return render(request, "catalog/run.html", {"run": found, "progress": selectors.run_progress(found)})


@require_GET
@admin_required
def run_progress(request: HttpRequest, run_id: int) -> JsonResponse:
    found = get_object_or_404(ClassificationRun.objects.select_related("dataset"), pk=run_id)
    return JsonResponse(selectors.run_progress(found))


def _image_response(image_id: int, render) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("dataset"), pk=image_id)
    data, content_type = render(image)
    return HttpResponse(data, content_type=content_type)


@require_GET
@image_viewer_required
@cache_control(private=True, max_age=86400)
def thumbnail(request: HttpRequest, image_id: int) -> HttpResponse:
    return _image_response(image_id, services.image_thumbnail)


@require_GET
@image_viewer_required
@cache_control(private=True, max_age=3600)
def original(request: HttpRequest, image_id: int) -> HttpResponse:
    return _image_response(image_id, services.image_original)
