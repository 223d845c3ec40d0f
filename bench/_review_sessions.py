"""What the review benchmarks share: a scratch PostgreSQL database full of batches, gunicorn, reviewer sessions.

Used by bench/review_load.py (latency under load) and bench/soak.py (minutes of load with a Celery worker,
checking that nothing is lost). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
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
from _scratch import ROOT, ScratchDatabase

BATCH_SIZE = 25
LABELS = 40
PASSWORD = "bench-password-not-secret"
CHECKBOX = re.compile(r'name="confirm" value="(\d+)"')
LEASE = re.compile(r'name="lease" value="([^"]+)"')


class ReviewError(Exception):
    """The server answered a review step with something other than what the HTTP contract promises."""


def fill_review_dataset(db: ScratchDatabase, predictions: int) -> None:
    """Create dataset 'load' with `predictions` images in full batches over LABELS labels, with set-based SQL."""
    started = time.perf_counter()
    batches = predictions // BATCH_SIZE
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO catalog_dataset (name, images_root, batch_size, reviews_per_item, consensus, shuffle_seed,"
            " created_at) VALUES ('load', %s, %s, 1, 'unanimous', 0, now())",
            [str(ROOT / "var" / "bench-missing-images"), BATCH_SIZE],
        )
        conn.execute(
            "INSERT INTO review_batch (id, dataset_id, label, reviews_done, created_at)"
            " SELECT j, 1, 'class_' || (j %% %s), 0, now() FROM generate_series(1, %s) j",
            [LABELS, batches],
        )
        conn.execute(
            "INSERT INTO catalog_image (id, dataset_id, path, problem, thumbnail, metadata)"
            " SELECT i, 1, 'images/' || i || '.jpg', '', '', '{}' FROM generate_series(1, %s) i",
            [predictions],
        )
        conn.execute(
            "INSERT INTO catalog_prediction (id, dataset_id, image_id, label, confidence, model_name, top_k,"
            " batch_id, confirms, disconfirms, tally_stale)"
            " SELECT i, 1, i, 'class_' || (((i - 1) / %(size)s + 1) %% %(labels)s), 50 + random() * 50, 'bench',"
            " '[]', (i - 1) / %(size)s + 1, 0, 0, false FROM generate_series(1, %(n)s) i",
            {"size": BATCH_SIZE, "labels": LABELS, "n": predictions},
        )
        for table in ("review_batch", "catalog_image", "catalog_prediction"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.execute("VACUUM ANALYZE")
    print(f"loaded {predictions:,} predictions in {batches:,} batches in {time.perf_counter() - started:.1f} s")


def create_reviewers(db: ScratchDatabase, count: int) -> None:
    """Create reviewer accounts bench0 … bench{count-1}, all with PASSWORD."""
    users = "; ".join(
        f"u = User.objects.create_user('bench{i}', password='{PASSWORD}'); grant_role(u, 'reviewer')"
        for i in range(count)
    )
    db.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; from labelqa.roles import grant_role; "
        f"User = get_user_model(); {users}",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(db: ScratchDatabase, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    """Start gunicorn (gthread, from gunicorn.conf.py) on the database; return it and its base URL once it answers."""
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
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=db.env(),
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


def serve_review_dataset(
    db: ScratchDatabase, *, predictions: int, reviewers: int, workers: int, threads: int
) -> tuple[subprocess.Popen, str]:
    """Recreate the scratch database with the review dataset and reviewer accounts, and serve it with gunicorn."""
    db.recreate()
    fill_review_dataset(db, predictions)
    create_reviewers(db, reviewers)
    return start_gunicorn(db, workers, threads)


def add_load_arguments(parser: argparse.ArgumentParser, *, seconds: float, think: float) -> None:
    """Add the options every review load script takes: how long, how many sessions, server size, think time."""
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--think", type=float, default=think, help="Seconds each reviewer looks at a grid.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")


def login(base: str, username: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/")
    response = session.post(
        f"{base}/accounts/login/",
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        allow_redirects=False,
    )
    if response.status_code != 302:
        raise ReviewError(f"login of {username} failed: {response.status_code}")
    return session


def review_one_batch(
    session: requests.Session,
    base: str,
    think: float,
    grid_ms: list[float],
    submit_ms: list[float],
    lease_ms: list[float] | None = None,
) -> int:
    """Lease the next batch, look at it for `think` seconds, submit it with its first image un-checked.

    Appends the latency of next+grid (of the grid alone when `lease_ms` takes the lease's 302 apart) and of the
    submit; returns how many votes the submit recorded (one per image on the grid). Raises ReviewError when an
    answer breaks the review flow's contract.
    """
    started = time.perf_counter()
    if lease_ms is None:
        response = session.get(f"{base}/review/next/")
    else:
        lease = session.get(f"{base}/review/next/", allow_redirects=False)
        lease_ms.append((time.perf_counter() - started) * 1000)
        if lease.status_code != 302:
            raise ReviewError(f"next: {lease.status_code}")
        started = time.perf_counter()
        response = session.get(f"{base}{lease.headers['Location']}")
    grid_ms.append((time.perf_counter() - started) * 1000)
    if response.status_code != 200 or "/review/batch/" not in response.url:
        raise ReviewError(f"next: {response.status_code} {response.url}")
    time.sleep(think)
    ids = CHECKBOX.findall(response.text)
    token = LEASE.search(response.text)
    if token is None:
        raise ReviewError(f"grid: no lease token on {response.url}")
    data = {"csrfmiddlewaretoken": session.cookies["csrftoken"], "lease": token.group(1), "confirm": ids[1:]}
    started = time.perf_counter()
    posted = session.post(response.url, data, allow_redirects=False)
    submit_ms.append((time.perf_counter() - started) * 1000)
    if posted.status_code != 302:
        raise ReviewError(f"submit: {posted.status_code}")
    return len(ids)


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
