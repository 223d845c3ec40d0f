from django import forms
from django.conf import settings

from labelqa.catalog.rows import CONFIDENCE_SCALES


def upload_within_limit(upload, *, command: str):
    """Return the upload, or refuse it when it is over the upload limit, naming the command for big files."""
    limit = settings.LABELQA_MAX_UPLOAD_BYTES
    if upload.size > limit:
        raise forms.ValidationError(
            f"The file is {upload.size / 2**20:.1f} MiB; the limit is {limit / 2**20:.0f} MiB. "
            f"Import larger files with manage.py {command}."
        )
    return upload


class PredictionUploadForm(forms.Form):
    dataset = forms.CharField(max_length=100, help_text="Created when missing.")
    file = forms.FileField(help_text="CSV: image,label,confidence (headerless, or with a header row).")
    images_root = forms.CharField(
        max_length=1000,
        required=False,
        help_text="Server directory or s3://bucket/prefix the image paths are relative to.",
    )
    confidence_scale = forms.ChoiceField(choices=[(s, s) for s in CONFIDENCE_SCALES], initial="auto")
    min_confidence = forms.FloatField(
        required=False, min_value=0, max_value=100, help_text="Percent; lower rows are skipped."
    )
    batch_size = forms.IntegerField(required=False, min_value=1, max_value=25, initial=25)
    reviews_per_item = forms.IntegerField(required=False, min_value=1, max_value=25, initial=1)

    def clean_file(self):
        return upload_within_limit(self.cleaned_data["file"], command="import_predictions")


class ClassifyForm(forms.Form):
    dataset = forms.CharField(max_length=100, help_text="Created when missing.")
    source = forms.CharField(max_length=1000, help_text="Server directory or s3://bucket/prefix of the images.")
    model = forms.CharField(
        max_length=1000, required=False, help_text="Empty for the default (efficientnet-lite0), or a TorchScript path."
    )
    batch_size = forms.IntegerField(required=False, min_value=1, max_value=4096, help_text="Empty: automatic.")
