"""Real processes for the live tests: a Celery worker, gunicorn and a private Redis, all on the test database.

Each starter returns the `subprocess.Popen`; `stop` ends one (SIGTERM, then SIGKILL). Tests that use them need
`@pytest.mark.django_db(transaction=True)` so the processes see the rows the test commits.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import requests
from django.db import connection

from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHECKBOX = re.compile(r'<input type="checkbox" name="confirm" value="(\d+)"')
LEASE = re.compile(r'name="lease" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """The URL of the database pytest-django made for this run (test_<name>), for other processes."""
    assert connection.vendor == "postgresql", "live tests need DATABASE_URL to be PostgreSQL"
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def database_conninfo() -> str:
    db = connection.settings_dict
    return f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}"


def live_env(broker_url: str, **overrides: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": broker_url, **overrides}


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, process=None):
    """Poll until `condition()` is truthy and return it; fail naming `what` (and the process's output)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited early ({process.returncode}):\n{output_of(process)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def output_of(process) -> str:
    log = getattr(process, "log_path", None)
    return Path(log).read_text(errors="replace")[-4000:] if log and Path(log).exists() else ""


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")  # the child keeps its own copy of the descriptor
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    process.log_path = log_path
    return process


def _wait_or_stop(process: subprocess.Popen, ready: Callable[[], object], *, timeout: float, what: str) -> None:
    """Wait until the new process is ready; stop it if it never is, since the caller never gets it to stop."""
    try:
        wait_until(ready, timeout=timeout, what=what, process=process)
    except BaseException:
        stop(process)
        raise


def stop(process: subprocess.Popen | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_celery_worker(env: dict[str, str], log_path: Path, *extra: str) -> subprocess.Popen:
    """A one-process (solo pool) worker: killing it kills the task it runs."""
    args = [sys.executable, "-m", "celery", "-A", "labelqa", "worker", "--pool", "solo", "--loglevel", "WARNING"]
    args += ["--without-heartbeat", "--without-gossip", "--without-mingle", *extra]
    return _spawn(args, env, log_path)


def start_gunicorn(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    """gunicorn with one worker, configured by gunicorn.conf.py as in production; return it and its base URL."""
    port = free_port()
    gunicorn = shutil.which("gunicorn", path=str(BIN)) or "gunicorn"
    process = _spawn([gunicorn, "labelqa.wsgi", "-b", f"127.0.0.1:{port}", "--workers", "1"], env, log_path)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/healthz/", timeout=5).ok
        except requests.RequestException:
            return False

    _wait_or_stop(process, healthy, timeout=30, what="gunicorn answering /healthz/")
    return process, base


def start_redis(port: int, log_path: Path) -> subprocess.Popen:
    """A private redis-server that keeps nothing on disk; never the shared one."""
    redis_server = shutil.which("redis-server")
    assert redis_server, "redis-server is not installed"
    process = _spawn(
        [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        env=os.environ,
        log_path=log_path,
    )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    _wait_or_stop(process, answers, timeout=10, what=f"redis-server on port {port}")
    return process


def http_login(base: str, username: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=10)
    response = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, f"login failed: {response.status_code}"
    return session


def http_open_batch(session: requests.Session, base: str) -> tuple[str, list[int], str]:
    """Lease the next batch over HTTP; return its URL, the prediction ids on its grid and the lease token."""
    response = session.get(f"{base}/review/next/", allow_redirects=False, timeout=10)
    assert response.status_code == 302, f"no batch leased: {response.status_code}"
    url = base + response.headers["Location"].split("?")[0]
    html = session.get(url, timeout=10).text
    return url, [int(i) for i in CHECKBOX.findall(html)], LEASE.search(html).group(1)


def blocked_backends() -> list[int]:
    """The pids of sessions on the test database that wait for a lock.

    Asked on a connection of its own: inside a transaction PostgreSQL would keep showing one snapshot of the view.
    """
    with psycopg.connect(database_conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND wait_event_type = 'Lock'"
        ).fetchall()
    return [pid for (pid,) in rows]
