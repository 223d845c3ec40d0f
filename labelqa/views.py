import sys

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LogoutView
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_safe
from django.views.defaults import server_error as django_server_error

from labelqa.roles import ANALYTICS_PERM, MANAGE_PERM, REVIEW_PERM


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """Send each user to the page of their main role; say so when they have none (a 403 would link back here)."""
    for perm, url in ((MANAGE_PERM, "/datasets/"), (ANALYTICS_PERM, "/analytics/"), (REVIEW_PERM, "/review/")):
        if request.user.has_perm(perm):
            return redirect(url)
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "no_role.html")


@login_not_required
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Answer "ok" without touching the database: for load balancers and as the load benchmark's baseline."""
    return HttpResponse("ok", content_type="text/plain")


def server_error(request: HttpRequest) -> HttpResponse:
    """Answer an unhandled error; a lost database connection gets a 503 page that says to retry.

    Django calls this while the exception is being handled, so `sys.exc_info()` names it. The page renders
    without a context (no user, no session) because the database it would need may be the thing that failed.
    Django closes the broken connection at the end of the request (CONN_HEALTH_CHECKS), so the next one reconnects.
    """
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
        response["Retry-After"] = "5"
        return response
    return django_server_error(request)


@method_decorator(login_not_required, name="dispatch")
class SignOutView(LogoutView):
    """Sign out on POST, as Django's view does; a GET asks first, or sends whoever is signed out to the sign-in page.

    Django answers a GET with 405: a bookmarked or typed address, or the sign-in page returning to it, ended there.
    """

    http_method_names = ["get", "head", "post", "options"]

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(settings.LOGIN_URL)
        return render(request, "registration/sign_out.html")
