"""Reviewer pages: home, leasing the next batch, the batch grid and its submission; the admins' quality page."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from labelqa.catalog.picking import dataset_or_404, dataset_picked, url_with_dataset
from labelqa.parsing import parse_id
from labelqa.permissions import admin_required, reviewer_required
from labelqa.review import corrections, selectors, services
from labelqa.review.gold_selectors import with_gold_accuracy


@reviewer_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "datasets": selectors.datasets_with_work(request.user),
        "corrections": corrections.correction_work(request.user),
    }
    return render(request, "review/home.html", context)


# The queue filter (?dataset=, ?label=) lives in the session, so that the review flow's redirects are the bare
# /review/batch/<id>/ and /review/next/ of the contract: per leased batch, then once for the /review/next/ that
# follows its submit.
BATCH_QUEUES = "review_batch_queues"
QUEUE_AFTER_SUBMIT = "review_queue_after_submit"
REMEMBERED_QUEUES = 20


@reviewer_required
@require_safe
def next_batch(request: HttpRequest) -> HttpResponse:
    """Lease the next batch and redirect to it, or say that the queue is empty.

    Without ?dataset= or ?label=, the filter of the batch just submitted carries on.
    """
    queue = _queue_params(request.GET) or request.session.pop(QUEUE_AFTER_SUBMIT, {})
    dataset = dataset_or_404(queue["dataset"]) if "dataset" in queue else None
    label = queue.get("label")
    lease = services.batch_lease(reviewer=request.user, dataset=dataset, label=label)
    if lease is None:
        waiting = selectors.batches_on_others_grids(request.user, dataset=dataset, label=label, now=timezone.now())
        retry = reverse("review:next") + (f"?{urlencode(queue)}" if queue else "")
        last = selectors.last_submitted_batch(request.user)
        context = {"dataset": dataset, "label": label, "waiting": waiting, "retry": retry, "last_batch": last}
        return render(request, "review/empty.html", context)
    if queue:
        queues = request.session.get(BATCH_QUEUES, {})
        queues[str(lease.batch_id)] = queue
        request.session[BATCH_QUEUES] = dict(list(queues.items())[-REMEMBERED_QUEUES:])
    return redirect("review:batch", lease.batch_id)


@reviewer_required
@require_http_methods(["GET", "HEAD", "POST"])
def batch(request: HttpRequest, batch_id: int) -> HttpResponse:
    found = selectors.batch_for_reviewer(batch_id, request.user)
    if found is None:
        if request.method == "POST":  # a grid left open while its batch went: say so, and carry on
            messages.error(request, services.BATCH_GONE)
            return redirect("review:next")
        raise Http404("No such batch.")
    batch, lease = found
    if request.method == "POST":
        return _submit(request, batch)
    if lease is None:
        messages.info(request, "That batch is not leased to you; here is your next one.")
        return redirect("review:next")
    revising = lease.submitted_at is not None
    # An old tab reloaded: its lease ran out, and the grid is only worth showing if its answers can still count.
    if not revising and lease.expires_at <= timezone.now() and not services.lease_revived(lease=lease):
        messages.info(
            request,
            f"Your time on that {batch.label} batch ran out and other reviewers have it now; here is your next one.",
        )
        return redirect("review:next")
    context = {
        "batch": batch,
        "lease": lease,
        "revising": revising,
        "prefetch_images": selectors.likely_next_images(batch, request.user),
        "items": selectors.batch_items(lease),
    }
    if revising:
        # The grid the reviewer left with "previous batch": where a revise goes back to. Without it the bare
        # /review/next/ would hand back their oldest open grid, perhaps of another dataset.
        context["back_batch_id"] = parse_id(request.GET.get("back", ""))
    else:  # the page shows these only on a first look
        context["previous_batch_id"] = selectors.previous_batch_id(request.user, exclude=batch.pk)
        context["progress"] = selectors.reviewer_progress(request.user, batch.dataset)
        # Seconds, not a time of day: the page counts down on its own clock, whatever the reviewer's clock says.
        context["lease_seconds_left"] = max(int((lease.expires_at - timezone.now()).total_seconds()), 0)
    return render(request, "review/batch.html", context)


def _submit(request: HttpRequest, batch) -> HttpResponse:
    # Values that are no id name no prediction of the batch: they count as unchecked.
    confirmed = {pid for pid in map(parse_id, request.POST.getlist("confirm")) if pid is not None}
    revise = request.POST.get("revise") == "1"
    try:
        result = services.votes_submit(
            reviewer=request.user,
            batch_id=batch.pk,
            token=request.POST.get("lease", ""),
            confirmed_ids=confirmed,
            revise=revise,
        )
    except services.LeaseRefused as exc:
        messages.error(request, str(exc))
    else:
        if revise and result.recorded:
            messages.success(request, f"Your answers for that {batch.label} batch were updated.")
        elif result.repeated:  # a second tab, or a second click: the first answers stand
            messages.warning(
                request,
                f"That {batch.label} batch was already submitted, so the answers sent first were kept and these "
                "were not saved. To change them, open it again with “previous batch”.",
            )
    back = parse_id(request.POST.get("back", "")) if revise else None
    if back is not None:  # the grid the reviewer was on (its batch view sends them on if it is theirs no longer)
        return redirect("review:batch", back)
    queues = request.session.get(BATCH_QUEUES, {})
    if queue := queues.pop(str(batch.pk), None):
        request.session[BATCH_QUEUES] = queues
        request.session[QUEUE_AFTER_SUBMIT] = queue
    return redirect("review:next")


def _queue_params(params) -> dict[str, str]:
    """Keep only the queue filters (dataset, label) of a request."""
    return {key: params[key] for key in ("dataset", "label") if params.get(key)}


@admin_required
@require_safe
def quality(request: HttpRequest) -> HttpResponse:
    """Show each reviewer's workload, speed, agreement and gold accuracy on one dataset, with its Fleiss' kappa."""
    datasets, dataset = dataset_picked(request, request.GET.get("dataset"))
    context = {"datasets": datasets, "dataset": dataset}
    if dataset is not None:
        services.tallies_refresh(dataset_id=dataset.pk)
        context["reviewers"] = with_gold_accuracy(selectors.reviewer_quality(dataset), dataset)
        context["agreement"] = selectors.dataset_agreement(dataset)
    return render(request, "review/quality.html", context)


@admin_required
@require_POST
def exclusion(request: HttpRequest) -> HttpResponse:
    """Exclude a reviewer's votes from a dataset's aggregation, or include them again."""
    dataset = dataset_or_404(request.POST.get("dataset", ""))
    reviewer = get_object_or_404(get_user_model(), pk=parse_id(request.POST.get("reviewer", "")) or 0)
    action = request.POST.get("action")
    if action == "exclude":
        services.reviewer_exclude(dataset=dataset, reviewer=reviewer, by=request.user)
        messages.success(request, f"{reviewer.username}'s votes on {dataset.name} no longer count; they are kept.")
    elif action == "include":
        services.reviewer_include(dataset=dataset, reviewer=reviewer)
        messages.success(request, f"{reviewer.username}'s votes on {dataset.name} count again.")
    else:
        messages.error(request, "Choose Exclude or Include for a reviewer.")
    return redirect(url_with_dataset("review:quality", dataset))
