from django.template.defaultfilters import pluralize

from labelqa.review.gold import gold_import
from labelqa.review.management.csv_import import CsvImportCommand


class Command(CsvImportCommand):
    help = (
        "Mark images of a dataset as gold items from a CSV with header image,truth (the true label): reviewers "
        "should confirm an image whose truth is the model's label and disconfirm the others. All or nothing."
    )

    def import_rows(self, *, dataset_name, stream) -> int:
        return gold_import(dataset_name=dataset_name, stream=stream)

    def describe(self, result: int, dataset_name: str) -> str:
        return f"Marked {result} image{pluralize(result)} of {dataset_name!r} as gold"
