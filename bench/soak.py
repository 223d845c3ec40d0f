"""Soak the review flow: 20 reviewer sessions against gunicorn and a real Celery worker for 5 minutes.

Creates a scratch PostgreSQL database with 1,000,000 predictions in 40,000 batches (set-based SQL), starts
gunicorn and a `celery worker` on it, and runs the reviewer sessions of bench/review_load.py, except that a
session counts an error (any answer other than 2xx/3xx, or an exception) and carries on instead of stopping.
Afterwards it waits for the worker to recompute every tally, then prints requests, errors, p50/p95 latency,
the resident memory of the gunicorn and celery process trees at the start and end of the load (and in
between), and the votes in the database against the votes submitted.

Exits non-zero when there were errors, when the votes in the database differ from the votes submitted, or when
the tallies the worker computed differ from the votes; it never asserts a time.

    python bench/soak.py [--seconds 300] [--sessions 20] [--think 1] [--workers 3] [--threads 4]
                         [--worker-concurrency 2] [--predictions 1000000] [--keep]

Set CELERY_BROKER_URL to a Redis database of your own (default redis://127.0.0.1:6379/14); its default queue is
purged at the start.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from _review_sessions import (
    ReviewError,
    add_load_arguments,
    login,
    percentiles,
    review_one_batch,
    run_threads,
    serve_review_dataset,
)
from _scratch import ROOT, ScratchDatabase

SOAK_DB = ScratchDatabase("labelqa_bench_soak")
RSS_SAMPLES = 10
# After an error the session pauses briefly, so a server in trouble is not hammered in a tight loop.
ERROR_PAUSE_SECONDS = 0.5
WORKER_CATCH_UP_SECONDS = 180


@dataclass
class SoakTally:
    """What all sessions did, appended to from their threads (list.append is atomic under the GIL)."""

    grid_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    votes_submitted: list[int] = field(default_factory=list)


def soak_loop(base: str, username: str, deadline: float, think: float, tally: SoakTally) -> None:
    """Review batch after batch until the deadline, counting errors and going on after each."""
    session = None
    while time.perf_counter() < deadline:
        try:
            session = session or login(base, username)
            tally.votes_submitted.append(review_one_batch(session, base, think, tally.grid_ms, tally.submit_ms))
        except (ReviewError, requests.RequestException) as exc:
            tally.errors.append(f"{username}: {exc}")
            time.sleep(ERROR_PAUSE_SECONDS)


def start_celery_worker(db: ScratchDatabase, concurrency: int) -> subprocess.Popen:
    """Start a prefork worker on the default queue, as in production, and wait until it answers a ping."""
    celery = [sys.executable, "-m", "celery", "-A", "labelqa"]
    subprocess.run([*celery, "purge", "-f", "-Q", "celery"], cwd=ROOT, env=db.env(), check=True, capture_output=True)
    hostname = f"soak-{os.getpid()}@%h"
    process = subprocess.Popen(
        [*celery, "worker", "-Q", "celery", "--concurrency", str(concurrency), "-n", hostname, "--loglevel", "WARNING"],
        cwd=ROOT,
        env=db.env(),
        stdout=subprocess.DEVNULL,  # the start-up banner; warnings and tracebacks go to stderr
    )
    for _ in range(30):
        ping = subprocess.run(
            [*celery, "inspect", "ping", "--timeout", "2", "-d", hostname.replace("%h", os.uname().nodename)],
            cwd=ROOT,
            env=db.env(),
            capture_output=True,
        )
        if ping.returncode == 0:
            return process
        if process.poll() is not None:
            break
    process.kill()
    raise SystemExit("the celery worker did not start")


def process_tree(pid: int) -> list[int]:
    """Return pid and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The command name (field 2) may hold spaces; the parent pid is the second field after it.
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_rss_mib(pid: int) -> float:
    """Return the summed resident memory of a process and its descendants (shared pages count once per process)."""
    total_kib = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def sample_memory(processes: dict[str, int], seconds: float, samples: dict[str, list[tuple[float, float]]]) -> None:
    """Record each process tree's RSS at the start, RSS_SAMPLES - 1 times during the load, and (by the caller) at
    the end."""
    started = time.perf_counter()
    for step in range(RSS_SAMPLES):
        at = started + step * seconds / RSS_SAMPLES
        time.sleep(max(0.0, at - time.perf_counter()))
        for name, pid in processes.items():
            samples[name].append((time.perf_counter() - started, tree_rss_mib(pid)))


