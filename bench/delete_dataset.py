"""Time deleting a dataset of 1,000,000 predictions and 1,000,000 votes, and the admin's confirmation counts.

Loads the same data as bench/report_1m.py into a scratch database (`labelqa_bench_delete`, dropped at the end), then
times `dataset_deletion_counts` (what the admin's confirmation page shows) and `dataset_delete` (a statement per
table along the cascade; its cached files are none here). With --django, first times what Django's admin would do
for the confirmation page instead (`get_deleted_objects`, which loads every row): use it with a small -n, as it
takes minutes at a million. Prints figures and the core count; asserts nothing about time.

    python bench/delete_dataset.py [-n 1000000] [--votes 1000000] [--django]
"""

from __future__ import annotations

import argparse
import os
import time

from _scratch import ScratchDatabase
from report_1m import load_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="predictions (default 1,000,000)")
    parser.add_argument("--votes", type=int, default=1_000_000, help="votes (default 1,000,000)")
    parser.add_argument("--django", action="store_true", help="also time Django's own confirmation listing")
    args = parser.parse_args()

    db = ScratchDatabase("labelqa_bench_delete")
    try:
        load_bench(db, args.n, args.votes)
        db.use_in_this_process()
        from django.contrib.admin import site
        from django.contrib.admin.utils import get_deleted_objects
        from django.contrib.auth.models import User
        from django.test import RequestFactory

        from labelqa.catalog.deletion import dataset_delete, dataset_deletion_counts
        from labelqa.catalog.models import Dataset

        dataset = Dataset.objects.get(name="bench")
        if args.django:
            request = RequestFactory().get("/")
            request.user = User(is_superuser=True, is_active=True)
            start = time.perf_counter()
            get_deleted_objects([dataset], request, site)
            print(f"Django's get_deleted_objects (its confirmation listing): {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        counts = dataset_deletion_counts(dataset)
        took = time.perf_counter() - start
        listed = ", ".join(f"{n:,} {model._meta.verbose_name_plural}" for model, n in counts.items() if n)
        print(f"dataset_deletion_counts (the confirmation page's counts): {took:.2f} s ({listed})")
        start = time.perf_counter()
        deleted = dataset_delete(dataset)
        print(f"dataset_delete, commit included: {time.perf_counter() - start:.2f} s ({deleted:,} rows)")
        print(f"os.cpu_count() = {os.cpu_count()}")
    finally:
        db.close_django_connections()
        db.drop()


if __name__ == "__main__":
    main()
