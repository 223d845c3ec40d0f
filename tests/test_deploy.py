"""The deployment files: docker-compose.yml runs every production process with settings the app really reads.

No Docker engine runs here, so the compose file is read as YAML, its ${…} references are resolved the way
Compose resolves them, and the resulting environment is handed to Django's own deployment check.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "web", "worker", "gpu-worker")
# boto3 reads the credentials itself; settings.py leaves them to it (README, "Configuration").
READ_BY_BOTO3 = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
REFERENCE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def interpolate(value: str, given: dict[str, str]) -> str:
    """Resolve ${NAME}, ${NAME:-default} and ${NAME:?error} as Compose does; raise ValueError for a missing ${:?}."""

    def resolve(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        present = name in given and (given[name] != "" or not (op or "").startswith(":"))
        if present:
            return given[name]
        if op and op.endswith("?"):
            raise ValueError(f"{name}: {arg}")
        return arg if op else ""

    return REFERENCE.sub(resolve, value)


def resolved_environment(service: dict, given: dict[str, str]) -> dict[str, str]:
    return {name: interpolate(str(value), given) for name, value in service["environment"].items()}


def settings_variables() -> set[str]:
    """Return the environment variable names labelqa/settings.py reads through django-environ."""
    source = (ROOT / "labelqa" / "settings.py").read_text()
    return set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z0-9_]+)\"", source))


def test_compose_runs_every_production_process(compose):
    services = compose["services"]
    assert {"postgres", "redis", "s3", "migrate", "web", "worker", "gpu-worker", "beat"} <= services.keys()
    assert services["web"]["command"][:2] == ["gunicorn", "labelqa.wsgi"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    queue_of = {}
    for name in ("worker", "gpu-worker"):
        command = services[name]["command"]
        assert command[:4] == ["celery", "-A", "labelqa", "worker"]
        queue_of[name] = command[command.index("-Q") + 1]
    # The default queue takes aggregation; the classifier is routed to `gpu` (settings.CELERY_TASK_ROUTES).
    assert queue_of == {"worker": "celery", "gpu-worker": "gpu"}
    # Without beat nothing sweeps the tallies left stale while Redis was down (settings.CELERY_BEAT_SCHEDULE).
    assert services["beat"]["command"][:4] == ["celery", "-A", "labelqa", "beat"]
    for name in ("web", "worker", "gpu-worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_sets_only_variables_the_app_reads(compose):
    known = settings_variables()
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "LABELQA_STORAGE", "AWS_STORAGE_BUCKET_NAME"} <= known
    for name in APP_SERVICES:
        unknown = set(compose["services"][name]["environment"]) - known - READ_BY_BOTO3
        assert not unknown, f"{name} sets {sorted(unknown)}, which labelqa/settings.py does not read"


def test_compose_refuses_to_start_without_a_secret_key(compose):
    with pytest.raises(ValueError, match="DJANGO_SECRET_KEY"):
        resolved_environment(compose["services"]["web"], given={})


def test_compose_environment_passes_the_deployment_check_with_postgres_redis_and_s3(compose):
    env = resolved_environment(compose["services"]["web"], given={"DJANGO_SECRET_KEY": secrets.token_urlsafe(60)})
    probe = (
        "import json, django; django.setup(); "
        "from django.conf import settings; from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING'); "
        "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
        "'storage': settings.STORAGES['default']['BACKEND'], 'eager': settings.CELERY_TASK_ALWAYS_EAGER, "
        "'bucket': settings.STORAGES['default']['OPTIONS']['bucket_name'], 'secure': settings.SESSION_COOKIE_SECURE, "
        "'cache': settings.CACHES['default']['BACKEND']}))"
    )
    # Only the compose environment (plus what starts Python): a variable this machine happens to set cannot help.
    base = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**base, **env, "DJANGO_SETTINGS_MODULE": "labelqa.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "engine": "django.db.backends.postgresql",
        "storage": "storages.backends.s3.S3Storage",
        "eager": False,
        "bucket": "labelqa",
        "secure": True,
        "cache": "django.core.cache.backends.redis.RedisCache",
    }


def test_with_a_cache_url_every_process_shares_the_re_rank_throttle():
    """Each worker process has its own memory cache; LABELQA_CACHE_URL makes `cache.add` hold across processes."""
    redis_url = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0"
    key = f"rerank-scheduled:test-{secrets.token_hex(8)}"
    probe = f"import django; django.setup(); from django.core.cache import cache; print(cache.add({key!r}, 1, 30))"

    def add_in_a_new_process(cache_url: str | None) -> str:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "labelqa.settings"}
        env.pop("LABELQA_CACHE_URL", None)
        if cache_url:
            env["LABELQA_CACHE_URL"] = cache_url
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    assert [add_in_a_new_process(None) for _ in range(2)] == ["True", "True"]
    assert [add_in_a_new_process(redis_url) for _ in range(2)] == ["True", "False"]


def test_dockerfile_installs_the_requirements_collects_static_and_serves_with_gunicorn():
    instructions = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert instructions[0] == "FROM python:3.11-slim"
    runs = [line for line in instructions if line.startswith("RUN ")]
    assert any("pip install -r requirements.txt" in line for line in runs)
    assert any("manage.py collectstatic --noinput" in line for line in runs)
    cmd = json.loads(next(line for line in instructions if line.startswith("CMD "))[4:])
    assert cmd[:2] == ["gunicorn", "labelqa.wsgi"]
    # Without these the build context would carry the virtual environment and local data into the image.
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)
