"""`manage.py classify` over a folder: a real photo gets a sensible label, a broken file is flagged, reruns resume."""

import io
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils.html import escape

from labelqa.catalog.classification import RunRefused, classification_start
from labelqa.catalog.models import ClassificationRun, Dataset, Image, Prediction

DEMO = Path(__file__).resolve().parents[2] / "labelqa" / "catalog" / "demo" / "images"
CAT_CLASSES = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


# transaction=True: the run is enqueued on commit, as it is outside tests.
@pytest.mark.django_db(transaction=True)
def test_classify_labels_a_cat_flags_a_broken_file_and_a_rerun_adds_nothing(tmp_path, eager_celery, admin_user):
    shutil.copy(DEMO / "chelsea.jpg", tmp_path / "chelsea.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "empty.png").write_bytes(b"")

    assert classify(tmp_path).endswith(": 1 classified, 2 flagged as unreadable\n")

    cat = Prediction.objects.get(image__path="chelsea.jpg")
    assert cat.label in CAT_CLASSES and cat.confidence > 20
    assert len(cat.top_k) == 5 and cat.top_k[0][0] == cat.label
    assert cat.batch is not None
    flagged = dict(Image.objects.exclude(problem="").values_list("path", "problem"))
    assert set(flagged) == {"broken.jpg", "empty.png"}
    assert not Prediction.objects.filter(image__path__in=flagged).exists()
    run = ClassificationRun.objects.get()
    assert sorted(run.flagged_files) == sorted(f"{path}: {problem}" for path, problem in flagged.items())
    admin = Client()
    admin.force_login(admin_user)
    page = admin.get(f"/datasets/runs/{run.pk}/").content.decode()
    assert '<div id="run-flagged" data-progress-flagged-box >' in page
    assert f"<li>{escape(run.flagged_files[0])}</li>" in page
    assert admin.get(f"/datasets/runs/{run.pk}/progress.json").json()["flagged_files"] == run.flagged_files

    shutil.copy(DEMO / "coffee.jpg", tmp_path / "coffee.jpg")
    second = classify(tmp_path)
    latest = ClassificationRun.objects.first()
    assert second == f"Run {latest.pk} on 'cats': 1 classified, 2 flagged as unreadable, 1 already done\n"
    assert latest.status == "done" and latest.total == 4 and latest.done == 4
    assert sorted(latest.flagged_files) == sorted(run.flagged_files), "files an earlier run found unusable are listed"
    assert Image.objects.filter(dataset__name="cats").count() == 4
    assert Prediction.objects.get(image__path="coffee.jpg").label in {"espresso", "cup", "coffee mug"}

    assert classify(tmp_path).endswith(": 0 classified, 2 flagged as unreadable, 2 already done\n")


def classify(folder: Path) -> str:
    """Run the command over the folder into dataset cats; return what it printed."""
    out = io.StringIO()
    call_command("classify", "--dataset", "cats", "--images", str(folder), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def classify_no_wait(*args: str) -> None:
    # --no-wait: a run that was wrongly started is left queued, not waited for (no gpu worker runs in tests).
    call_command("classify", "--dataset", "cats", "--no-wait", *args)


@pytest.mark.django_db
@pytest.mark.parametrize("size", ["-3", "0", "many"])
def test_a_batch_size_that_is_no_positive_number_is_refused_naming_the_flag(tmp_path, settings, size):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with pytest.raises(CommandError, match="--batch-size"):
        classify_no_wait("--images", str(tmp_path), "--batch-size", size)
    assert not Dataset.objects.exists() and not ClassificationRun.objects.exists()


@pytest.mark.django_db
def test_a_model_file_that_is_not_here_is_refused_before_anything_is_made(tmp_path, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    missing = tmp_path / "none.pt"
    with pytest.raises(CommandError, match=f"no model file {missing} on this machine; give the path of a TorchScript"):
        classify_no_wait("--images", str(tmp_path), "--model", str(missing))
    assert not Dataset.objects.exists() and not ClassificationRun.objects.exists()


@pytest.mark.django_db
def test_the_service_refuses_a_batch_size_below_one_without_making_a_dataset(tmp_path):
    with pytest.raises(RunRefused, match="1 or more, not 0") as refused:
        classification_start(dataset_name="cats", source=str(tmp_path), batch_size=0)
    assert refused.value.field == "batch_size"
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_a_queued_run_prints_the_address_of_its_page(tmp_path, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    out = io.StringIO()
    call_command("classify", "--dataset", "cats", "--images", str(tmp_path), "--no-wait", stdout=out)
    run = ClassificationRun.objects.get()
    assert out.getvalue() == f"Queued run {run.pk} on the gpu queue; its progress: /datasets/runs/{run.pk}/\n"
