"""Deleting a dataset: everything in it goes, a statement per table; nothing of another dataset does."""

import io

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.db import connections
from django.test import Client

from labelqa.catalog import deletion, services
from labelqa.catalog.deletion import DatasetBusy, dataset_delete, dataset_deletion_counts, rows_delete
from labelqa.catalog.jobs import DATASET_RUNS_NAMESPACE
from labelqa.catalog.models import ClassificationRun, Dataset, Image, ImportJob, Prediction
from labelqa.catalog.services import predictions_import, thumbnails_make
from labelqa.catalog.storage import thumbnail_key, thumbnail_save, zoom_key, zoom_save
from labelqa.review.corrections import correction_lease, corrections_open
from labelqa.review.gold import gold_mark
from labelqa.review.models import Batch, CorrectionPass, LeasedGold, Vote
from labelqa.review.services import batch_lease, reviewer_exclude, votes_submit
from tests.conftest import jpeg, row_locked, seed_csv


def reviewed(dataset: Dataset, reviewer, reviewer2) -> None:
    """Give the dataset a row of every kind that hangs off a dataset, and cached files in storage."""
    submitted = batch_lease(reviewer=reviewer, dataset=dataset)
    ids = list(Prediction.objects.filter(batch_id=submitted.batch_id).values_list("id", flat=True))
    votes_submit(reviewer=reviewer, batch_id=submitted.batch_id, token=str(submitted.token), confirmed_ids=set(ids[1:]))
    open_lease = batch_lease(reviewer=reviewer2, dataset=dataset)  # a grid still open
    gold = Prediction.objects.filter(dataset=dataset).exclude(batch_id=open_lease.batch_id).last()
    gold_mark(prediction=gold, expect_confirm=True, truth=gold.label)
    LeasedGold.objects.create(lease=open_lease, prediction=gold, reviewer=reviewer2)
    corrections_open(dataset=dataset)
    assert correction_lease(reviewer=reviewer2, dataset=dataset) is not None
    reviewer_exclude(dataset=dataset, reviewer=reviewer2, by=None)
    ClassificationRun.objects.create(dataset=dataset, source=dataset.images_root, model="efficientnet-lite0")
    ImportJob.objects.create(dataset_name=dataset.name, dataset=dataset, file_name="p.csv")
    image = Image.objects.filter(dataset=dataset).first()
    thumbnail_save(thumbnail_key(dataset.pk, image.pk), b"thumbnail")
    zoom_save(zoom_key(dataset.pk, image.pk, b"file"), b"zoom")


def files_under(media_root, dataset: Dataset) -> list:
    folders = (media_root / "thumbnails" / str(dataset.pk), media_root / "zooms" / str(dataset.pk))
    return sorted(path for folder in folders if folder.exists() for path in folder.rglob("*") if path.is_file())


def rows_by_model() -> dict[str, int]:
    return {
        m.__name__: m._base_manager.count() for m in apps.get_models() if m._meta.app_label in ("catalog", "review")
    }


@pytest.fixture
def two_datasets(pets, reviewer, reviewer2, tmp_path):
    """pets and other, each reviewed; return pets."""
    owls = seed_csv({"Owl": 30})
    for line in owls.decode().splitlines():  # real files: a flagged image is offered to no correction
        (tmp_path / line.split(",")[0]).write_bytes(jpeg(size=(16, 12)))
    predictions_import(dataset_name="other", stream=io.BytesIO(owls), images_root=str(tmp_path))
    for dataset in Dataset.objects.all():
        reviewed(dataset, reviewer, reviewer2)
    return pets


@pytest.mark.django_db
def test_a_dataset_goes_with_every_row_and_file_in_it_and_nothing_of_another(
    two_datasets, media_root, eager_celery, django_capture_on_commit_callbacks
):
    pets = two_datasets
    other = Dataset.objects.get(name="other")
    counts = {model.__name__: n for model, n in dataset_deletion_counts(pets).items()}
    before = rows_by_model()
    assert all(counts.get(name) for name in ("Image", "Prediction", "Batch", "Lease", "Vote", "GoldItem")), counts
    assert all(counts.get(name) for name in ("LeasedGold", "Correction", "CorrectionPass", "ReviewerExclusion")), counts

    with django_capture_on_commit_callbacks(execute=True):
        deleted = dataset_delete(pets)

    after = rows_by_model()
    assert {name: before[name] - after[name] for name in before if before[name] != after[name]} == counts
    assert deleted == sum(counts.values())
    assert not Dataset.objects.filter(name="pets").exists()
    assert ImportJob.objects.filter(dataset_name="pets", dataset=None).count() == 1, "the upload's record is kept"
    # The other dataset is whole: its own counts, and every prediction in a batch.
    other_counts = {model.__name__: n for model, n in dataset_deletion_counts(other).items()}
    assert other_counts["Prediction"] == 30 and other_counts["Vote"] > 0
    assert not Prediction.objects.filter(dataset=other, batch=None).exists()
    # Cached files: the task (in-process here) removed those of pets only.
    assert files_under(media_root, pets) == []
    assert not [folder for folder in ("thumbnails", "zooms") if (media_root / folder / str(pets.pk)).exists()]
    assert [path.parts[-3:] for path in files_under(media_root, other)] == [
        ("thumbnails", str(other.pk), f"{Image.objects.filter(dataset=other).first().pk}.webp"),
        (str(other.pk), str(Image.objects.filter(dataset=other).first().pk), zoom_key(0, 0, b"file").split("/")[-1]),
    ]


