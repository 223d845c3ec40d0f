"""LABELQA_IMAGE_ROOTS and LABELQA_MODEL_DIRS: where datasets may read images from and runs load models from."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from labelqa.catalog.classification import RunRefused, classification_start
from labelqa.catalog.models import ClassificationRun, Dataset, ImportJob
from labelqa.catalog.storage import ImageUnavailable, read_image, root_refusal
from tests.catalog.test_import_jobs import upload
from tests.conftest import jpeg, seed_csv
from worker.model_files import DEFAULT_MODEL


@pytest.fixture
def allowed(settings, tmp_path):
    """Allow one local directory and one S3 prefix; return the local one."""
    root = tmp_path / "allowed"
    root.mkdir()
    settings.LABELQA_IMAGE_ROOTS = [str(root), "s3://photos/team-a"]
    return root


def test_with_no_list_every_root_is_allowed(settings, tmp_path):
    settings.LABELQA_IMAGE_ROOTS = []
    assert root_refusal(str(tmp_path)) is None
    assert root_refusal("s3://any/where") is None


def test_roots_under_an_allowed_one_are_allowed(allowed):
    assert root_refusal(str(allowed)) is None
    assert root_refusal(str(allowed / "cats" / "2026")) is None
    assert root_refusal("s3://photos/team-a") is None
    assert root_refusal("s3://photos/team-a/") is None
    assert root_refusal("s3://photos/team-a/cats") is None


def test_roots_outside_every_allowed_one_are_refused_with_the_list(allowed, tmp_path):
    (tmp_path / "allowed-too").mkdir()
    (allowed / "escape").symlink_to(tmp_path)
    refused = [
        str(tmp_path),
        str(tmp_path / "allowed-too"),  # a shared beginning is not a parent directory
        f"{allowed}/../allowed-too",
        str(allowed / "escape"),  # a link inside the allowed directory that leads out of it
        "s3://photos",
        "s3://photos/team-ab",
        "s3://other/team-a",
        "/etc",
    ]
    for root in refused:
        message = root_refusal(root)
        assert message is not None, root
        assert message.startswith(f"{root} is not under an images root this server allows")
        assert f"(LABELQA_IMAGE_ROOTS: {allowed}, s3://photos/team-a)" in message


def test_a_local_root_never_matches_an_s3_prefix_or_the_other_way(settings, tmp_path):
    settings.LABELQA_IMAGE_ROOTS = ["s3://photos"]
    assert root_refusal(str(tmp_path)) is not None
    settings.LABELQA_IMAGE_ROOTS = [str(tmp_path)]
    assert root_refusal(f"s3:/{tmp_path}") is not None


@pytest.mark.django_db
def test_the_import_command_refuses_a_root_outside_and_creates_nothing(allowed, tmp_path):
    csv_path = tmp_path / "p.csv"
    csv_path.write_bytes(seed_csv({"Dog": 3}))
    with pytest.raises(CommandError, match="is not under an images root this server allows"):
        call_command("import_predictions", str(csv_path), "--dataset", "pets", "--images-root", str(tmp_path))
    # Without --images-root a new dataset reads from the file's folder, which is outside too.
    with pytest.raises(CommandError, match=f"{tmp_path} is not under an images root"):
        call_command("import_predictions", str(csv_path), "--dataset", "pets")
    assert not Dataset.objects.exists()
    call_command("import_predictions", str(csv_path), "--dataset", "pets", "--images-root", str(allowed))
    assert Dataset.objects.get().predictions.count() == 3


@pytest.mark.django_db
def test_the_upload_form_refuses_a_root_outside_before_looking_for_it(admin_user, allowed, tmp_path):
    client = Client()
    client.force_login(admin_user)
    missing = tmp_path / "no-such-folder"
    response = upload(client, seed_csv({"Dog": 3}), images_root=str(missing))
    assert response.status_code == 200
    errors = response.context["form"].errors["images_root"]
    # Not "There is no directory …": the page says nothing of what exists outside the allowed roots.
    assert len(errors) == 1 and errors[0].startswith(f"{missing} is not under an images root this server allows")
    assert not ImportJob.objects.exists() and not Dataset.objects.exists()


@pytest.mark.django_db
def test_a_classifier_run_over_a_folder_outside_is_refused_on_its_field(admin_user, allowed, tmp_path):
    client = Client()
    client.force_login(admin_user)
    response = client.post("/datasets/classify/", {"dataset": "m", "source": str(tmp_path)})
    assert response.status_code == 200
    [error] = response.context["form"].errors["source"]
    assert error.startswith(f"{tmp_path} is not under an images root this server allows")
    assert not Dataset.objects.exists() and not ClassificationRun.objects.exists()


@pytest.mark.django_db
def test_the_admin_refuses_to_move_a_dataset_outside(admin_user, allowed, tmp_path):
    dataset = Dataset.objects.create(name="pets", images_root=str(allowed))
    client = Client()
    client.force_login(admin_user)
    form = {"name": "pets", "images_root": str(tmp_path), "batch_size": 25, "reviews_per_item": 1}
    form |= {"consensus": "unanimous", "shuffle_seed": 0, "gold_rate": 0}
    response = client.post(f"/admin/catalog/dataset/{dataset.pk}/change/", form)
    assert response.status_code == 200
    assert root_refusal(str(tmp_path)) in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.images_root == str(allowed)


def test_a_root_named_before_the_list_was_set_is_not_read_any_more(allowed, tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg())
    (allowed / "a.jpg").write_bytes(jpeg())
    assert read_image(str(allowed), "a.jpg") == jpeg()
    with pytest.raises(ImageUnavailable, match=r"images root is not one this server allows \(LABELQA_IMAGE_ROOTS\)"):
        read_image(str(tmp_path), "a.jpg")


@pytest.mark.django_db
def test_a_model_file_outside_the_model_directories_is_refused_before_anything_is_made(settings, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "escape").symlink_to(tmp_path)
    settings.LABELQA_MODEL_DIRS = [str(models)]
    settings.LABELQA_MODEL = str(tmp_path / "configured.pt")
    for model in (tmp_path / "other.pt", models / "escape" / "other.pt", models / ".." / "other.pt"):
        with pytest.raises(RunRefused, match=rf"^{model} is not in a directory this server loads models from") as no:
            classification_start(dataset_name="cats", source=str(tmp_path), model=str(model))
        assert no.value.field == "model"
        assert f"(LABELQA_MODEL_DIRS: {models})" in str(no.value)
    # Inside, the file is looked for; the built-in model and the configured one are allowed wherever they are.
    with pytest.raises(RunRefused, match="there is no model file"):
        classification_start(dataset_name="cats", source=str(tmp_path), model=str(models / "none.pt"))
    with pytest.raises(RunRefused, match="there is no model file"):
        classification_start(dataset_name="cats", source=str(tmp_path), model=settings.LABELQA_MODEL)
    assert not Dataset.objects.exists() and not ClassificationRun.objects.exists()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    classification_start(dataset_name="cats", source=str(tmp_path), model=DEFAULT_MODEL)
    assert ClassificationRun.objects.get().model == DEFAULT_MODEL
