"""Correction pass pages: reviewers name the right class of disconfirmed images; admins open and follow the pass."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_http_methods

from labelqa.catalog.picking import dataset_or_404, dataset_picked, url_with_dataset
from labelqa.permissions import admin_required, reviewer_required
from labelqa.review import corrections
from labelqa.review.correction_forms import CorrectionPassForm
from labelqa.review.services import LeaseRefused


@reviewer_required
@require_http_methods(["GET", "HEAD", "POST"])
def correct(request: HttpRequest) -> HttpResponse:
    """Show the next disconfirmed image to name (leasing it), or record the answer and go on to the next one."""
    params = request.POST if request.method == "POST" else request.GET
    name = params.get("dataset") or ""
    dataset = dataset_or_404(name) if name else None
    refused = None
    if request.method == "POST":
        refused = _answer(request)
        if refused is None:
            return redirect(url_with_dataset("review:correct", dataset))
        # A refused answer shows the same image again with the text as typed, to mend: its own lease, renewed.
        correction = corrections.correction_renewed(reviewer=request.user, token=request.POST.get("lease", ""))
        if correction is None:  # others have taken the image meanwhile: the text would mean nothing on another
            messages.error(request, str(refused))
            return redirect(url_with_dataset("review:correct", dataset))
    else:
        correction = corrections.correction_lease(reviewer=request.user, dataset=dataset)
    if correction is None:
        return render(request, "review/correct_empty.html", {"dataset": dataset})
    prediction = correction.prediction
    context = {
        "correction": correction,
        "prediction": prediction,
        "image": prediction.image,
        "dataset": prediction.dataset,
        "queue_dataset": name,
        "refused": refused,
        # The text comes back to mend only when the refusal was about it; with nothing chosen the keys must keep
        # working, and a focused text field would take "S" as a label.
        "refused_text": request.POST.get("other", "").strip() if refused else "",
        **corrections.correction_choices(prediction),
    }
    return render(request, "review/correct.html", context)


def _answer(request: HttpRequest) -> corrections.CorrectionRejected | None:
    """Record the posted answer; return why it was refused when the reviewer must change it."""
    # A typed label wins over a picked one: typing is the more deliberate act, and without JavaScript
    # a number-key pick cannot clear the text field.
    label = request.POST.get("other", "").strip() or request.POST.get("choice", "")
    skip = request.POST.get("skip") == "1"
    try:
        result = corrections.correction_submit(
            reviewer=request.user, token=request.POST.get("lease", ""), label=label, skip=skip
        )
    except corrections.CorrectionRejected as exc:
        return exc
    except LeaseRefused as exc:
        messages.error(request, str(exc))
        return None
    if result.recorded:
        messages.success(request, f"Saved “{result.label}”." if result.label else "Skipped: another reviewer gets it.")
    return None


@admin_required
@require_http_methods(["GET", "HEAD", "POST"])
def correction_pass(request: HttpRequest) -> HttpResponse:
    """Open or close a dataset's correction pass, and show how far it got with the latest answers."""
    if request.method == "POST":
        return _switch(request)
    datasets, dataset = dataset_picked(request, request.GET.get("dataset"))
    context = {"datasets": datasets, "dataset": dataset}
    if dataset is not None:
        context["overview"] = corrections.correction_overview(dataset)
        context["form"] = CorrectionPassForm(
            initial={"corrections_per_item": getattr(context["overview"]["pass"], "corrections_per_item", 1)}
        )
    return render(request, "review/correction_pass.html", context)


def _switch(request: HttpRequest) -> HttpResponse:
    form = CorrectionPassForm(request.POST)
    dataset = dataset_or_404(request.POST.get("dataset", ""))
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        messages.error(request, f"Nothing changed. {problems}")
        return redirect(url_with_dataset("review:correction_pass", dataset))
    data = form.cleaned_data
    if data["action"] == "open":
        try:
            opened = corrections.corrections_open(
                dataset=dataset, corrections_per_item=data["corrections_per_item"], by=request.user
            )
        except ValueError as exc:
            messages.error(request, f"Nothing changed: {exc}")
        else:
            answers = f"{opened.corrections_per_item} answer{pluralize(opened.corrections_per_item)}"
            messages.success(
                request, f"Reviewers now name the right class of {dataset.name}'s disconfirmed images ({answers} each)."
            )
    elif corrections.corrections_close(dataset=dataset, by=request.user):
        messages.success(request, f"The correction pass of {dataset.name} is closed; its answers are kept.")
    else:
        messages.info(request, f"The correction pass of {dataset.name} was not open.")
    return redirect(url_with_dataset("review:correction_pass", dataset))
