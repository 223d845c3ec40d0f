"""Load the review flow: 1,000,000 predictions in 40,000 batches, 20 reviewers at once through gunicorn.

Creates a scratch PostgreSQL database, fills it with set-based SQL, starts gunicorn on it, and runs 20
concurrent reviewer sessions for a fixed time, each looping: GET /review/next/ and the batch grid it
redirects to, then POST the batch with one image un-checked. Prints p50/p95/p99 latency of next+grid and of
the submit, throughput, and the same for a trivial view (/healthz/) on the same server as a baseline.
Prints figures only; it asserts nothing about time.

    python bench/review_load.py [--seconds 30] [--sessions 20] [--think 0] [--workers 3] [--threads 4]

--think adds a pause after each grid, standing in for the reviewer looking at it (a person needs several
seconds per batch); --think 0 hammers the server as fast as the clients can go.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "labelqa_bench_review"
BENCH_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
PREDICTIONS = 1_000_000
BATCH_SIZE = 25
LABELS = 40
PASSWORD = "bench-password-not-secret"
CHECKBOX = re.compile(r'name="confirm" value="(\d+)"')
LEASE = re.compile(r'name="lease" value="([^"]+)"')


def env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": BENCH_URL,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14"),
        "DJANGO_SETTINGS_MODULE": "labelqa.settings",
    }


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env(), check=True, stdout=subprocess.DEVNULL)


def create_database(sessions: int) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    manage("migrate", "--noinput", "-v0")
    started = time.perf_counter()
    batches = PREDICTIONS // BATCH_SIZE
    with psycopg.connect(BENCH_URL, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO catalog_dataset (name, images_root, batch_size, reviews_per_item, consensus, shuffle_seed,"
            " created_at) VALUES ('load', %s, 25, 1, 'unanimous', 0, now())",
            [str(ROOT / "var" / "bench-missing-images")],
        )
        conn.execute(
            "INSERT INTO review_batch (id, dataset_id, label, reviews_done, created_at)"
            " SELECT j, 1, 'class_' || (j %% %s), 0, now() FROM generate_series(1, %s) j",
            [LABELS, batches],
        )
        conn.execute(
            "INSERT INTO catalog_image (id, dataset_id, path, problem, thumbnail, metadata)"
            " SELECT i, 1, 'images/' || i || '.jpg', '', '', '{}' FROM generate_series(1, %s) i",
            [PREDICTIONS],
        )
        conn.execute(
            "INSERT INTO catalog_prediction (id, dataset_id, image_id, label, confidence, model_name, top_k,"
            " batch_id, confirms, disconfirms, tally_stale)"
            " SELECT i, 1, i, 'class_' || (((i - 1) / 25 + 1) %% %s), 50 + random() * 50, 'bench', '[]',"
            " (i - 1) / 25 + 1, 0, 0, false FROM generate_series(1, %s) i",
            [LABELS, PREDICTIONS],
        )
        for table in ("review_batch", "catalog_image", "catalog_prediction"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.execute("VACUUM ANALYZE")
    print(f"loaded {PREDICTIONS:,} predictions in {batches:,} batches in {time.perf_counter() - started:.1f} s")
    users = "; ".join(
        f"u = User.objects.create_user('bench{i}', password='{PASSWORD}'); grant_role(u, 'reviewer')"
        for i in range(sessions)
    )
    manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; from labelqa.roles import grant_role; "
        f"User = get_user_model(); {users}",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    process = subprocess.Popen(
        [
            gunicorn,
            "labelqa.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env(),
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{base}/healthz/", timeout=5)
            return process, base
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def login(base: str, username: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/")
    response = session.post(
        f"{base}/accounts/login/",
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        allow_redirects=False,
    )
    assert response.status_code == 302, f"login of {username} failed"
    return session


def review_loop(base, username, deadline, think, grid_ms, submit_ms, errors, batches_done) -> None:
    session = login(base, username)
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = session.get(f"{base}/review/next/")
        grid_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200 or "/review/batch/" not in response.url:
            errors.append(f"next: {response.status_code} {response.url}")
            return
        time.sleep(think)
        ids = CHECKBOX.findall(response.text)
        data = {
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "lease": LEASE.search(response.text).group(1),
            "confirm": ids[1:],
        }
        started = time.perf_counter()
        posted = session.post(response.url, data, allow_redirects=False)
        submit_ms.append((time.perf_counter() - started) * 1000)
        if posted.status_code != 302:
            errors.append(f"submit: {posted.status_code}")
            return
        batches_done.append(1)


def baseline_loop(base, deadline, latencies, errors) -> None:
    session = requests.Session()
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = session.get(f"{base}/healthz/")
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            errors.append(f"healthz: {response.status_code}")


def run_threads(target, sessions: int, seconds: float, per_thread, *shared) -> float:
    """Run `target(*per_thread(i), deadline, *shared)` in `sessions` threads; return the wall time."""
    deadline = time.perf_counter() + seconds
    threads = [threading.Thread(target=target, args=(*per_thread(i), deadline, *shared)) for i in range(sessions)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=100)
    return f"p50 {q[49]:6.1f} ms   p95 {q[94]:6.1f} ms   p99 {q[98]:6.1f} ms   (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--think", type=float, default=0.0, help="Seconds each reviewer looks at a grid.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    args = parser.parse_args()

    create_database(args.sessions)
    server, base = start_gunicorn(args.workers, args.threads)
    try:
        grid_ms: list[float] = []
        submit_ms: list[float] = []
        errors: list[str] = []
        done: list[int] = []
        # The sessions log in before the clock starts counting their requests.
        elapsed = run_threads(
            review_loop,
            args.sessions,
            args.seconds,
            lambda i: (base, f"bench{i}"),
            args.think,
            grid_ms,
            submit_ms,
            errors,
            done,
        )
        baseline_ms: list[float] = []
        baseline_elapsed = run_threads(
            baseline_loop, args.sessions, min(args.seconds, 15), lambda i: (base,), baseline_ms, errors
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    with psycopg.connect(BENCH_URL) as conn:
        votes = conn.execute("SELECT count(*) FROM review_vote").fetchone()[0]
    if not args.keep:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")

    print(
        f"machine: {os.cpu_count()} cores; gunicorn gthread {args.workers} workers x {args.threads} threads; "
        f"{args.sessions} sessions for {args.seconds:.0f} s, think time {args.think} s"
    )
    print(f"next + grid:  {percentiles(grid_ms)}")
    print(f"submit:       {percentiles(submit_ms)}")
    print(f"baseline:     {percentiles(baseline_ms)}   (GET /healthz/)")
    print(
        f"throughput:   {len(done) / elapsed:.1f} batches/s = {len(done) * BATCH_SIZE / elapsed:.0f} judgements/s; "
        f"{(len(grid_ms) + len(submit_ms)) / elapsed:.0f} review requests/s; "
        f"baseline {len(baseline_ms) / baseline_elapsed:.0f} requests/s"
    )
    print(
        f"votes in database: {votes} (submitted batches x {BATCH_SIZE} = {len(done) * BATCH_SIZE}); "
        f"errors: {len(errors)} {errors[:3]}"
    )


if __name__ == "__main__":
    main()
