from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from labelqa import views
from labelqa.accounts_forms import SignInForm

# A lost database connection answers 503 "try again" instead of the generic 500 page.
handler500 = "labelqa.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz/", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=SignInForm), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("datasets/", include("labelqa.catalog.urls")),
    path("review/", include("labelqa.review.urls")),
    path("analytics/", include("labelqa.analytics.urls")),
    path("favicon.ico", RedirectView.as_view(url="/static/favicon.svg", permanent=True)),
]
