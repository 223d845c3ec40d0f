from labelqa.review.management.csv_import import CsvImportCommand
from labelqa.review.services import VotesImported, votes_import


class Command(CsvImportCommand):
    help = "Import votes cast elsewhere from a CSV with header image,reviewer,verdict (confirm|disconfirm)."

    def import_rows(self, *, dataset_name, stream) -> VotesImported:
        return votes_import(dataset_name=dataset_name, stream=stream)

    def describe(self, result: VotesImported, dataset_name: str) -> str:
        return result.describe(dataset_name)
