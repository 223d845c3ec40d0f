"""Datasets, their images and the model's prediction for each image."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from labelqa.analytics.correction_agreement import HIDDEN_MARK
from labelqa.catalog.storage import root_problem, root_refusal


class Consensus(models.TextChoices):
    UNANIMOUS = "unanimous", "Unanimous"
    MAJORITY = "majority", "Majority"
    DAWID_SKENE = "dawid-skene", "Dawid–Skene"


# Above this, reviewers would spend more time on known answers than on the dataset.
MAX_GOLD_RATE = 0.5


# A dataset's name is a segment of its pages' URLs (/analytics/<name>/…): no slash, no control character, not . or ..
dataset_name_validator = RegexValidator(
    r"\A(?!\.\.?\Z)[^/\x00-\x1f\x7f]+\Z",
    "A dataset name may not contain a slash or control characters, nor be . or ..",
)


def new_name_problem(name: str) -> str | None:
    """Say why a dataset may not take `name` as a new name, beyond the validator: what typed labels are refused for.

    A name is shown on every page and in every export's file name, where a text-direction mark makes it read as
    something else. Only new names are held to it: a name given before is left as it is.
    """
    if HIDDEN_MARK.search(name):
        return "A new dataset name may not contain C1 control characters or text-direction marks; type it plainly."
    return None


def name_problem_if_new(name: str) -> str | None:
    """`new_name_problem` for a name no dataset has yet; None for an existing dataset's name, kept as it was given."""
    problem = new_name_problem(name)
    return problem if problem is not None and not Dataset.objects.filter(name=name).exists() else None


class Dataset(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[dataset_name_validator])
    images_root = models.CharField(
        max_length=1000, blank=True, help_text="Local directory or s3://bucket/prefix the image paths are relative to."
    )
    batch_size = models.PositiveSmallIntegerField(default=25, validators=[MinValueValidator(1), MaxValueValidator(25)])
    reviews_per_item = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(25)]
    )
    consensus = models.CharField(max_length=20, choices=Consensus.choices, default=Consensus.UNANIMOUS)
    shuffle_seed = models.PositiveIntegerField(default=0, help_text="Seed for shuffling items into batches.")
    prioritise_uncertain = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Serve first the batches whose class and confidence buckets are least certain.",
    )
    gold_rate = models.FloatField(
        default=0,
        db_default=0,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_GOLD_RATE)],
        help_text="Share of each review grid filled with gold items of the batch's label (0.04: about 1 in 25). "
        "A grid holds at most 25 images, so gold fits beside batches smaller than that.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("manage_datasets", "Create datasets, upload predictions and start classifier runs"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Here, so that the admin's form and the services (through full_clean) refuse the same names and roots. What
        # was saved before these checks stays as it is (only the allow-list binds it, as it binds reading).
        saved = Dataset.objects.filter(pk=self.pk).values("name", "images_root").first() if self.pk else None
        if (saved is None or self.name != saved["name"]) and (problem := new_name_problem(self.name)):
            raise ValidationError({"name": problem})
        if self.images_root:
            kept = saved is not None and self.images_root == saved["images_root"]
            if (refusal := (root_refusal if kept else root_problem)(self.images_root)) is not None:
                raise ValidationError({"images_root": refusal})


# The bulk importer recognises a repeated image by this constraint's name.
IMAGE_PATH_UNIQUE = "image_unique_path_per_dataset"


class Image(models.Model):
    # No index of its own: the unique (dataset, path) constraint leads with it, and every index costs the bulk import.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images", db_index=False)
    path = models.CharField(max_length=1000, help_text="Path relative to the dataset's images root.")
    problem = models.CharField(max_length=500, blank=True, help_text="Why the image cannot be shown, if it cannot.")
    unusable = models.BooleanField(
        default=False,
        db_default=False,
        help_text="The file was read and is no image to judge (corrupt, empty, a decompression bomb): grids show it "
        "un-checked and record no vote on it. A file that could not be read is retried instead.",
    )
    thumbnail = models.CharField(max_length=500, blank=True, help_text="Storage key of the cached thumbnail.")
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "path"], name=IMAGE_PATH_UNIQUE)]

    def __str__(self) -> str:
        return self.path


