"""A classifier run killed halfway (SIGKILL) resumes without duplicates; the admin page shows its progress."""

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import Client
from PIL import Image as PILImage

from labelqa.catalog.classification import SAVE_EVERY, classification_execute
from labelqa.catalog.jobs import LOCK_NAMESPACES
from labelqa.catalog.models import ClassificationRun, Dataset, Image, Prediction
from tests.conftest import PASSWORD
from tests.live import ROOT, live_env, wait_until

IMAGES = SAVE_EVERY * 3


def write_images(folder: Path, count: int) -> None:
    rng = np.random.default_rng(7)
    for i in range(count):
        pixels = rng.integers(0, 255, size=(96, 128, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(folder / f"img-{i:04d}.jpg", quality=70)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_run_killed_halfway_resumes_and_classifies_every_image_once(tmp_path, admin_user):
    write_images(tmp_path, IMAGES)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "classify", "--dataset", "killed", "--images", str(tmp_path)],
        cwd=ROOT,
        env=live_env(""),  # no broker: in-process, so the kill hits the classifier itself
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    saved_a_chunk = Image.objects.filter(dataset__name="killed").exists
    wait_until(saved_a_chunk, timeout=120, what="classify saving its first chunk", process=process)
    process.send_signal(signal.SIGKILL)
    process.wait()

    run = ClassificationRun.objects.get(dataset__name="killed")
    saved = Image.objects.filter(dataset__name="killed").count()
    assert run.status == ClassificationRun.Status.RUNNING
    assert 0 < saved < IMAGES and saved % SAVE_EVERY == 0

    client = Client()
    client.login(username=admin_user.username, password=PASSWORD)
    progress = client.get(f"/datasets/runs/{run.pk}/progress.json").json()
    assert (progress["status"], progress["done"], progress["total"]) == ("running", saved, IMAGES)

    classification_execute(run.pk)  # what a redelivered task does

    run.refresh_from_db()
    assert run.status == ClassificationRun.Status.DONE and run.done == IMAGES
    paths = list(Image.objects.filter(dataset__name="killed").values_list("path", flat=True))
    assert len(paths) == len(set(paths)) == IMAGES
    assert Prediction.objects.filter(dataset__name="killed", batch__isnull=False).count() == IMAGES
    page = client.get(f"/datasets/runs/{run.pk}/").content.decode()
    assert 'id="run-bar"' in page and f"{IMAGES} of {IMAGES} images" in page


@pytest.mark.django_db
def test_only_admins_start_runs(reviewer, scientist):
    for user in (reviewer, scientist):
        client = Client()
        client.login(username=user.username, password=PASSWORD)
        assert client.post("/datasets/classify/", {"dataset": "x", "source": "/tmp"}).status_code == 403
    assert not ClassificationRun.objects.exists()


@pytest.mark.django_db
def test_a_missing_folder_is_refused_with_a_message(admin_user, tmp_path):
    client = Client()
    client.login(username=admin_user.username, password=PASSWORD)
    response = client.post("/datasets/classify/", {"dataset": "m", "source": str(tmp_path / "nope")})
    assert response.status_code == 200
    assert "is not a directory on the server" in response.content.decode()
    assert not ClassificationRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_another_worker_is_classifying_is_left_to_it(tmp_path):
    # A duplicate delivery of the task while the first worker is still at it: no second classifier on the same images.
    assert connection.vendor == "postgresql", "advisory locks tell a live worker from a killed one"
    write_images(tmp_path, 2)
    dataset = Dataset.objects.create(name="busy", images_root=str(tmp_path))
    run = ClassificationRun.objects.create(
        dataset=dataset, source=str(tmp_path), model=settings.LABELQA_MODEL, status=ClassificationRun.Status.RUNNING
    )
    other_worker = connections.create_connection("default")
    try:
        with other_worker.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACES[ClassificationRun], run.pk])
        assert classification_execute(run.pk).status == ClassificationRun.Status.RUNNING
        assert not Image.objects.filter(dataset=dataset).exists()
    finally:
        other_worker.close()
    assert classification_execute(run.pk).status == ClassificationRun.Status.DONE  # its worker gone, it resumes
    assert Image.objects.filter(dataset=dataset).count() == 2


@pytest.mark.django_db
def test_a_model_file_that_is_not_on_the_server_is_refused_on_its_field(admin_user, tmp_path):
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/datasets/classify/", {"dataset": "m", "source": str(tmp_path), "model": str(tmp_path / "none.pt")}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["model"][0].startswith(f"there is no model file {tmp_path / 'none.pt'}")
    assert not Dataset.objects.exists() and not ClassificationRun.objects.exists()
