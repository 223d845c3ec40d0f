from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from labelqa.roles import ANALYTICS_PERM, MANAGE_PERM, REVIEW_PERM


def home(request: HttpRequest) -> HttpResponse:
    """Send each user to the page of their main role."""
    for perm, url in ((MANAGE_PERM, "/datasets/"), (ANALYTICS_PERM, "/analytics/"), (REVIEW_PERM, "/review/")):
        if request.user.has_perm(perm):
            return redirect(url)
    return redirect("/review/")


@login_not_required
def healthz(request: HttpRequest) -> HttpResponse:
    """Answer "ok" without touching the database: for load balancers and as the load benchmark's baseline."""
    return HttpResponse("ok", content_type="text/plain")
