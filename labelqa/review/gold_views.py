"""Admin pages for gold items: the list with its CSV upload and rate, and marking single images."""

import math

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from labelqa.catalog.picking import dataset_or_404, dataset_picked, url_with_dataset
from labelqa.catalog.rows import RowsRejected
from labelqa.catalog.uploads import SizeLimitedUploadHandler, size_limited_upload
from labelqa.permissions import admin_required
from labelqa.review.gold import MAX_GRID_IMAGES, gold_import, gold_mark, gold_rate_set, gold_share, gold_unmark
from labelqa.review.gold_forms import REFUSED_TRUTH, GoldMarkForm, GoldRateForm, GoldUploadForm
from labelqa.review.gold_selectors import gold_items

GOLD_SHOWN = 200


@admin_required
@require_http_methods(["GET", "HEAD", "POST"])
@size_limited_upload
def gold(request: HttpRequest, upload_handler: SizeLimitedUploadHandler) -> HttpResponse:
    """List a dataset's gold items with how reviewers did on each; POST imports a CSV image,truth."""
    datasets, dataset = dataset_picked(request, request.POST.get("dataset") or request.GET.get("dataset"))
    upload = GoldUploadForm(request.POST or None, request.FILES or None, upload_too_large=upload_handler.exceeded)
    errors: list[str] = []
    if request.method == "POST" and dataset is not None and upload.is_valid():
        try:
            count = gold_import(dataset_name=dataset.name, stream=upload.cleaned_data["file"], by=request.user)
        except RowsRejected as exc:
            errors = exc.message().splitlines()
        except ValueError as exc:
            errors = [str(exc)]
        else:
            messages.success(request, f"Marked {count} images of {dataset.name} as gold.")
            return redirect(url_with_dataset("review:gold", dataset))
    context = {"datasets": datasets, "dataset": dataset, "upload": upload, "errors": errors}
    if dataset is not None:
        items, total = gold_items(dataset, limit=GOLD_SHOWN)
        context.update(items=items, total=total, rate_form=GoldRateForm(initial={"rate": dataset.gold_rate}))
    return render(request, "review/gold.html", context)


@admin_required
@require_POST
def gold_rate(request: HttpRequest) -> HttpResponse:
    """Set the share of each review grid given to the dataset's gold items."""
    dataset = dataset_or_404(request.POST.get("dataset", ""))
    form = GoldRateForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"The gold rate was not changed: {' '.join(form.errors['rate'])}")
        return redirect(url_with_dataset("review:gold", dataset))
    try:
        gold_rate_set(dataset=dataset, rate=form.cleaned_data["rate"])
    except ValidationError as exc:
        messages.error(request, f"The gold rate was not changed: {' '.join(exc.messages)}")
    else:
        share = gold_share(dataset.batch_size, dataset.gold_rate)
        if not math.isclose(share, dataset.gold_rate):  # the grid's 25 places cap it
            messages.warning(
                request,
                f"The gold rate is {dataset.gold_rate:.0%}, but a grid holds {MAX_GRID_IMAGES} images and "
                f"{dataset.name}'s batches have {dataset.batch_size}: gold fills {share:.0%} of a full batch's grid "
                "(more of a smaller batch's). Import with smaller batches for more.",
            )
        else:
            messages.success(request, f"Gold now fills {dataset.gold_rate:.0%} of each {dataset.name} grid.")
    return redirect(url_with_dataset("review:gold", dataset))


@admin_required
@require_POST
def gold_mark_view(request: HttpRequest) -> HttpResponse:
    """Mark one image as gold (its model label right or wrong) or make it ordinary again; go back where it was."""
    form = GoldMarkForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
        messages.error(request, f"Nothing was marked: {problems}")
        return redirect("review:gold")
    data = form.cleaned_data
    prediction = data["prediction"]
    expect_confirm = GoldMarkForm.ACTIONS[data["action"]]
    if expect_confirm is None:
        gold_unmark(prediction=prediction)
        messages.success(request, f"{prediction.image.path} is no longer a gold item.")
    else:
        try:
            gold_mark(prediction=prediction, expect_confirm=expect_confirm, truth=data["truth"], by=request.user)
        except ValueError as exc:
            messages.error(request, f"Nothing was marked: {exc}.")
            request.session[REFUSED_TRUTH] = {"prediction": prediction.pk, "truth": data["truth"]}
        else:
            verdict = "confirm" if expect_confirm else "disconfirm"
            messages.success(
                request, f"{prediction.image.path} is gold: reviewers should {verdict} {prediction.label}."
            )
    back = data["next"]
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    if back and safe:
        return redirect(back)
    return redirect(url_with_dataset("review:gold", prediction.dataset))
