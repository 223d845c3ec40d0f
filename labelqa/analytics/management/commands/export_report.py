import json

from django.core.management.base import BaseCommand, CommandError

from labelqa.analytics.forms import DEFAULT_EDGES_TEXT, ReportParamsForm
from labelqa.analytics.management.commands._export import add_common_arguments, dataset_or_error, write_output
from labelqa.analytics.report import report_to_csv
from labelqa.analytics.selectors import DEFAULT_MAX_ERROR_RATIO, report_for_dataset


class Command(BaseCommand):
    help = "Export the per-class, per-confidence-bucket accuracy and threshold report as JSON or CSV."

    def add_arguments(self, parser):
        add_common_arguments(parser)
        parser.add_argument("--format", choices=["json", "csv"], default="json", help="(default: %(default)s)")
        parser.add_argument(
            "--edges", default=DEFAULT_EDGES_TEXT, help="Bucket edges in percent (default: %(default)s)."
        )
        parser.add_argument(
            "--max-error-ratio",
            default=f"{DEFAULT_MAX_ERROR_RATIO:g}",
            help="Incorrect per correct allowed above the threshold (default: %(default)s, 1 in 10).",
        )

    def handle(self, *args, **options):
        dataset = dataset_or_error(options["dataset"])
        for flag, example in (("edges", DEFAULT_EDGES_TEXT), ("max_error_ratio", "0.1")):
            # The page reads an empty field as the default; on a command line it is more likely an unset variable.
            if not options[flag].strip():
                raise CommandError(
                    f"--{flag.replace('_', '-')} is empty: give a value such as {example}, or leave the flag out"
                )
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
