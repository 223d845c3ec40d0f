"""Time a million-row prediction import against `psql \\copy` of the same file into a bare table.

Usage: python bench/import_1m.py [-n 1000000] [--labels 100]      (server: BENCH_PG, as for every bench)

Generates a seed-format CSV (image,label,confidence), creates a scratch database (`labelqa_bench`, dropped at the
end), migrates it with `manage.py migrate`, then measures
  1. `psql` running `\\copy bench_bare FROM file (FORMAT csv)` into a table with three columns and no index,
  2. the key floors, which hold for any schema: the same `\\copy` into the same three columns plus an identity
     primary key (the least a table whose rows anything can refer to costs), and into the three columns with a
     unique index on the image (the least finding repeated images through an index costs),
  3. the write floor: the same rows inserted once into the images and predictions tables with their indexes, in a
     copy of the migrated database, with nothing else (no staging, validation, shuffle or batches),
  4. the build floor: the same rows into new tables without indexes, the same indexes built afterwards, and
  5. `predictions_import` through the service (validation, images, predictions and batches), in a child process
     whose peak RSS is reported.
Each step starts after a CHECKPOINT (the server's user must be allowed to run one: a superuser, or pg_checkpoint).
Prints the six times, their ratios to the COPY, rows/s, peak memory and the core count. Never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from _scratch import ROOT, ScratchDatabase

BENCH_DB = ScratchDatabase("labelqa_bench")
# The floor gets its own copy of the database, so that the import starts from the same empty tables.
FLOOR_DB = ScratchDatabase("labelqa_bench_floor")


def generate(path: Path, rows: int, labels: int, seed: int = 7) -> None:
    """Write `rows` seed-format lines over `labels` classes with realistic paths and two-decimal confidences."""
    rng = random.Random(seed)
    names = [f"class_{i:03d}" for i in range(labels)]
    with path.open("w", encoding="utf-8", newline="\n") as out:
        buffer = []
        for i in range(rows):
            label = names[rng.randrange(labels)]
            buffer.append(f"images/{label}/{label}-image_{i:07d}.jpg,{label},{rng.uniform(20, 100):.2f}\n")
            if len(buffer) == 50_000:
                out.write("".join(buffer))
                buffer.clear()
        out.write("".join(buffer))


def psql(sql: str, db: ScratchDatabase) -> float:
    """Run psql commands (SQL and backslash commands, one per line) and return their wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.url, "-f", "-"],
        input=sql,
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


# The least any import into this schema can cost: the file's rows written once into images and predictions, with
# their indexes and without key checks, as the importer writes them. No staging, validation, shuffle or batches.
WRITE_FLOOR = """
INSERT INTO catalog_dataset (name, images_root, batch_size, reviews_per_item, consensus, shuffle_seed,
                             prioritise_uncertain, gold_rate, created_at)
VALUES ('floor', '', 25, 1, 'unanimous', 0, false, 0, now()) RETURNING id AS ds \\gset
BEGIN;
SET LOCAL session_replication_role = replica;
WITH w AS (SELECT nextval('catalog_image_id_seq') AS image_id, image, label, confidence FROM bench_bare),
images AS (INSERT INTO catalog_image (id, dataset_id, path, problem, thumbnail, metadata)
           SELECT image_id, :ds, image, '', '', '{}' FROM w)
INSERT INTO catalog_prediction (dataset_id, image_id, label, confidence, model_name, top_k, batch_id,
                                confirms, disconfirms, tally_stale)
SELECT :ds, image_id, label, confidence, '', '[]', NULL, 0, 0, false FROM w;
COMMIT;
"""

# What a design that bulk-loads a fresh table per import could at best do: the same rows into new tables with no
# index, then the same indexes as images and predictions have, built afterwards (a sort each, not a row-by-row insert).
BUILD_FLOOR = """
BEGIN;
CREATE TABLE floor_image (LIKE catalog_image INCLUDING DEFAULTS);
CREATE TABLE floor_prediction (LIKE catalog_prediction INCLUDING IDENTITY INCLUDING DEFAULTS);
WITH w AS (SELECT nextval('catalog_image_id_seq') AS image_id, image, label, confidence FROM bench_bare),
images AS (INSERT INTO floor_image (id, dataset_id, path, problem, thumbnail, metadata)
           SELECT image_id, 1, image, '', '', '{}' FROM w)
INSERT INTO floor_prediction (dataset_id, image_id, label, confidence, model_name, top_k, batch_id,
                              confirms, disconfirms, tally_stale)
SELECT 1, image_id, label, confidence, '', '[]', NULL, 0, 0, false FROM w;
DO $$
DECLARE definition text;
BEGIN
  FOR definition IN
    SELECT replace(replace(indexdef, ' ON public.catalog_', ' ON floor_'), 'INDEX ', 'INDEX floor_')
    FROM pg_indexes WHERE tablename IN ('catalog_image', 'catalog_prediction')
  LOOP
    EXECUTE definition;
  END LOOP;
END $$;
COMMIT;
"""


