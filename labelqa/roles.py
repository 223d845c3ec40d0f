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


def sync_role_groups(group_model, permission_model) -> None:
    """Create the role groups and give each its permissions; safe to run again."""
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
        group.permissions.set(perms)


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
