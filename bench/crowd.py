"""Simulated crowd: how often each consensus policy is wrong, and whether Dawid–Skene finds who is reliable.

A model labels N items (right on --prevalence of them); 15 reviewers of known accuracy — 3 experts (0.95),
6 average (0.80), 6 novices close to guessing (0.55) — give three votes per item, each from a different
reviewer picked at random. A reviewer's vote matches the truth with their accuracy, whether the label is right
or wrong. Everything is drawn from one seeded generator, so a seed gives the same figures every time.

It goes through the real import path: the predictions and votes are written as CSV files and loaded with
`import_predictions` and `import_votes` into a scratch PostgreSQL database; each policy's statuses are read
back with `export_labels --consensus …` and the reviewers' estimated accuracies from the reviewer quality
selector (Dawid–Skene over all votes), i.e. what the reviewer quality page shows.

For unanimous, majority and Dawid–Skene it prints the error rate against the truth (a label is taken as
correct when its status is `confirmed`; a split counts as not confirmed, as in the report), split into wrongly
confirmed and wrongly rejected; then each reviewer's Dawid–Skene accuracy against their true accuracy (the share
of their votes that matched the truth; the nominal one beside it) and the largest absolute difference.
It prints figures and asserts nothing.

    python bench/crowd.py [--items 5000] [--seed 0] [--prevalence 0.8] [--database NAME] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _scratch import ScratchDatabase

DATASET = "crowd"
LABELS = 10
VOTES_PER_ITEM = 3
# (name prefix, how many, accuracy): a mixed crew, the case consensus policies exist for.
CREW = (("expert", 3, 0.95), ("average", 6, 0.80), ("novice", 6, 0.55))
POLICIES = ("unanimous", "majority", "dawid-skene")


@dataclass(frozen=True)
class Crowd:
    """The simulated truth and votes: items[i] is right when truth[i]; votes are (item, reviewer, confirm)."""

    items: list[str]
    labels: list[str]
    confidences: np.ndarray
    truth: np.ndarray
    reviewers: list[str]
    nominal_accuracy: dict[str, float]
    votes: list[tuple[str, str, bool]]


def simulate(items: int, seed: int, prevalence: float) -> Crowd:
    rng = np.random.default_rng(seed)
    reviewers = [f"{prefix}-{k + 1}" for prefix, count, _ in CREW for k in range(count)]
    accuracy = np.array([acc for _, count, acc in CREW for _ in range(count)])
    names = [f"images/item_{i:06d}.jpg" for i in range(items)]
    truth = rng.random(items) < prevalence
    votes = []
    for i, name in enumerate(names):
        for r in rng.choice(len(reviewers), VOTES_PER_ITEM, replace=False):
            matches_truth = rng.random() < accuracy[r]
            votes.append((name, reviewers[r], bool(truth[i]) == matches_truth))
    return Crowd(
        items=names,
        labels=[f"class_{k}" for k in rng.integers(0, LABELS, items)],
        confidences=np.round(rng.uniform(50, 100, items), 2),
        truth=truth,
        reviewers=reviewers,
        nominal_accuracy=dict(zip(reviewers, accuracy.tolist(), strict=True)),
        votes=votes,
    )


def true_accuracy(crowd: Crowd) -> dict[str, float]:
    """Return each reviewer's share of votes that matched the truth (what the estimate should recover)."""
    right = dict.fromkeys(crowd.reviewers, 0)
    cast = dict.fromkeys(crowd.reviewers, 0)
    truth_of = dict(zip(crowd.items, crowd.truth.tolist(), strict=True))
    for item, reviewer, confirm in crowd.votes:
        cast[reviewer] += 1
        right[reviewer] += confirm == truth_of[item]
    return {r: right[r] / cast[r] for r in crowd.reviewers}


def write_csvs(crowd: Crowd, folder: Path) -> tuple[Path, Path]:
    predictions, votes = folder / "predictions.csv", folder / "votes.csv"
    with predictions.open("w", newline="") as stream:
        csv.writer(stream).writerows(zip(crowd.items, crowd.labels, crowd.confidences.tolist(), strict=True))
    with votes.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["image", "reviewer", "verdict"])
        writer.writerows((item, r, "confirm" if c else "disconfirm") for item, r, c in crowd.votes)
    return predictions, votes


