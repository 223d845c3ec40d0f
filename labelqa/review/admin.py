from django.contrib import admin
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.urls import reverse

from labelqa.review.models import Batch, Correction, CorrectionPass, GoldItem, Lease, ReviewerExclusion, Vote


class ListOnlyAdmin(admin.ModelAdmin):
    """An admin without add or change forms: these rows are made by the app's own pages, which apply its rules."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def response_delete(self, request, obj_display, obj_id):
        """Back to the list after deleting a row: Django goes there only for those who may change rows, here nobody."""
        response = super().response_delete(request, obj_display, obj_id)
        if response.status_code == 302 and self.has_view_permission(request):
            changelist = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
            context = {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts}
            response["Location"] = add_preserved_filters(context, changelist)
        return response


class ReadOnlyAdmin(ListOnlyAdmin):
    """Listing only: these rows count reviews, and a hand edit or delete would leave counts and tallies wrong."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    """Batches are re-formed from the dataset's admin action; reviews_done counts their submitted leases."""

    list_display = ["id", "dataset", "label", "reviews_done", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["label"]


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ["batch", "reviewer", "created_at", "expires_at", "submitted_at"]
    list_filter = ["reviewer"]
    raw_id_fields = ["batch"]


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    """Votes are never lost; a reviewer's votes are left out of a dataset's tallies on the quality page."""

    list_display = ["prediction", "reviewer", "confirm", "updated_at"]
    list_filter = ["confirm", "reviewer"]
    raw_id_fields = ["prediction", "lease"]


@admin.register(ReviewerExclusion)
class ReviewerExclusionAdmin(ReadOnlyAdmin):
    """Read-only here: excluding goes through the quality page, which also refreshes the tallies."""

    list_display = ["dataset", "reviewer", "created_at", "created_by"]
    list_filter = ["dataset"]


@admin.register(GoldItem)
class GoldItemAdmin(ListOnlyAdmin):
    """Listing and deleting only: marking goes through the gold page, the CSV import or the prediction actions.

    The admin's own form would skip the rule that gold_mark applies: the truth implies the verdict.
    """

    list_display = ["prediction", "truth", "expect_confirm", "created_at", "created_by"]
    list_filter = ["prediction__dataset", "expect_confirm"]
    search_fields = ["prediction__image__path", "truth"]
    raw_id_fields = ["prediction"]


@admin.register(CorrectionPass)
class CorrectionPassAdmin(admin.ModelAdmin):
    list_display = ["dataset", "is_open", "corrections_per_item", "changed_at", "changed_by"]
    readonly_fields = ["changed_by"]

    def save_model(self, request, obj, form, change) -> None:
        obj.changed_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Correction)
class CorrectionAdmin(ListOnlyAdmin):
    """Read-only here: answers come from reviewers, and the corrected label is computed from all of them."""

    list_display = ["prediction", "reviewer", "label", "created_at", "submitted_at"]
    list_filter = ["prediction__dataset", "reviewer"]
    search_fields = ["label"]
