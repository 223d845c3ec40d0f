from django.contrib.admin.apps import AdminConfig


class LabelqaAdminConfig(AdminConfig):
    """django.contrib.admin with the site's login page and 403s (the site's module imports models: loaded later)."""

    default_site = "labelqa.admin_site.LabelqaAdminSite"

    def ready(self):
        super().ready()  # autodiscovers, registering Django's own user and group pages
        from django.contrib import admin

        from labelqa.accounts_admin import register

        register(admin.site)
