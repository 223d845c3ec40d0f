from labelqa.review.management.csv_import import CsvImportCommand
from labelqa.review.services import votes_import


class Command(CsvImportCommand):
    help = "Import votes cast elsewhere from a CSV with header image,reviewer,verdict (confirm|disconfirm)."
    done = "Imported {count} votes into {dataset!r}"

    def import_rows(self, *, dataset_name, stream):
        return votes_import(dataset_name=dataset_name, stream=stream)
