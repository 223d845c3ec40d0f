from django.contrib.admin.apps import AdminConfig


class LabelqaAdminConfig(AdminConfig):
    """django.contrib.admin with the site's login page and 403s (the site's module imports models: loaded later)."""

    default_site = "labelqa.admin_site.LabelqaAdminSite"
