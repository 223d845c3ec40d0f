import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from labelqa.catalog.classification import RunRefused, classification_start
from labelqa.catalog.management.arguments import positive_int
from labelqa.catalog.models import ClassificationRun
from labelqa.catalog.storage import is_s3


class Command(BaseCommand):
    help = (
        "Run the classifier over a folder or s3://bucket/prefix and import its predictions into a dataset "
        "(on the Celery gpu queue when CELERY_BROKER_URL is set, else in this process)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--images", required=True, help="Directory or s3://bucket/prefix of the images.")
        parser.add_argument(
            "--model",
            help="efficientnet-lite0 or a TorchScript file on this machine with its labels beside it "
            "(default: LABELQA_MODEL, itself efficientnet-lite0 unless set).",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            metavar="N",
            help="Images per forward pass, 1 or more (default: automatic).",
        )
        parser.add_argument("--no-wait", action="store_true", help="Queue the run and return at once.")

    def handle(self, *args, **options):
        source = options["images"]
        if not is_s3(source):  # relative to where the command runs, as import_predictions reads --images-root
            source = str(Path(source).resolve())
        try:
            run = classification_start(
                dataset_name=options["dataset"],
                source=source,
                model=options["model"],
                batch_size=options["batch_size"],
            )
        except RunRefused as exc:
            raise CommandError(f"{exc}; nothing was started")
        if options["no_wait"] and not settings.CELERY_TASK_ALWAYS_EAGER:
            page = reverse("catalog:run", args=[run.pk])
            self.stdout.write(f"Queued run {run.pk} on the gpu queue; its progress: {page}")
            return
        run = self._wait(run.pk)
        if run.status == ClassificationRun.Status.FAILED:
            raise CommandError(f"run {run.pk} failed: {run.error}")
        outcome = [f"{run.classified} classified"]
        if run.flagged:
            outcome.append(f"{run.flagged} flagged as unreadable")
        if run.classified_earlier:
            outcome.append(f"{run.classified_earlier} already done")
        self.stdout.write(f"Run {run.pk} on {run.dataset.name!r}: {', '.join(outcome)}")

    def _wait(self, run_id: int) -> ClassificationRun:
        last = None
        queued_since = time.monotonic()
        while True:
            run = ClassificationRun.objects.select_related("dataset").get(pk=run_id)
            if (run.status, run.done) != last:
                self.stderr.write(f"{run.status}: {run.done}/{run.total}")
                last = (run.status, run.done)
            if run.status in (ClassificationRun.Status.DONE, ClassificationRun.Status.FAILED):
                return run
            if run.status == ClassificationRun.Status.QUEUED and time.monotonic() - queued_since > 30:
                self.stderr.write("still queued: is a worker running? celery -A labelqa worker -Q gpu --concurrency 1")
                queued_since = time.monotonic()
            time.sleep(1)
