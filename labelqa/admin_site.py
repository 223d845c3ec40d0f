"""The Django admin answering as the rest of the site does: one login page, and 403 for users who are not staff."""

from functools import update_wrapper

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import URLPattern, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache


class LabelqaAdminSite(admin.AdminSite):
    def admin_view(self, view, cacheable=False):
        """Send anonymous users to the site's login page and refuse signed-in users who are not staff."""
        inner = super().admin_view(view, cacheable)

        def for_staff(request, *args, **kwargs):
            if not self.has_permission(request):
                return self._refused(request, request.get_full_path())
            return inner(request, *args, **kwargs)

        return update_wrapper(for_staff, inner)

    def get_urls(self):
        """The admin's pages, with anonymous users sent to the site's login page by LoginRequiredMiddleware too."""
        urls = super().get_urls()
        for pattern in urls:
            if isinstance(pattern, URLPattern) and hasattr(pattern.callback, "admin_site"):
                pattern.callback.login_url = settings.LOGIN_URL  # the admin sets its own login page here
        return urls

    @method_decorator(never_cache)
    @login_not_required
    def login(self, request, extra_context=None):
        """Never the admin's own login form: staff go to the index, others as from any admin page."""
        if self.has_permission(request):
            return redirect(reverse("admin:index", current_app=self.name))
        return self._refused(request, request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index"))

    @staticmethod
    def _refused(request, next_url: str):
        if request.user.is_authenticated:
            raise PermissionDenied("The admin is for admins (staff).")
        return redirect_to_login(next_url)
