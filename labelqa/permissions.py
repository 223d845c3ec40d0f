"""Role checks for views: anonymous users never get here (LoginRequiredMiddleware); wrong roles get 403."""

from django.contrib.auth.decorators import user_passes_test
from django.core.exceptions import PermissionDenied

from labelqa.roles import ANALYTICS_PERM, MANAGE_PERM, REVIEW_PERM


def role_required(*perms: str):
    """Allow users holding any of `perms` (superusers hold all); refuse the rest with 403."""

    def check(user):
        if any(user.has_perm(p) for p in perms):
            return True
        raise PermissionDenied

    return user_passes_test(check)


reviewer_required = role_required(REVIEW_PERM)
analytics_required = role_required(ANALYTICS_PERM)
admin_required = role_required(MANAGE_PERM)
# Images show in the review grid and in analytics' strips of disconfirmed images.
image_viewer_required = role_required(REVIEW_PERM, ANALYTICS_PERM, MANAGE_PERM)
