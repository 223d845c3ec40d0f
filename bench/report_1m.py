"""Time the full threshold report over 1,000,000 predictions and 1,000,000 votes in PostgreSQL.

Creates a scratch database, migrates it with `manage.py migrate`, loads the data with set-based
SQL (INSERT ... SELECT generate_series, so loading takes seconds, not an ORM loop), then times
`report_for_dataset` -- cells, Wilson intervals, the seed's walk and the certified thresholds --
several times and prints the median, the minimum and the machine's core count. The scratch
database is dropped at the end. Prints figures only; it asserts nothing about time.

    python bench/report_1m.py [-n 1000000] [--rounds 5]

BENCH_PG names the server (default postgres://postgres@127.0.0.1:5432); the benchmark itself runs in
`--database` (default labelqa_bench_report).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg
from _scratch import ScratchDatabase

LABELS = 50
REVIEWERS = 5

# Confidence spreads uniformly over 50..100 with two decimals. Each image gets a first vote while the vote
# budget lasts and the first images a second one from another reviewer. A vote confirms with a probability
# that rises with confidence (about 60% at 50, 99% at 100), drawn from a hash of (image, slot) rather than
# random(), so the tallies are written with the predictions and the votes reproduce them exactly: a 1M-row
# UPDATE from the votes would take longer than the rest of the load.
LOAD_SQL = """
INSERT INTO catalog_image (dataset_id, path, problem, thumbnail, metadata)
SELECT %(dataset)s, 'images/' || lpad(g::text, 7, '0') || '.jpg', '', '', '{}'::jsonb
FROM generate_series(1, %(n)s) AS g;

CREATE TEMPORARY TABLE bench_item AS
SELECT i.id AS image_id, i.id - min(i.id) OVER () + 1 AS rn,
       'class-' || lpad((abs(hashtext(i.path)) %% %(labels)s)::text, 2, '0') AS label,
       50 + round((random() * 50)::numeric, 2)::float8 AS confidence
FROM catalog_image AS i WHERE i.dataset_id = %(dataset)s;

CREATE TEMPORARY TABLE bench_vote AS
SELECT image_id, reviewer_id,
       (abs(hashint8(image_id * 2 + slot)) %% 10000) / 10000.0 < 0.6 + 0.39 * (confidence - 50) / 50 AS confirm
FROM bench_item
CROSS JOIN LATERAL (
    SELECT 0 AS slot, (%(reviewers)s::int[])[1 + (rn %% 3)::int] AS reviewer_id WHERE rn <= %(first_votes)s
    UNION ALL
    SELECT 1, (%(reviewers)s::int[])[4 + (rn %% 2)::int] WHERE rn <= %(votes)s - %(first_votes)s
) AS slots;

INSERT INTO catalog_prediction
    (dataset_id, image_id, label, confidence, model_name, top_k, confirms, disconfirms, tally_stale)
SELECT %(dataset)s, i.image_id, i.label, i.confidence, 'bench', '[]'::jsonb,
       coalesce(v.confirms, 0), coalesce(v.disconfirms, 0), false
FROM bench_item AS i
LEFT JOIN (
    SELECT image_id, count(*) FILTER (WHERE confirm) AS confirms, count(*) FILTER (WHERE NOT confirm) AS disconfirms
    FROM bench_vote GROUP BY image_id
) AS v USING (image_id)
ORDER BY i.image_id;

INSERT INTO review_vote (prediction_id, reviewer_id, confirm, created_at, updated_at)
SELECT p.id, v.reviewer_id, v.confirm, now(), now()
FROM bench_vote AS v JOIN catalog_prediction AS p USING (image_id)
"""


def load(url: str, n: int, votes: int) -> None:
    """Load the dataset 'bench' with set-based SQL."""
    first_votes = min(n, votes)
    with psycopg.connect(url) as conn:
        dataset = conn.execute(
            "INSERT INTO catalog_dataset (name, images_root, batch_size, reviews_per_item, consensus, shuffle_seed,"
            " created_at) VALUES ('bench', '', 25, 1, 'unanimous', 0, now()) RETURNING id"
        ).fetchone()[0]
        reviewers = [
            conn.execute(
                "INSERT INTO auth_user (username, password, is_superuser, first_name, last_name, email, is_staff,"
                " is_active, date_joined) VALUES (%s, '!', false, '', '', '', false, true, now()) RETURNING id",
                (f"bench-reviewer-{i}",),
            ).fetchone()[0]
            for i in range(REVIEWERS)
        ]
        params = {
            "dataset": dataset,
            "n": n,
            "labels": LABELS,
            "reviewers": reviewers,
            "votes": votes,
            "first_votes": first_votes,
        }
        for statement in LOAD_SQL.split(";\n"):
            if statement.strip():
                conn.execute(statement, params)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def load_bench(db: ScratchDatabase, n: int, votes: int) -> None:
    """Create the scratch database anew with the 'bench' dataset loaded, and say how long that took."""
    start = time.perf_counter()
    db.recreate()
    load(db.url, n, votes)
    print(f"loaded {n:,} predictions and {votes:,} votes in {time.perf_counter() - start:.1f} s")


def time_reports(dataset_id: int, edges: list[float], rounds: int) -> tuple[list[float], dict]:
    """Return the wall time of each full report and the last report."""
    from labelqa.analytics.selectors import report_for_dataset
    from labelqa.catalog.models import Dataset

    dataset = Dataset.objects.get(pk=dataset_id)
    timings, report = [], {}
    for _ in range(rounds):
        start = time.perf_counter()
        report = report_for_dataset(dataset, edges=edges)
        timings.append(time.perf_counter() - start)
    return timings, report


def print_figures(edges: list[float], timings: list[float], report: dict) -> None:
    certified = sum(c.get("certified", {}).get("threshold") is not None for c in report["classes"])
    print(
        f"edges {','.join(map(str, edges))}: {report['totals']['total']:,} predictions in range "
        f"({report['totals']['reviewed']:,} reviewed), {len(report['classes'])} classes, "
        f"{certified} certified thresholds"
    )
    print(
        f"  report_for_dataset median {statistics.median(timings):.3f} s, min {min(timings):.3f} s "
        f"over {len(timings)} rounds (all: {', '.join(f'{t:.3f}' for t in timings)}); os.cpu_count() = {os.cpu_count()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="predictions (default 1,000,000)")
    parser.add_argument("--votes", type=int, default=1_000_000, help="votes (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", default="labelqa_bench_report", help="scratch database, dropped at the end")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (for --reuse)")
    parser.add_argument("--reuse", action="store_true", help="time against a database kept by --keep, no loading")
    args = parser.parse_args()

    db = ScratchDatabase(args.database)
    try:
        if not args.reuse:
            load_bench(db, args.n, args.votes)
        db.use_in_this_process()
        from labelqa.catalog.models import Dataset

        dataset_id = Dataset.objects.get(name="bench").pk
        # The default edges cover 80..100 (40% of the rows); the wide ones make every row count.
        for edges in ([80, 85, 90, 95, 100], [50, 60, 70, 80, 90, 100]):
            timings, report = time_reports(dataset_id, edges, args.rounds)
            print_figures(edges, timings, report)
    finally:
        if not args.keep:
            db.close_django_connections()
            db.drop()


if __name__ == "__main__":
    main()
