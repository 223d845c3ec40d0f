from django.contrib import admin

from labelqa.catalog.models import Dataset, Image, Prediction


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "batch_size", "reviews_per_item", "consensus", "images_root", "created_at"]
    search_fields = ["name"]


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
