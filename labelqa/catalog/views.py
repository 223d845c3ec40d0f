"""Dataset management for admins, and image serving behind the session for everyone with a role."""

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from labelqa.catalog import services
from labelqa.catalog.forms import PredictionUploadForm
from labelqa.catalog.models import Dataset, Image
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
    return render(request, "catalog/datasets.html", {"form": form, "datasets": listing, "errors": errors})


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
