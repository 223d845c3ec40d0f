import json

from django.core.management.base import BaseCommand, CommandError

from labelqa.analytics.forms import ReportParamsForm
from labelqa.analytics.management.commands._export import add_common_arguments, dataset_or_error, write_output
from labelqa.analytics.report import report_to_csv
from labelqa.analytics.selectors import report_for_dataset


class Command(BaseCommand):
    help = "Export the per-class, per-confidence-bucket accuracy and threshold report as JSON or CSV."

    def add_arguments(self, parser):
        add_common_arguments(parser)
        parser.add_argument("--format", choices=["json", "csv"], default="json")
        parser.add_argument("--edges", default="80,85,90,95,100", help="Bucket edges in percent.")
        parser.add_argument("--max-error-ratio", default="0.1", help="Incorrect per correct allowed.")

    def handle(self, *args, **options):
        dataset = dataset_or_error(options["dataset"])
        form = ReportParamsForm(
            {
                "edges": options["edges"],
                "max_error_ratio": options["max_error_ratio"],
                "consensus": options["consensus"] or "",
            }
        )
        if not form.is_valid():
            problems = "; ".join(f"--{k.replace('_', '-')}: {' '.join(v)}" for k, v in form.errors.items())
            raise CommandError(problems)
        report = report_for_dataset(
            dataset,
            edges=form.cleaned_data["edges"],
            max_error_ratio=form.cleaned_data["max_error_ratio"],
            consensus=form.cleaned_data["consensus"] or None,
        )
        text = json.dumps(report, indent=2) + "\n" if options["format"] == "json" else report_to_csv(report)
        write_output(self, [text], options["out"])
