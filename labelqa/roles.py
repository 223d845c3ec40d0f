"""The three roles, as Django groups with permissions (DESIGN.md, "Who uses it")."""

from django.contrib.auth.models import Group, Permission

REVIEWER = "reviewer"
ADMIN = "admin"
SCIENTIST = "scientist"
ROLES = (REVIEWER, ADMIN, SCIENTIST)

REVIEW_PERM = "review.review_batches"
ANALYTICS_PERM = "analytics.view_analytics"
MANAGE_PERM = "catalog.manage_datasets"

# Admins manage everything of ours and the accounts in the Django admin.
ADMIN_APPS = ("catalog", "review", "analytics")
ADMIN_AUTH_MODELS = ("user", "group")
ROLE_PERMISSIONS = {
    REVIEWER: (REVIEW_PERM,),
    SCIENTIST: (ANALYTICS_PERM,),
}


def sync_role_groups(group_model, permission_model, *, replace: bool = True) -> None:
    """Create the role groups and give each its permissions; safe to run again.

    With `replace` false, permissions are only added: any an administrator gave a group by hand stay.
    """
    for role in ROLES:
        group, _ = group_model.objects.get_or_create(name=role)
        if role == ADMIN:
            perms = permission_model.objects.filter(content_type__app_label__in=ADMIN_APPS) | (
                permission_model.objects.filter(
                    content_type__app_label="auth", content_type__model__in=ADMIN_AUTH_MODELS
                )
            )
        else:
            perms = permission_model.objects.none()
            for app_label, codename in (p.split(".") for p in ROLE_PERMISSIONS[role]):
                perms |= permission_model.objects.filter(content_type__app_label=app_label, codename=codename)
        if replace:
            group.permissions.set(perms)
        else:
            group.permissions.add(*perms)


def sync_role_groups_after_migrate(sender, apps=None, **kwargs) -> None:
    """post_migrate receiver: give the role groups the permissions of models added after their data migration.

    Django creates a model's permissions in post_migrate, after the migrations, so the groups that
    catalog's 0003 migration built lack every model added later (admins got 403 on those admin pages).
    Each of our apps' post_migrate comes after auth has created that app's permissions.
    """
    if sender.label not in ADMIN_APPS:
        return
    if apps is None:  # flush (between transactional tests) sends post_migrate without apps
        from django.apps import apps
    sync_role_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), replace=False)


def grant_role(user, role: str) -> None:
    """Add `user` to the role's group; admins also get into the Django admin."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    group = Group.objects.filter(name=role).first()
    if group is None:  # the data migration made them; a flushed database (tests, manual cleanup) has lost them
        sync_role_groups(Group, Permission)
        group = Group.objects.get(name=role)
    user.groups.add(group)
    if role == ADMIN and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


def role_flags(request) -> dict:
    """Template context: what the signed-in user may open, for the navigation bar."""
    user = request.user
    return {
        "can_review": user.has_perm(REVIEW_PERM),
        "can_analyse": user.has_perm(ANALYTICS_PERM),
        "can_manage": user.has_perm(MANAGE_PERM),
    }
