from django.core.management.base import BaseCommand

from labelqa.analytics.exports import labels_csv, labels_jsonl
from labelqa.analytics.management.commands._export import add_common_arguments, dataset_or_error, write_output


class Command(BaseCommand):
    help = "Export one row per image with its label, confidence, review status and vote counts."

    def add_arguments(self, parser):
        add_common_arguments(parser)
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv", help="(default: %(default)s)")

    def handle(self, *args, **options):
        dataset = dataset_or_error(options["dataset"])
        render = labels_csv if options["format"] == "csv" else labels_jsonl
        write_output(self, render(dataset, consensus=options["consensus"]), options["out"])
