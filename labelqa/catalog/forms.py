from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from labelqa.catalog.imports import IMPORT_OPTIONS
from labelqa.catalog.models import Dataset, dataset_name_validator, name_problem_if_new
from labelqa.catalog.rows import CONFIDENCE_SCALES, PREDICTION_FORMATS
from labelqa.catalog.storage import no_local_folder, root_problem

FORMAT_LABELS = {
    "auto": "Detect from the file",
    "csv": "CSV: seed image,label,confidence (headerless) or with a header row",
    "jsonl": "JSON Lines",
    "gt": "Ground Truth input (JSON array, s3_image_url)",
}
FORMAT_CHOICES = [(name, FORMAT_LABELS[name]) for name in PREDICTION_FORMATS]  # a new format needs its label


def too_large_message(command: str = "import_predictions") -> str:
    limit = settings.LABELQA_MAX_UPLOAD_BYTES
    return (
        f"The file is larger than the upload limit of {filesizeformat(limit)} (LABELQA_MAX_UPLOAD_BYTES). "
        f"Import larger files with manage.py {command}, or ask for a higher limit."
    )


def upload_within_limit(upload, *, command: str):
    """Return the upload, or refuse it when it is over the upload limit, naming the command for big files."""
    if upload.size > settings.LABELQA_MAX_UPLOAD_BYTES:
        raise forms.ValidationError(too_large_message(command))
    return upload


class SizeLimitedUploadForm(forms.Form):
    """A form whose `file` arrives through a SizeLimitedUploadHandler; `command` imports files over the limit.

    `upload_too_large` (the handler's `exceeded`) says the handler dropped the file at the limit, so that the field
    is empty: the form then says why instead of "required". Fields after the file in the request are lost with it.
    """

    command = "import_predictions"

    def __init__(self, *args, upload_too_large: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if upload_too_large:
            required = too_large_message(self.command)
            self.fields["file"].error_messages = {**self.fields["file"].error_messages, "required": required}

    def clean_file(self):
        return upload_within_limit(self.cleaned_data["file"], command=self.command)


class PredictionUploadForm(SizeLimitedUploadForm):
    """The upload on /datasets/: the importer's options, then the file (last, see SizeLimitedUploadForm)."""

    dataset = forms.CharField(max_length=100, validators=[dataset_name_validator], help_text="Created when missing.")
    images_root = forms.CharField(
        max_length=1000,
        required=False,
        help_text="Server directory or s3://bucket/prefix the image paths are relative to. "
        "Needed for a new dataset; empty keeps an existing dataset's.",
    )
    file_format = forms.ChoiceField(label="Format", choices=FORMAT_CHOICES, initial="auto")
    confidence_scale = forms.ChoiceField(
        choices=[(s, s) for s in CONFIDENCE_SCALES],
        initial="auto",
        help_text="auto: percent when any value exceeds 1.",
    )
    min_confidence = forms.FloatField(
        required=False, min_value=0, max_value=100, help_text="Percent; lower rows are skipped."
    )
    # No initial values: a pre-filled field would overwrite an existing dataset's settings on every upload.
    batch_size = forms.IntegerField(
        required=False, min_value=1, max_value=25, help_text="Empty: 25 for a new dataset, else unchanged."
    )
    reviews_per_item = forms.IntegerField(
        required=False, min_value=1, max_value=25, help_text="Empty: 1 for a new dataset, else unchanged."
    )
    replace = forms.BooleanField(
        required=False, help_text="Replace the predictions of images already in the dataset that nobody reviewed."
    )
    # Last, so that the fields before it arrive even when the upload is cut off at the size limit.
    file = forms.FileField(help_text="CSV, JSON Lines or Ground Truth input; one row per image.")

    def clean(self):
        cleaned = super().clean()
        name, root = cleaned.get("dataset"), cleaned.get("images_root")
        if name and (problem := name_problem_if_new(name)):
            self.add_error("dataset", problem)
        if name and not root and not Dataset.objects.filter(name=name).exists():
            self.add_error("images_root", "A new dataset needs the directory or s3:// prefix its images are in.")
        elif root and (refusal := root_problem(root)) is not None:
            self.add_error("images_root", refusal)  # before looking: no answer about directories outside the roots
        elif root and no_local_folder(root):
            self.add_error("images_root", f"There is no directory {root} on the server.")
        return cleaned

    def import_options(self) -> dict:
        """Return the predictions_import keyword arguments these fields set."""
        options = {name: self.cleaned_data[name] for name in IMPORT_OPTIONS}
        return {**options, "images_root": options["images_root"] or None}


class ClassifyForm(forms.Form):
    dataset = forms.CharField(max_length=100, validators=[dataset_name_validator], help_text="Created when missing.")
    source = forms.CharField(max_length=1000, help_text="Server directory or s3://bucket/prefix of the images.")
    model = forms.CharField(
        max_length=1000, required=False, help_text="Empty for the default (efficientnet-lite0), or a TorchScript path."
    )
    batch_size = forms.IntegerField(required=False, min_value=1, max_value=4096, help_text="Empty: automatic.")
