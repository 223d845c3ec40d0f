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
import random
import statistics
import time

import requests
from _review_sessions import (
    BATCH_SIZE,
    ReviewError,
    add_load_arguments,
    login,
    percentiles,
    review_one_batch,
    run_threads,
    serve_review_dataset,
)
from _scratch import ScratchDatabase

BENCH_DB = ScratchDatabase("labelqa_bench_review")
PREDICTIONS = 1_000_000


def review_loop(base, username, deadline, think, grid_ms, submit_ms, errors, batches_done) -> None:
    """Review batch after batch until the deadline; stop this session at its first error.

    Reviewers do not move in lockstep: each starts at a random moment within one think time and looks at each
    grid for 0.5-1.5 times the think time. Each session's first batch opens its connection and is not timed.
    """
    rng = random.Random(username)
    session = login(base, username)
    time.sleep(rng.uniform(0, think))
    try:
        review_one_batch(session, base, 0, [], [])
        batches_done.append(1)
        while time.perf_counter() < deadline:
            review_one_batch(session, base, think * rng.uniform(0.5, 1.5), grid_ms, submit_ms)
            batches_done.append(1)
    except (ReviewError, requests.RequestException) as exc:
        errors.append(str(exc))


def baseline_loop(base, deadline, latencies, errors) -> None:
    session = requests.Session()
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = session.get(f"{base}/healthz/")
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            errors.append(f"healthz: {response.status_code}")


ALONE_ROUNDS = 20


def one_at_a_time(base: str, username: str, done: list[int]) -> dict[str, float]:
    """Return the median milliseconds of the lease (302), the grid and the submit with nothing else running."""
    session = login(base, username)
    timings: dict[str, list[float]] = {"lease": [], "grid": [], "submit": []}
    for _ in range(ALONE_ROUNDS + 1):  # the first round opens the connection and is not counted
        review_one_batch(session, base, 0, timings["grid"], timings["submit"], lease_ms=timings["lease"])
        done.append(1)
    return {step: statistics.median(values[1:]) for step, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser, seconds=30, think=0.0)
    args = parser.parse_args()

    server, base = serve_review_dataset(
        BENCH_DB, predictions=PREDICTIONS, reviewers=args.sessions + 1, workers=args.workers, threads=args.threads
    )
    try:
        alone_done: list[int] = []
        alone = one_at_a_time(base, f"bench{args.sessions}", alone_done)
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
    votes = BENCH_DB.scalar("SELECT count(*) FROM review_vote")
    if not args.keep:
        BENCH_DB.drop()

    print(
        f"machine: {os.cpu_count()} cores; gunicorn gthread {args.workers} workers x {args.threads} threads; "
        f"{args.sessions} sessions for {args.seconds:.0f} s, think time {args.think} s"
    )
    print("one request at a time (median): " + ", ".join(f"{step} {ms:.1f} ms" for step, ms in alone.items()))
    print(f"next + grid:  {percentiles(grid_ms)}")
    print(f"submit:       {percentiles(submit_ms)}")
    print(f"baseline:     {percentiles(baseline_ms)}   (GET /healthz/)")
    print(
        f"throughput:   {len(done) / elapsed:.1f} batches/s = {len(done) * BATCH_SIZE / elapsed:.0f} judgements/s; "
        f"{(len(grid_ms) + len(submit_ms)) / elapsed:.0f} review requests/s; "
        f"baseline {len(baseline_ms) / baseline_elapsed:.0f} requests/s"
    )
    submitted = len(done) + len(alone_done)
    print(
        f"votes in database: {votes} (submitted batches x {BATCH_SIZE} = {submitted * BATCH_SIZE}); "
        f"errors: {len(errors)} {errors[:3]}"
    )


if __name__ == "__main__":
    main()