def import_and_read(crowd: Crowd, folder: Path) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """Import through the commands; return each policy's status per image and Dawid–Skene accuracy per reviewer."""
    from django.core.management import call_command

    from labelqa.catalog.models import Dataset
    from labelqa.review.selectors import reviewer_quality

    predictions, votes = write_csvs(crowd, folder)
    quiet = io.StringIO()
    call_command("import_predictions", str(predictions), dataset=DATASET, stdout=quiet)
    call_command("import_votes", str(votes), dataset=DATASET, stdout=quiet)
    statuses = {}
    for policy in POLICIES:
        out = io.StringIO()
        call_command("export_labels", dataset=DATASET, format="csv", consensus=policy, stdout=out)
        statuses[policy] = {row["image"]: row["status"] for row in csv.DictReader(io.StringIO(out.getvalue()))}
    quality = reviewer_quality(Dataset.objects.get(name=DATASET))
    return statuses, {row["username"]: row["reliability"] for row in quality}


def print_policy_errors(crowd: Crowd, statuses: dict[str, dict[str, str]]) -> None:
    n = len(crowd.items)
    print(f"{'policy':<13} {'error':>7} {'wrongly confirmed':>18} {'wrongly rejected':>17} {'splits':>7}")
    for policy in POLICIES:
        confirmed = np.array([statuses[policy][item] == "confirmed" for item in crowd.items])
        split = sum(statuses[policy][item] == "split" for item in crowd.items)
        false_confirm = int(np.sum(confirmed & ~crowd.truth))
        false_reject = int(np.sum(~confirmed & crowd.truth))
        print(
            f"{policy:<13} {(false_confirm + false_reject) / n:7.2%} {false_confirm / n:18.2%} "
            f"{false_reject / n:17.2%} {split / n:7.2%}"
        )


def print_reviewer_accuracy(crowd: Crowd, estimated: dict[str, float]) -> None:
    actual = true_accuracy(crowd)
    print(f"\nDawid–Skene reviewer accuracy\n{'reviewer':<11} {'nominal':>8} {'true':>7} {'estimated':>10} {'diff':>7}")
    for reviewer in crowd.reviewers:
        diff = estimated[reviewer] - actual[reviewer]
        print(
            f"{reviewer:<11} {crowd.nominal_accuracy[reviewer]:8.3f} {actual[reviewer]:7.3f} "
            f"{estimated[reviewer]:10.3f} {diff:+7.3f}"
        )
    worst = max(abs(estimated[r] - actual[r]) for r in crowd.reviewers)
    print(f"max |estimated - true| = {worst:.3f} ({worst * 100:.1f} points)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prevalence", type=float, default=0.8, help="Share of the model's labels that are right.")
    parser.add_argument("--database", default="labelqa_bench_crowd", help="Scratch PostgreSQL database (dropped).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    args = parser.parse_args()
    if args.items < 1 or not 0 < args.prevalence < 1:
        parser.error("--items must be positive and --prevalence strictly between 0 and 1")

    crowd = simulate(args.items, args.seed, args.prevalence)
    db = ScratchDatabase(args.database)
    db.recreate()
    db.use_in_this_process()
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as folder:
            statuses, estimated = import_and_read(crowd, Path(folder))
    finally:
        db.close_django_connections()
        if not args.keep:
            db.drop()
    crew = ", ".join(f"{count} × {prefix} ({acc:.2f})" for prefix, count, acc in CREW)
    print(
        f"machine: {os.cpu_count()} cores; {args.items} items, {VOTES_PER_ITEM} votes each from {crew}; "
        f"seed {args.seed}; the model is right on {crowd.truth.mean():.1%} of items"
    )
    print(
        f"imported {len(crowd.items)} predictions and {len(crowd.votes)} votes with import_predictions/import_votes "
        f"and read them back with export_labels in {time.perf_counter() - started:.1f} s\n"
    )
    print_policy_errors(crowd, statuses)
    print_reviewer_accuracy(crowd, estimated)


if __name__ == "__main__":
    main()