def wait_for_tallies(db: ScratchDatabase) -> float | None:
    """Wait until the worker has recomputed every stale tally; return how long it took, None if it never did."""
    started = time.perf_counter()
    while time.perf_counter() - started < WORKER_CATCH_UP_SECONDS:
        if not db.scalar("SELECT count(*) FROM catalog_prediction WHERE tally_stale"):
            return time.perf_counter() - started
        time.sleep(1)
    return None


def report(args, tally: SoakTally, elapsed: float, memory, votes_in_db: int, tallied: int, catch_up) -> bool:
    """Print the figures; return True when nothing was lost and nothing failed."""
    requests_made = len(tally.grid_ms) + len(tally.submit_ms)
    submitted = sum(tally.votes_submitted)
    print(
        f"machine: {os.cpu_count()} cores; gunicorn gthread {args.workers} workers x {args.threads} threads; "
        f"celery prefork x {args.worker_concurrency}; {args.sessions} sessions for {elapsed:.0f} s, "
        f"think time {args.think} s"
    )
    print(
        f"requests:     {requests_made} ({requests_made / elapsed:.1f}/s; next+grid and submits, logins not counted), "
        f"{len(tally.votes_submitted)} batches"
    )
    print(f"errors:       {len(tally.errors)} {tally.errors[:5]}")
    print(f"all requests: {percentiles(tally.grid_ms + tally.submit_ms)}")
    print(f"next + grid:  {percentiles(tally.grid_ms)}")
    print(f"submit:       {percentiles(tally.submit_ms)}")
    for name, samples in memory.items():
        timeline = ", ".join(f"{t:.0f}s {rss:.0f}" for t, rss in samples)
        print(f"RSS {name}: start {samples[0][1]:.0f} MiB, end {samples[-1][1]:.0f} MiB   ({timeline})")
    print(
        "worker caught up "
        + (f"{catch_up:.1f} s after the load" if catch_up is not None else f"NOT within {WORKER_CATCH_UP_SECONDS} s")
    )
    print(f"votes in database: {votes_in_db}; votes submitted: {submitted}; votes in tallies: {tallied}")
    ok = not tally.errors  # a worker that never caught up shows as tallies that differ from the votes
    if votes_in_db != submitted:
        print(f"MISMATCH: {votes_in_db} votes in the database but {submitted} submitted")
        ok = False
    if tallied != votes_in_db:
        print(f"MISMATCH: the tallies count {tallied} votes but the database holds {votes_in_db}")
        ok = False
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # A person takes several seconds per grid; 1 s keeps the load well above what 20 people make.
    add_load_arguments(parser, seconds=300, think=1.0)
    parser.add_argument("--worker-concurrency", type=int, default=2, help="celery prefork processes")
    parser.add_argument("--predictions", type=int, default=1_000_000)
    args = parser.parse_args()

    server, base = serve_review_dataset(
        SOAK_DB, predictions=args.predictions, reviewers=args.sessions, workers=args.workers, threads=args.threads
    )
    worker = None
    try:
        worker = start_celery_worker(SOAK_DB, args.worker_concurrency)
        processes = {"gunicorn": server.pid, "celery": worker.pid}
        memory: dict[str, list[tuple[float, float]]] = {name: [] for name in processes}
        sampler = threading.Thread(target=sample_memory, args=(processes, args.seconds, memory), daemon=True)
        tally = SoakTally()
        sampler.start()
        elapsed = run_threads(soak_loop, args.sessions, args.seconds, lambda i: (base, f"bench{i}"), args.think, tally)
        sampler.join()
        for name, pid in processes.items():
            memory[name].append((elapsed, tree_rss_mib(pid)))
        catch_up = wait_for_tallies(SOAK_DB)
    finally:
        for process in (server, worker):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)
    votes_in_db = SOAK_DB.scalar("SELECT count(*) FROM review_vote")
    tallied = SOAK_DB.scalar("SELECT coalesce(sum(confirms + disconfirms), 0) FROM catalog_prediction")
    if not args.keep:
        SOAK_DB.drop()
    ok = report(args, tally, elapsed, memory, votes_in_db, tallied, catch_up)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