# The same three columns with the one index that any table rows can be referred to needs, and with the one index that
# finding repeated images needs: what a COPY into them costs over the bare table holds for every schema.
KEY_FLOOR_TABLES = (
    "bench_keyed (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, image text, label text, confidence float8)",
    "bench_unique (image text UNIQUE, label text, confidence float8)",
)


def copy_into(table: str, csv_path: Path) -> float:
    """Create the table in the bench database, then time `\\copy` of the file into its three data columns."""
    psql(f"CREATE TABLE {table}", BENCH_DB)
    checkpoint(BENCH_DB)
    name = table.split()[0]
    seconds = psql(f"\\copy {name} (image, label, confidence) FROM '{csv_path}' (FORMAT csv)", BENCH_DB)
    psql(f"DROP TABLE {name}", BENCH_DB)
    return seconds


def checkpoint(db: ScratchDatabase) -> None:
    """Flush the WAL the previous step wrote, so that no step pays for the checkpoint another one caused.

    Each step writes up to 800 MiB of WAL; with the default max_wal_size of 1 GB a checkpoint would otherwise start
    in whichever step comes next, and every page it touches then goes to the WAL whole, once more.
    """
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def child(csv_path: str) -> None:
    """Import the file through the service (run in its own process so its peak RSS is its own)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelqa.settings")
    import django

    django.setup()
    from labelqa.catalog.services import predictions_import

    checked_at = []

    def progress(validated: int, imported: int, total: int | None) -> None:
        if total is not None and not checked_at:  # the first report with a total: every row is read and checked
            checked_at.append(time.perf_counter())

    start = time.perf_counter()
    with open(csv_path, "rb") as stream:
        summary = predictions_import(
            dataset_name="bench", stream=stream, images_root=str(Path(csv_path).parent), progress=progress
        )
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = {"seconds": seconds, "checked": checked_at[0] - start, "imported": summary.imported}
    print(json.dumps({**figures, "batches": summary.batches, "rss": peak_kib}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rows", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    # An in-memory broker: the thumbnail task the import queues is a worker's job, not part of the import's time.
    env = BENCH_DB.env(broker="memory://localhost/")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "predictions.csv"
        start = time.perf_counter()
        generate(csv_path, args.rows, args.labels)
        size_mib = csv_path.stat().st_size / 2**20
        took = time.perf_counter() - start
        print(f"generated {args.rows} rows, {args.labels} labels, {size_mib:.1f} MiB in {took:.1f}s")

        try:
            BENCH_DB.recreate()
            psql("CREATE TABLE bench_bare (image text, label text, confidence double precision)", BENCH_DB)
            checkpoint(BENCH_DB)
            copy_s = psql(f"\\copy bench_bare FROM '{csv_path}' (FORMAT csv)", BENCH_DB)
            key_s, unique_s = (copy_into(table, csv_path) for table in KEY_FLOOR_TABLES)
            FLOOR_DB.recreate(template=BENCH_DB)
            checkpoint(FLOOR_DB)
            floor_s = psql(WRITE_FLOOR, FLOOR_DB)
            checkpoint(FLOOR_DB)
            build_s = psql(BUILD_FLOOR, FLOOR_DB)
            FLOOR_DB.drop()
            checkpoint(BENCH_DB)

            result = subprocess.run(
                [sys.executable, __file__, "--child", str(csv_path)],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            figures = json.loads(result.stdout.strip().splitlines()[-1])
        finally:
            FLOOR_DB.drop()
            BENCH_DB.drop()

    import_s = figures["seconds"]
    print(f"cores (os.cpu_count): {os.cpu_count()}")
    print(f"psql \\copy into a bare table: {copy_s:.2f}s ({args.rows / copy_s:,.0f} rows/s)")
    print(
        f"predictions_import:           {import_s:.2f}s ({figures['imported'] / import_s:,.0f} rows/s, "
        f"{figures['imported']} predictions in {figures['batches']} batches)"
    )
    print(f"ratio import / copy:          {import_s / copy_s:.2f}")
    print(
        f"  of which read, staged and checked {figures['checked']:.2f}s; "
        f"batches formed and rows written, commit included, {import_s - figures['checked']:.2f}s"
    )
    print(
        f"key floor (the same \\copy into a table with an identity primary key): {key_s:.2f}s, "
        f"{key_s / copy_s:.2f}x copy"
    )
    print(
        f"path floor (the same \\copy into a table with a unique index on the image): {unique_s:.2f}s, "
        f"{unique_s / copy_s:.2f}x copy"
    )
    print(
        f"write floor (rows into images and predictions with their indexes, nothing else): {floor_s:.2f}s, "
        f"{floor_s / copy_s:.2f}x copy"
    )
    print(
        f"build floor (rows into new tables, the same indexes built after): {build_s:.2f}s, "
        f"{build_s / copy_s:.2f}x copy"
    )
    print(f"peak RSS of the importing process: {figures['rss'] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
