from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labelqa.catalog.rows import RowsRejected
from labelqa.review.gold import gold_import


class Command(BaseCommand):
    help = (
        "Mark images of a dataset as gold items from a CSV with header image,truth (the true label): reviewers "
        "should confirm an image whose truth is the model's label and disconfirm the others. All or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv")
        parser.add_argument("--dataset", required=True)

    def handle(self, *args, **options):
        path = Path(options["csv"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            with path.open("rb") as stream:
                count = gold_import(dataset_name=options["dataset"], stream=stream)
        except RowsRejected as exc:
            raise CommandError(f"{path}: nothing was imported; fix these lines and run again:\n{exc.message()}")
        except ValueError as exc:
            raise CommandError(f"{path}: nothing was imported: {exc}")
        self.stdout.write(f"Marked {count} images of {options['dataset']!r} as gold")
