"""Time the correction pass over 1,000,000 predictions in PostgreSQL: leasing, answering, the page, the home count.

Loads the same scratch dataset as `bench/report_1m.py` (its loader, reused: 1M predictions, 1M votes, so about a
fifth of the images, 205k, end up disconfirmed), opens the dataset's correction pass with two answers per image, and
times `correction_lease` + `correction_submit` as three reviewers take turns, then the correction page's choices,
the home page's work count and the export's agreed corrections. Prints figures only; asserts nothing about time.

    python bench/corrections_1m.py [-n 1000000] [--rounds 60]      (server: BENCH_PG, as for every bench)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _scratch import ScratchDatabase
from report_1m import load_bench


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return (time.perf_counter() - start) * 1000, result


def milliseconds(name: str, values: list[float]) -> None:
    print(f"  {name}: median {statistics.median(values):.1f} ms, max {max(values):.1f} ms over {len(values)} calls")


def run(rounds: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    from labelqa.catalog.models import Dataset, Prediction
    from labelqa.review.corrections import (
        agreed_corrections,
        correction_choices,
        correction_lease,
        correction_submit,
        correction_work,
        corrections_open,
    )

    dataset = Dataset.objects.get(name="bench")
    disconfirmed = Prediction.objects.filter(Q(disconfirms__gt=0, confirms=0), dataset=dataset).count()
    print(f"{Prediction.objects.filter(dataset=dataset).count():,} predictions, {disconfirmed:,} disconfirmed")
    corrections_open(dataset=dataset, corrections_per_item=2)
    reviewers = [get_user_model().objects.create(username=f"bench-corrector-{i}") for i in range(3)]
    leases, submits, choices, work = [], [], [], []
    for turn in range(rounds):
        reviewer = reviewers[turn % len(reviewers)]
        elapsed, lease = timed(correction_lease, reviewer=reviewer, dataset=dataset)
        leases.append(elapsed)
        elapsed, _ = timed(correction_choices, lease.prediction)
        choices.append(elapsed)
        # Both reviewers of an image give the same answer, so the export has agreed labels to find.
        answer = f"class-{lease.prediction_id % 7:02d}"
        elapsed, _ = timed(correction_submit, reviewer=reviewer, token=str(lease.token), label=answer)
        submits.append(elapsed)
        elapsed, _ = timed(correction_work, reviewer)
        work.append(elapsed)
    milliseconds("correction_lease", leases)
    milliseconds("correction_submit", submits)
    milliseconds("correction_choices (page)", choices)
    milliseconds("correction_work (home count, capped)", work)
    elapsed, agreed = timed(agreed_corrections, dataset)
    print(f"  agreed_corrections (export): {elapsed:.1f} ms for {len(agreed)} agreed images")
    print(f"os.cpu_count() = {os.cpu_count()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="predictions (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=60, help="lease + answer turns to time")
    parser.add_argument("--database", default="labelqa_bench_corrections", help="scratch database, dropped at the end")
    args = parser.parse_args()

    db = ScratchDatabase(args.database)
    try:
        load_bench(db, args.n, args.n)
        db.use_in_this_process()
        run(args.rounds)
    finally:
        db.close_django_connections()
        db.drop()


if __name__ == "__main__":
    main()
