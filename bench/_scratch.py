"""A scratch PostgreSQL database of its own for one benchmark run: created empty, migrated, dropped at the end.

Every `bench/` script that needs a database uses this one class. The server comes from BENCH_PG (default
postgres://postgres@127.0.0.1:5432); each script names its own database, so two benchmarks never share one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
# A broker keeps the review submit path as in production (tallies are enqueued, not computed inline).
REVIEW_BROKER = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")


@dataclass(frozen=True)
class ScratchDatabase:
    """A PostgreSQL database of its own for one benchmark run, and the environment that points Django at it."""

    name: str

    @property
    def url(self) -> str:
        return f"{SERVER}/{self.name}"

    def env(self, broker: str = REVIEW_BROKER) -> dict[str, str]:
        """The environment for a child process (manage.py, gunicorn, celery) that works on this database."""
        return {
            **os.environ,
            "DATABASE_URL": self.url,
            "CELERY_BROKER_URL": broker,
            "DJANGO_SETTINGS_MODULE": "labelqa.settings",
        }

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env(), check=True, stdout=subprocess.DEVNULL
        )

    def recreate(self, *, template: ScratchDatabase | None = None) -> None:
        """Drop the database if a previous run left it, then create it migrated (or as a copy of `template`)."""
        self.drop()
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name))
        if template is not None:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template.name))
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(create)
        if template is None:
            self.manage("migrate", "--noinput", "-v0")

    def drop(self) -> None:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))

    def scalar(self, query: str):
        with psycopg.connect(self.url) as conn:
            return conn.execute(query).fetchone()[0]

    def use_in_this_process(self) -> None:
        """Set Django up in this process on the database, with tasks run in-process (nothing queued in Redis)."""
        os.environ["DATABASE_URL"] = self.url
        os.environ.pop("CELERY_BROKER_URL", None)
        os.environ["DJANGO_SETTINGS_MODULE"] = "labelqa.settings"
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()

    def close_django_connections(self) -> None:
        """Close this process's Django connections, so that the database can be dropped."""
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
