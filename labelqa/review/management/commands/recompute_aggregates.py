from django.core.management.base import BaseCommand, CommandError

from labelqa.catalog.models import Dataset
from labelqa.review.services import tallies_recompute


class Command(BaseCommand):
    help = "Recompute every image's confirm/disconfirm tallies from its votes, now (all datasets, or one)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", metavar="NAME", help="only this dataset (default: every dataset)")

    def handle(self, *args, **options):
        datasets = Dataset.objects.order_by("name")
        if name := options["dataset"]:
            datasets = datasets.filter(name=name)
            if not datasets.exists():
                raise CommandError(f"no dataset named {name!r}; see the dataset list at /datasets/")
        total = 0
        for dataset in datasets:
            count = tallies_recompute(dataset=dataset)
            total += count
            self.stdout.write(f"{dataset.name}: recomputed {count} images")
        self.stdout.write(f"Recomputed {total} images in {len(datasets)} dataset(s)")