# An image's check undone: a replaced prediction may come with a new file under the same path, so the thumbnail pass
# that follows every import looks at the file again rather than keep showing the old one's thumbnail (or problem).
UNCHECKED_IMAGE = {"thumbnail": "", "problem": "", "unusable": False}


class Prediction(models.Model):
    """The model's label for one image, with the reviewers' tally kept up to date by the aggregation task."""

    # No index of its own: prediction_label_conf leads with it, and every index costs the bulk import.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="predictions", db_index=False)
    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="prediction")
    label = models.CharField(max_length=200)
    confidence = models.FloatField(
        help_text="Percent, 0–100.", validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    model_name = models.CharField(max_length=200, blank=True)
    top_k = models.JSONField(default=list, blank=True, help_text="[[label, confidence], …] when the model gave them.")
    batch = models.ForeignKey(
        "review.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="predictions"
    )
    confirms = models.PositiveIntegerField(default=0)
    disconfirms = models.PositiveIntegerField(default=0)
    tally_stale = models.BooleanField(
        default=False, help_text="Votes changed since confirms/disconfirms were last recomputed."
    )

    class Meta:
        indexes = [
            models.Index(fields=["dataset", "label", "confidence"], name="prediction_label_conf"),
            models.Index(fields=["dataset"], condition=models.Q(tally_stale=True), name="prediction_stale"),
            # The correction pass walks a dataset's disconfirmed images most confident first.
            models.Index(
                fields=["dataset", "-confidence", "id"],
                condition=models.Q(disconfirms__gt=0),
                name="prediction_disconfirmed",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=100), name="prediction_confidence_percent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.confidence:.2f}%)"


class BackgroundJob(models.Model):
    """What classifier runs and import jobs share: a status one worker claims, and when it was queued, began, ended."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class ClassificationRun(BackgroundJob):
    """One run of the classifier over a folder or S3 prefix: a row with a status, claimed by one worker."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="classification_runs")
    source = models.CharField(max_length=1000, help_text="Directory or s3://bucket/prefix of the images.")
    model = models.CharField(max_length=1000)
    batch_size = models.PositiveIntegerField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    flagged = models.PositiveIntegerField(default=0, help_text="Images that could not be classified.")
    classified_earlier = models.PositiveIntegerField(
        default=0, help_text="Images an earlier run had classified: counted in done, not read again."
    )
    flagged_files = models.JSONField(
        default=list, blank=True, help_text="The first flagged files, as `path: why` (the worker's log names all)."
    )
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.dataset} · {self.source} ({self.status})"

    @property
    def classified(self) -> int:
        """Return how many images this run has given a prediction so far."""
        return self.done - self.flagged - self.classified_earlier


class ImportJob(BackgroundJob):
    """One uploaded prediction file waiting for, or going through, the importer: a row with a status and progress.

    The file sits in Django storage under `file_key` until the job ends. Progress counters are written by the worker
    outside the import's transaction, so the job page sees them while the import itself is still uncommitted.
    """

    dataset_name = models.CharField(max_length=100)
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_jobs", help_text="Once done."
    )
    file_name = models.CharField(max_length=255, help_text="The name the file had on the uploader's machine.")
    file_key = models.CharField(max_length=500, blank=True, help_text="Storage key of the upload; emptied when done.")
    file_size = models.PositiveBigIntegerField(default=0)
    options = models.JSONField(default=dict, blank=True, help_text="Keyword arguments for predictions_import.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    bytes_read = models.PositiveBigIntegerField(default=0)
    rows_total = models.PositiveBigIntegerField(null=True, blank=True, help_text="Known once the file is read.")
    rows_validated = models.PositiveBigIntegerField(default=0)
    rows_imported = models.PositiveBigIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first bad lines, as `line N: problem`.")
    error_total = models.PositiveIntegerField(default=0, help_text="How many problems there were in all.")
    error_kinds = models.JSONField(
        default=list, blank=True, help_text="Past the named lines: all the problems by kind, most frequent first."
    )

    def __str__(self) -> str:
        return f"{self.dataset_name} · {self.file_name} ({self.status})"
