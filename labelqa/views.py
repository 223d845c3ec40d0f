from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from labelqa.roles import ANALYTICS_PERM, MANAGE_PERM, REVIEW_PERM


def home(request: HttpRequest) -> HttpResponse:
    """Send each user to the page of their main role."""
    for perm, url in ((MANAGE_PERM, "/datasets/"), (ANALYTICS_PERM, "/analytics/"), (REVIEW_PERM, "/review/")):
        if request.user.has_perm(perm):
            return redirect(url)
    return redirect("/review/")
