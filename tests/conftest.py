"""Fixtures shared by the whole suite: the three roles and a small dataset (as healthchecks' hc/test.py does)."""

import io

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.files.storage import FileSystemStorage
from django.db import OperationalError, connections
from PIL import Image as PILImage

from labelqa import roles
from labelqa.catalog.services import predictions_import
from labelqa.celery import app as celery_app

PASSWORD = "correct-horse-battery-staple"


def make_user(username: str, role: str | None):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    if role:
        roles.grant_role(user, role)
    return user


@pytest.fixture
def reviewer(db):
    return make_user("alice", roles.REVIEWER)


@pytest.fixture
def reviewer2(db):
    return make_user("bob", roles.REVIEWER)


@pytest.fixture
def scientist(db):
    return make_user("carol", roles.SCIENTIST)


@pytest.fixture
def admin_user(db):
    return make_user("dave", roles.ADMIN)


def seed_csv(counts: dict[str, int], confidence=lambda label, i: 80 + (i * 7) % 20) -> bytes:
    """Return a headerless seed-format CSV with `counts[label]` images per label."""
    lines = []
    for label, n in counts.items():
        for i in range(n):
            lines.append(f"images/{label.lower()}-{i:04d}.jpg,{label},{confidence(label, i):.4f}")
    return ("\n".join(lines) + "\n").encode()


def jpeg(color="gray", size=(640, 480)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


def tiff(colour: str) -> bytes:
    """A 3000×1500 deflate TIFF: browsers cannot show it, so the zoom serves a rendition."""
    buffer = io.BytesIO()
    PILImage.new("RGB", (3000, 1500), colour).save(buffer, "TIFF", compression="tiff_deflate")
    return buffer.getvalue()


@pytest.fixture
def pets(db, tmp_path):
    """A dataset of 30 Dog, 10 Cat and 26 Fox predictions (2, 1 and 2 batches of 25), each a real (tiny) JPEG."""
    csv = seed_csv({"Dog": 30, "Cat": 10, "Fox": 26})
    (tmp_path / "images").mkdir(exist_ok=True)
    picture = jpeg(size=(16, 12))
    for line in csv.decode().splitlines():
        (tmp_path / line.split(",")[0]).write_bytes(picture)
    predictions_import(dataset_name="pets", stream=io.BytesIO(csv), images_root=str(tmp_path))
    from labelqa.catalog.models import Dataset

    return Dataset.objects.get(name="pets")


@pytest.fixture
def spooled(monkeypatch, settings) -> list[int]:
    """Record the size of each chunk of an upload written to a temporary file, by Django's handler or ours.

    Django's default handlers keep a request up to FILE_UPLOAD_MAX_MEMORY_SIZE in memory and spool a larger one to
    disk whole: with that at 0, a small test file shows what they would do with a large one.
    """
    from django.core.files.uploadhandler import TemporaryFileUploadHandler

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    written: list[int] = []
    receive = TemporaryFileUploadHandler.receive_data_chunk

    def recording(handler, raw_data: bytes, start: int):
        written.append(len(raw_data))
        return receive(handler, raw_data, start)

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", recording)
    return written


@pytest.fixture
def eager_celery(settings):
    """Run tasks in this process even when make test points Celery at Redis (no gpu worker runs in tests)."""
    # Read before the override: the first read loads Celery's config from the settings, and reading it after
    # would load (and later "restore") True, leaving every later test eager.
    previous = celery_app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache, as a fresh process would (cached results key on row values)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Keep stored files (thumbnails, uploads) under each test's tmp dir instead of var/media."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": f"{FileSystemStorage.__module__}.{FileSystemStorage.__qualname__}",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    return tmp_path / "media"


@pytest.fixture
def start_worker(tmp_path, media_root):
    """Start `celery worker` processes on the test database, the suite's broker and the test's media root.

    Keyword arguments become environment variables of the worker (e.g. a short visibility timeout).
    The workers are stopped after the test.
    """
    from tests.live import live_env, start_celery_worker, stop  # tests.live imports this module's PASSWORD

    assert not django_settings.CELERY_TASK_ALWAYS_EAGER, "live worker tests need CELERY_BROKER_URL (make test sets it)"
    assert not celery_app.conf.task_always_eager, "an earlier test left Celery eager: no task would reach the worker"
    celery_app.control.purge()  # tasks left by other tests point at rows that no longer exist
    workers = []

    def start(**env):
        log = tmp_path / f"worker-{len(workers)}.log"
        storage = {"LABELQA_STORAGE": "local", "LABELQA_MEDIA_ROOT": str(media_root)}
        workers.append(start_celery_worker(live_env(django_settings.CELERY_BROKER_URL, **storage, **env), log))
        return workers[-1]

    yield start
    for worker in workers:
        stop(worker)


@pytest.fixture
def live_worker(start_worker):
    return start_worker()


def row_locked(table: str, row_id: int) -> bool:
    """Tell whether another connection holds the row's lock, from a connection of its own."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [row_id])
        return False
    except OperationalError:
        return True
    finally:
        other.close()
