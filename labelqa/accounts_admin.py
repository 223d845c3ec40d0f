"""The admin's user and group pages, where only superusers can hand out superuser status or raw permissions.

Admins (the role) manage accounts and their role groups; without this, Django's stock pages would let them tick
"Superuser status", give any permission to a user or group, or edit a superuser, and so become one.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

SUPERUSER_ONLY_USER_FIELDS = ("is_superuser", "user_permissions")


class AccountAdmin(UserAdmin):
    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, *SUPERUSER_ONLY_USER_FIELDS)

    def has_change_permission(self, request, obj=None):
        return _leaves_superusers_alone(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _leaves_superusers_alone(request, obj) and super().has_delete_permission(request, obj)


class RoleGroupAdmin(GroupAdmin):
    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, "permissions")


def _leaves_superusers_alone(request, obj) -> bool:
    return obj is None or request.user.is_superuser or not obj.is_superuser


def register(site: admin.AdminSite) -> None:
    for model, model_admin in ((User, AccountAdmin), (Group, RoleGroupAdmin)):
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, model_admin)
