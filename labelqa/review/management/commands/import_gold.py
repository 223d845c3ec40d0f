from labelqa.review.gold import gold_import
from labelqa.review.management.csv_import import CsvImportCommand


class Command(CsvImportCommand):
    help = (
        "Mark images of a dataset as gold items from a CSV with header image,truth (the true label): reviewers "
        "should confirm an image whose truth is the model's label and disconfirm the others. All or nothing."
    )
    done = "Marked {count} images of {dataset!r} as gold"

    def import_rows(self, *, dataset_name, stream):
        return gold_import(dataset_name=dataset_name, stream=stream)
