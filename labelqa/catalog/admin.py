from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.template.defaultfilters import pluralize

from labelqa.catalog.deletion import dataset_busy, dataset_busy_message, dataset_delete, dataset_deletion_counts
from labelqa.catalog.models import ClassificationRun, Dataset, Image, ImportJob, Prediction
from labelqa.catalog.services import batches_reform, images_check_again
from labelqa.catalog.storage import no_local_folder
from labelqa.review.gold import gold_mark


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "batch_size", "reviews_per_item", "consensus", "gold_rate", "images_root", "created_at"]
    search_fields = ["name"]
    actions = ["reform_batches", "check_flagged_images"]

    @admin.action(description="Re-form batches of unreviewed items", permissions=["change"])
    def reform_batches(self, request, queryset):
        for dataset in queryset:
            summary = batches_reform(dataset=dataset)
            self.message_user(request, summary.describe(dataset.name), messages.SUCCESS)

    @admin.action(description="Check flagged images again (after fixing their files)", permissions=["change"])
    def check_flagged_images(self, request, queryset):
        for dataset in queryset:
            self._check_flagged(request, dataset)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if "images_root" not in form.changed_data:
            return
        # A warning, as the import gives: the workers may see a mount this server lacks.
        if obj.images_root and no_local_folder(obj.images_root):
            self.message_user(
                request,
                f"There is no directory {obj.images_root} on this server: its images will be flagged missing "
                "until the workers can read it.",
                messages.WARNING,
            )
        if change:
            self._check_flagged(request, obj)

    # Django's deletion loads every row that cascades, to list it and then to delete it: minutes for a big dataset.
    # The confirmation counts the rows instead, and the deletion is a statement per table (catalog.deletion).
    def get_deleted_objects(self, objs, request):
        summaries, model_count, perms_needed = [], {}, set()
        # Shown as what stands in the way ("protected"): Django then refuses the deletion and says why.
        busy = [dataset_busy_message(dataset) for dataset in objs if dataset_busy(dataset)]
        for dataset in objs:
            counts = {model: n for model, n in dataset_deletion_counts(dataset).items() if n}
            parts = (
                f"{n:,} {model._meta.verbose_name if n == 1 else model._meta.verbose_name_plural}"
                for model, n in counts.items()
            )
            summaries.append(f"{dataset}: {', '.join(parts)}")
            for model, n in counts.items():
                name = model._meta.verbose_name_plural
                model_count[name] = model_count.get(name, 0) + n
                # The permission, not the model's admin: votes may not be deleted one by one (their counts would go
                # wrong), but they go with their dataset, for whoever may delete votes at all.
                if not request.user.has_perm(
                    f"{model._meta.app_label}.{get_permission_codename('delete', model._meta)}"
                ):
                    perms_needed.add(model._meta.verbose_name)
        return summaries, model_count, perms_needed, busy

    def delete_model(self, request, obj) -> None:
        dataset_delete(obj)

    def delete_queryset(self, request, queryset) -> None:
        for dataset in queryset:
            dataset_delete(dataset)

    def _check_flagged(self, request, dataset: Dataset) -> None:
        flagged = images_check_again(dataset=dataset)
        self.message_user(
            request,
            f"Dataset {dataset.name}: {flagged} flagged image{pluralize(flagged)} will be checked again.",
            messages.INFO,
        )


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "dataset_name", "file_name", "status", "rows_validated", "rows_imported", "created_at"]
    list_filter = ["status"]
    search_fields = ["dataset_name", "file_name"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # jobs come from uploads on /datasets/


@admin.register(ClassificationRun)
class ClassificationRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "dataset", "source", "status", "done", "total", "flagged", "created_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ClassificationRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # runs are started on /datasets/ or with manage.py classify


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["path", "dataset", "problem", "unusable"]
    list_filter = ["dataset", "unusable"]
    search_fields = ["path"]
    # Where an image lies is the import's: moved to another dataset it left its prediction and votes behind (and a
    # deletion of that dataset took them along); a new path skipped the root check and kept the old file's thumbnail.
    readonly_fields = ["dataset", "path", "thumbnail", "problem", "unusable"]

    def has_add_permission(self, request) -> bool:
        return False  # images come from imports and classifier runs, with their predictions


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["image", "label", "confidence", "confirms", "disconfirms", "batch"]
    list_filter = ["dataset"]
    search_fields = ["label", "image__path"]
    list_select_related = ["image"]
    # Tallies are kept by the aggregation task from the votes; batches are re-formed by the dataset's action. What the
    # model said is read-only too: moving a prediction would leave it in another label's batch with its votes.
    readonly_fields = ["dataset", "image", "label", "confidence", "confirms", "disconfirms", "tally_stale", "batch"]

    actions = ["mark_gold_correct", "mark_gold_wrong"]

    def has_add_permission(self, request) -> bool:
        return False  # predictions come from imports and classifier runs

    @admin.action(description="Make gold: the model's label is right (reviewers should confirm)")
    def mark_gold_correct(self, request, queryset) -> None:
        self._mark_gold(request, queryset, expect_confirm=True)

    @admin.action(description="Make gold: the model's label is wrong (reviewers should disconfirm)")
    def mark_gold_wrong(self, request, queryset) -> None:
        self._mark_gold(request, queryset, expect_confirm=False)

    def _mark_gold(self, request, queryset, *, expect_confirm: bool) -> None:
        predictions = list(queryset)
        for prediction in predictions:
            # A right label is its own truth; for a wrong one the true class is not known here.
            truth = prediction.label if expect_confirm else ""
            gold_mark(prediction=prediction, expect_confirm=expect_confirm, truth=truth, by=request.user)
        self.message_user(request, f"{len(predictions)} predictions are gold now.", messages.SUCCESS)
