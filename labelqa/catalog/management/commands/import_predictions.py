import time
from contextlib import nullcontext
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.template.defaultfilters import pluralize

from labelqa.catalog.management.arguments import model_field_value
from labelqa.catalog.models import Dataset
from labelqa.catalog.rows import (
    CONFIDENCE_SCALES,
    PREDICTION_FORMATS,
    RowsRejected,
    detect_format,
    replace_would_help,
)
from labelqa.catalog.selectors import dataset_images_root
from labelqa.catalog.services import predictions_import
from labelqa.catalog.storage import no_local_folder


class Command(BaseCommand):
    help = (
        "Import a prediction file into a dataset, all or nothing, and form its review batches: a CSV (headerless "
        "image,label,confidence or with a header row), JSON Lines ({image, label, confidence} per line) or a "
        "Ground Truth custom-labeling input file (a JSON array of {s3_image_url, label, confidence})."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv", help="Path of the prediction file.")
        parser.add_argument("--dataset", required=True, help="Dataset name; created when missing.")
        parser.add_argument(
            "--images-root",
            help="Directory or s3://bucket/prefix that image paths are relative to (default: the dataset's root, "
            "or the CSV's directory for a new dataset; for a Ground Truth file, the dataset's s3:// root).",
        )
        parser.add_argument(
            "--confidence-scale",
            choices=CONFIDENCE_SCALES,
            default="auto",
            help="percent: confidences are 0–100; fraction: 0–1, turned into percent; auto (the default): percent "
            "when any confidence in the file exceeds 1 or has a %% sign, else fraction.",
        )
        parser.add_argument("--min-confidence", type=float, metavar="PCT", help="Skip rows below this percent.")
        # Typed by the dataset's own fields, so that argparse names the flag of a value out of range.
        parser.add_argument(
            "--batch-size",
            type=model_field_value(Dataset, "batch_size"),
            metavar="N",
            help="Images per review batch, 1–25 (a new dataset: 25; an existing one keeps its own).",
        )
        parser.add_argument(
            "--reviews-per-item",
            type=model_field_value(Dataset, "reviews_per_item"),
            metavar="N",
            help="Distinct reviewers per batch, 1–25 (a new dataset: 1; an existing one keeps its own).",
        )
        parser.add_argument("--model-name", default="", help="Name of the model that made the predictions.")
        parser.add_argument(
            "--format",
            choices=PREDICTION_FORMATS,
            default="auto",
            help="File format (default: from the first character, [ or {, else the extension).",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Replace the predictions of images already in the dataset that nobody has voted on "
            "(images with votes are still refused).",
        )

    def handle(self, *args, **options):
        path = Path(options["csv"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        file_format = options["format"]
        if file_format == "auto":
            with path.open("rb") as head:
                file_format = detect_format(head.read(4096), path.name)
        images_root = options["images_root"]
        if not images_root and file_format != "gt":
            # More predictions for a dataset read from its root, wherever the file lies. Ground Truth files name
            # s3:// URLs, so only the dataset's own s3 root can make sense of them.
            images_root = dataset_images_root(options["dataset"]) or str(path.resolve().parent)
        if images_root and not images_root.startswith("s3://"):
            images_root = str(Path(images_root).resolve())
            # Not refused: the workers that read the images may have a mount this machine lacks.
            if no_local_folder(images_root):
                self.stderr.write(
                    f"warning: images root {images_root} does not exist here; "
                    "the images will be flagged missing until it does",
                    style_func=self.style.WARNING,
                )
        # A big file takes seconds to minutes: on a terminal, say how far it got (never in logs or pipes).
        progress = _TerminalProgress(self.stderr) if self.stderr.isatty() and options["verbosity"] > 0 else None
        try:
            with path.open("rb") as stream, progress or nullcontext():
                summary = predictions_import(
                    dataset_name=options["dataset"],
                    stream=stream,
                    images_root=images_root,
                    confidence_scale=options["confidence_scale"],
                    min_confidence=options["min_confidence"],
                    batch_size=options["batch_size"],
                    reviews_per_item=options["reviews_per_item"],
                    model_name=options["model_name"],
                    file_format=file_format,
                    file_name=path.name,
                    replace=options["replace"],
                    progress=progress,
                )
        except RowsRejected as exc:
            hint = ""
            if replace_would_help([exc.message()], options["replace"]):
                hint = "\n(pass --replace to replace the predictions of images nobody has voted on yet)"
            raise CommandError(f"{path}: nothing was imported; fix these lines and run again:\n{exc.message()}{hint}")
        except ValueError as exc:
            raise CommandError(f"{path}: nothing was imported: {exc}")
        self.stdout.write(
            f"Imported {summary.imported} prediction{pluralize(summary.imported)} into {summary.dataset!r} "
            f"in {summary.batches} batch{pluralize(summary.batches, 'es')}"
            + (f", replacing {summary.replaced}" if summary.replaced else "")
            + (f" ({summary.skipped_below_min} below --min-confidence skipped)" if summary.skipped_below_min else "")
        )


class _TerminalProgress:
    """Rewrite one line on the terminal with the rows read, then the rows imported, at most five times a second."""

    INTERVAL_SECONDS = 0.2

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.started = time.monotonic()
        self.shown_at = 0.0
        self.latest: tuple[int, int, int | None] | None = None

    def __call__(self, validated: int, imported: int, total: int | None) -> None:
        self.latest = (validated, imported, total)
        if time.monotonic() - self.shown_at >= self.INTERVAL_SECONDS:
            self._show()

    def __enter__(self) -> "_TerminalProgress":
        return self

    def __exit__(self, *exc_info) -> None:
        # The last figures, and the end of the line, so that what the command prints next has a line of its own.
        if self.latest is not None:
            self._show()
            self.out.write("", style_func=_plain)

    def _show(self) -> None:
        validated, imported, total = self.latest
        self.shown_at = time.monotonic()
        text = f"{validated:,} rows read" if total is None else f"{imported:,} of {total:,} rows imported"
        # \r goes back to the start of the line and \033[K clears what a longer earlier text left.
        self.out.write(f"\r{text} ({self.shown_at - self.started:.0f} s)\033[K", style_func=_plain, ending="")
        self.out.flush()


def _plain(text: str) -> str:
    return text  # progress is not an error: not painted red, as Django paints stderr on a terminal
