from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labelqa.catalog.rows import RowsRejected
from labelqa.review.services import votes_import


class Command(BaseCommand):
    help = "Import votes cast elsewhere from a CSV with header image,reviewer,verdict (confirm|disconfirm)."

    def add_arguments(self, parser):
        parser.add_argument("csv")
        parser.add_argument("--dataset", required=True)

    def handle(self, *args, **options):
        path = Path(options["csv"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            with path.open("rb") as stream:
                count = votes_import(dataset_name=options["dataset"], stream=stream)
        except RowsRejected as exc:
            raise CommandError(f"{path}: nothing was imported; fix these lines and run again:\n{exc.message()}")
        except ValueError as exc:
            raise CommandError(f"{path}: nothing was imported: {exc}")
        self.stdout.write(f"Imported {count} votes into {options['dataset']!r}")
