"""What the review app's CSV-importing commands share: a file and a dataset in, all or nothing."""

from pathlib import Path
from typing import IO

from django.core.management.base import BaseCommand, CommandError

from labelqa.catalog.rows import RowsRejected


class CsvImportCommand(BaseCommand):
    """Import one CSV into a dataset with `import_rows`; a bad file exits non-zero naming its lines."""

    def import_rows(self, *, dataset_name: str, stream: IO[bytes]):
        """Import the file and return what `describe` needs to say what was done."""
        raise NotImplementedError

    def describe(self, result, dataset_name: str) -> str:
        raise NotImplementedError

    def add_arguments(self, parser):
        parser.add_argument("csv")
        parser.add_argument("--dataset", required=True)

    def handle(self, *args, **options):
        path = Path(options["csv"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            with path.open("rb") as stream:
                result = self.import_rows(dataset_name=options["dataset"], stream=stream)
        except RowsRejected as exc:
            raise CommandError(f"{path}: nothing was imported; fix these lines and run again:\n{exc.message()}")
        except ValueError as exc:
            raise CommandError(f"{path}: nothing was imported: {exc}")
        self.stdout.write(self.describe(result, options["dataset"]))
