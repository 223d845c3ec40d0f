"""Review batches, the leases that hand them to reviewers, and the votes reviewers cast."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Batch(models.Model):
    """Up to `dataset.batch_size` predictions that share one model-assigned label, reviewed on one screen."""

    # No index of its own: batch_next leads with it, and every index costs the bulk import.
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="batches", db_index=False)
    label = models.CharField(max_length=200)
    # Submitted leases; only ever changed under this row's lock, so it is exact.
    reviews_done = models.PositiveSmallIntegerField(default=0)
    # Higher is served first; set from the uncertainty of the batch's cells when the dataset asks for it.
    priority = models.FloatField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "batches"
        permissions = [("review_batches", "Lease batches and vote on them")]
        indexes = [models.Index(fields=["dataset", "-priority", "reviews_done", "id"], name="batch_next")]

    def __str__(self) -> str:
        return f"{self.dataset} · {self.label} #{self.pk}"


class Lease(models.Model):
    """One reviewer's claim on one batch, until it expires or is submitted."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="leases")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases")
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A reviewer never gets the same batch twice.
            models.UniqueConstraint(fields=["batch", "reviewer"], name="lease_one_per_reviewer_per_batch")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} on {self.batch}"


class Vote(models.Model):
    prediction = models.ForeignKey("catalog.Prediction", on_delete=models.CASCADE, related_name="votes")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes")
    lease = models.ForeignKey(Lease, null=True, blank=True, on_delete=models.SET_NULL, related_name="votes")
    confirm = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prediction", "reviewer"], name="vote_one_per_reviewer_per_item")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {'confirms' if self.confirm else 'disconfirms'} {self.prediction_id}"


class ReviewerExclusion(models.Model):
    """A reviewer whose votes on a dataset are kept but left out of its tallies and consensus."""

    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="reviewer_exclusions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exclusions")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "reviewer"], name="exclusion_one_per_reviewer_per_dataset")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} excluded from {self.dataset}"


class GoldItem(models.Model):
    """A prediction whose truth an admin knows, mixed into other reviewers' batches to measure them."""

    prediction = models.OneToOneField("catalog.Prediction", on_delete=models.CASCADE, related_name="gold")
    # The true class when the admin named it; blank when they only know the model's label is wrong.
    truth = models.CharField(max_length=200, blank=True)
    # The verdict a reviewer who is right gives: confirm when the model's label is the truth.
    expect_confirm = models.BooleanField()
    # Only votes cast from this moment on are graded: earlier ones may be why the item was picked.
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "gold item"

    def __str__(self) -> str:
        verdict = "confirm" if self.expect_confirm else "disconfirm"
        return f"gold {self.prediction_id}: {verdict}{f' ({self.truth})' if self.truth else ''}"


class LeasedGold(models.Model):
    """A gold item shown on a lease's grid beside the batch's own images."""

    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="gold_items")
    prediction = models.ForeignKey("catalog.Prediction", on_delete=models.CASCADE, related_name="+")
    # Copied from the lease so that the database itself guarantees "never the same gold item twice".
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reviewer", "prediction"], name="gold_once_per_reviewer"),
        ]

    def __str__(self) -> str:
        return f"gold {self.prediction_id} on lease {self.lease_id}"


class CorrectionPass(models.Model):
    """A dataset's optional second task: reviewers name the right class of its disconfirmed images."""

    dataset = models.OneToOneField("catalog.Dataset", on_delete=models.CASCADE, related_name="correction_pass")
    is_open = models.BooleanField(default=True)
    corrections_per_item = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(25)],
        help_text="How many reviewers name each image's class; the most common answer is the corrected label.",
    )
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "correction passes"

    def __str__(self) -> str:
        return f"corrections of {self.dataset} ({'open' if self.is_open else 'closed'})"


class Correction(models.Model):
    """One reviewer's turn at naming a disconfirmed image's class: a lease until submitted, then their answer."""

    prediction = models.ForeignKey("catalog.Prediction", on_delete=models.CASCADE, related_name="corrections")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="corrections")
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    label = models.CharField(
        max_length=200, blank=True, help_text="The class the reviewer named; empty while leased and when they skipped."
    )

    class Meta:
        constraints = [
            # A reviewer never gets the same image twice, not even after skipping it.
            models.UniqueConstraint(fields=["prediction", "reviewer"], name="correction_one_per_reviewer_per_item"),
            models.CheckConstraint(
                condition=models.Q(submitted_at__isnull=False) | models.Q(label=""), name="correction_label_on_submit"
            ),
        ]

    def __str__(self) -> str:
        answer = self.label or ("skipped" if self.submitted_at else "leased")
        return f"{self.reviewer} on {self.prediction_id}: {answer}"
