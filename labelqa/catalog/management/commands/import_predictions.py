from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labelqa.catalog.rows import CONFIDENCE_SCALES, RowsRejected
from labelqa.catalog.services import predictions_import


class Command(BaseCommand):
    help = (
        "Import a prediction CSV (headerless image,label,confidence or with a header row) into a dataset, "
        "all or nothing, and form its review batches."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv", help="Path of the prediction file.")
        parser.add_argument("--dataset", required=True, help="Dataset name; created when missing.")
        parser.add_argument(
            "--images-root",
            help="Directory or s3://bucket/prefix that image paths are relative to (default: the CSV's directory).",
        )
        parser.add_argument("--confidence-scale", choices=CONFIDENCE_SCALES, default="auto")
        parser.add_argument("--min-confidence", type=float, metavar="PCT", help="Skip rows below this percent.")
        parser.add_argument("--batch-size", type=int, help="Images per review batch, 1–25 (default 25).")
        parser.add_argument("--reviews-per-item", type=int, help="Distinct reviewers per batch (default 1).")
        parser.add_argument("--model-name", default="", help="Name of the model that made the predictions.")

    def handle(self, *args, **options):
        path = Path(options["csv"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        images_root = options["images_root"] or str(path.resolve().parent)
        if not images_root.startswith("s3://"):
            images_root = str(Path(images_root).resolve())
        try:
            with path.open("rb") as stream:
                summary = predictions_import(
                    dataset_name=options["dataset"],
                    stream=stream,
                    images_root=images_root,
                    confidence_scale=options["confidence_scale"],
                    min_confidence=options["min_confidence"],
                    batch_size=options["batch_size"],
                    reviews_per_item=options["reviews_per_item"],
                    model_name=options["model_name"],
                )
        except RowsRejected as exc:
            raise CommandError(f"{path}: nothing was imported; fix these lines and run again:\n{exc.message()}")
        except ValueError as exc:
            raise CommandError(f"{path}: nothing was imported: {exc}")
        self.stdout.write(
            f"Imported {summary.imported} predictions into {summary.dataset!r} in {summary.batches} batches"
            + (f" ({summary.skipped_below_min} below --min-confidence skipped)" if summary.skipped_below_min else "")
        )
