from django.contrib import admin, messages

from labelqa.catalog.models import Dataset, Image, ImportJob, Prediction
from labelqa.catalog.services import batches_reform
from labelqa.review.gold import gold_mark


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "batch_size", "reviews_per_item", "consensus", "gold_rate", "images_root", "created_at"]
    search_fields = ["name"]
    actions = ["reform_batches"]

    @admin.action(description="Re-form batches of unreviewed items", permissions=["change"])
    def reform_batches(self, request, queryset):
        for dataset in queryset:
            summary = batches_reform(dataset=dataset)
            self.message_user(request, summary.describe(dataset.name), messages.SUCCESS)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "dataset_name", "file_name", "status", "rows_validated", "rows_imported", "created_at"]
    list_filter = ["status"]
    search_fields = ["dataset_name", "file_name"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # jobs come from uploads on /datasets/


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["path", "dataset", "problem"]
    list_filter = ["dataset"]
    search_fields = ["path"]
    readonly_fields = ["thumbnail"]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["image", "label", "confidence", "confirms", "disconfirms", "batch"]
    list_filter = ["dataset"]
    search_fields = ["label", "image__path"]
    raw_id_fields = ["image", "batch"]
    list_select_related = ["image"]

    actions = ["mark_gold_correct", "mark_gold_wrong"]

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