@pytest.mark.django_db
def test_a_thumbnail_pass_queued_for_a_dataset_deleted_since_does_nothing(pets):
    dataset_id = pets.pk
    dataset_delete(pets)
    made = thumbnails_make(dataset_id=dataset_id)
    assert (made.made, made.flagged, made.more) == (0, 0, False)


@pytest.mark.django_db
def test_the_admin_confirms_with_counts_and_deletes_in_bulk(two_datasets, admin_user):
    pets = two_datasets
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/catalog/dataset/{pets.pk}/delete/").content.decode()
    assert "<li>pets: 1 dataset, 1 correction pass, 1 reviewer exclusion, " in page
    assert ", 66 images, 66 predictions, " in page
    assert f"<li>Votes: {Vote.objects.filter(prediction__dataset=pets).count()}</li>" in page
    assert client.post(f"/admin/catalog/dataset/{pets.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Dataset.objects.filter(pk=pets.pk).exists()
    assert Dataset.objects.filter(name="other").exists()


@pytest.mark.django_db
def test_only_someone_who_may_delete_every_kind_of_row_in_it_may_delete_a_dataset(two_datasets, admin_user):
    pets = two_datasets
    admin_user.groups.clear()
    admin_user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="catalog").exclude(codename="delete_image")
    )
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/catalog/dataset/{pets.pk}/delete/").content.decode()
    assert "your account doesn't have permission to delete the following types of objects" in page
    assert "<li>image</li>" in page and "<li>vote</li>" in page
    assert client.post(f"/admin/catalog/dataset/{pets.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Dataset.objects.filter(pk=pets.pk).exists()


@pytest.mark.django_db
def test_a_dataset_a_classifier_run_is_working_on_is_not_deleted(pets, admin_user):
    """Deleted under a live run, the run failed on its next image; the admin now says why it cannot be deleted."""
    worker = connections.create_connection("default")  # a classifier run's worker, holding the dataset's turn
    try:
        with worker.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [DATASET_RUNS_NAMESPACE, pets.pk])
        with pytest.raises(DatasetBusy, match="a classifier run is working on dataset 'pets'"):
            dataset_delete(pets)
        client = Client()
        client.force_login(admin_user)
        page = client.get(f"/admin/catalog/dataset/{pets.pk}/delete/").content.decode()
        assert "<li>a classifier run is working on dataset &#x27;pets&#x27;: delete the dataset once" in page
        refused = client.post(f"/admin/catalog/dataset/{pets.pk}/delete/", {"post": "yes"})
        assert refused.status_code == 200 and "a classifier run is working on" in refused.content.decode()
        assert Dataset.objects.filter(pk=pets.pk).exists()
    finally:
        # The run ends. Unlocked first: a closed connection's locks go only once its server process has ended,
        # which a busy machine may not have done by the next statement.
        with worker.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [DATASET_RUNS_NAMESPACE, pets.pk])
        worker.close()
    dataset_delete(pets)
    assert not Dataset.objects.filter(pk=pets.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_no_writer_into_the_dataset_gets_past_its_first_lock_while_it_is_deleted(
    two_datasets, monkeypatch, eager_celery
):
    """Deleted while reviewers worked, it left votes of submits that landed between its statements, pointing nowhere."""
    pets = two_datasets
    batch = Batch.objects.filter(dataset=pets).first()
    correction_pass = CorrectionPass.objects.get(dataset=pets)
    held = []

    def deleting(queryset):
        tables = {"catalog_dataset": pets.pk, "review_batch": batch.pk, "review_correctionpass": correction_pass.pk}
        held.append({table: row_locked(table, row_id) for table, row_id in tables.items()})
        return rows_delete(queryset)

    monkeypatch.setattr(deletion, "rows_delete", deleting)
    dataset_delete(pets)
    assert held == [{"catalog_dataset": True, "review_batch": True, "review_correctionpass": True}]


@pytest.mark.django_db
def test_the_cascade_follows_relations_without_a_reverse_name(pets, reviewer):
    """LeasedGold.prediction has related_name "+": deleting predictions left those rows pointing nowhere."""
    gold = Prediction.objects.filter(dataset=pets).first()
    lease = batch_lease(reviewer=reviewer, dataset=pets)
    LeasedGold.objects.create(lease=lease, prediction=gold, reviewer=reviewer)
    deleted = rows_delete(Prediction.objects.filter(pk=gold.pk))
    assert {model: n for model, n in deleted.items() if n} == {LeasedGold: 1, Prediction: 1}
    assert not LeasedGold.objects.exists()


@pytest.mark.django_db
def test_a_thumbnail_pass_that_outlives_its_dataset_leaves_no_file(pets, media_root, monkeypatch):
    """Its files task ran at the deletion's commit; the pass went on saving the rest of its chunk after it."""
    made = []
    original = services._thumbnail_checked_in_pass

    def check_then_delete_the_dataset(image, images_root):
        made.append(original(image, images_root))
        if len(made) == 1:
            dataset_delete(pets)  # the admin, while the pass is at its first image
        return made[-1]

    monkeypatch.setattr(services, "_thumbnail_checked_in_pass", check_then_delete_the_dataset)
    thumbnails_make(dataset_id=pets.pk)
    assert len(made) > 1 and all(made), "the chunk's thumbnails were made and saved"
    assert files_under(media_root, pets) == []
    assert not [folder for folder in ("thumbnails", "zooms") if (media_root / folder / str(pets.pk)).exists()]
