import io

import pytest
from django.core.management import CommandError, call_command

from labelqa.analytics.exports import label_rows
from labelqa.analytics.selectors import report_for_dataset
from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.models import ReviewerExclusion, Vote
from labelqa.review.selectors import aggregated_votes
from labelqa.review.services import (
    batch_lease,
    reviewer_exclude,
    reviewer_include,
    tallies_refresh,
    votes_submit,
)
from tests.conftest import seed_csv

pytestmark = pytest.mark.django_db


def review_first_batch(reviewer, dataset, confirm: bool):
    lease = batch_lease(reviewer=reviewer, dataset=dataset, label="Cat")
    ids = set(lease.batch.predictions.values_list("id", flat=True)) if confirm else set()
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=ids)
    return lease.batch


@pytest.fixture
def split_cats(pets, reviewer, reviewer2):
    """The 10 Cat images reviewed twice: alice confirms all, bob disconfirms all."""
    pets.reviews_per_item = 2
    pets.save()
    review_first_batch(reviewer, pets, confirm=True)
    review_first_batch(reviewer2, pets, confirm=False)
    return pets


def cat_row(dataset, consensus="unanimous"):
    report = report_for_dataset(dataset, consensus=consensus)
    return next(c for c in report["classes"] if c["label"] == "Cat")


def test_excluding_a_reviewer_drops_their_votes_from_the_report_but_keeps_them(split_cats, reviewer2, admin_user):
    assert (cat_row(split_cats)["reviewed"], cat_row(split_cats)["split"]) == (10, 10)

    reviewer_exclude(dataset=split_cats, reviewer=reviewer2, by=admin_user)

    row = cat_row(split_cats)
    assert (row["reviewed"], row["confirmed"], row["split"], row["disconfirmed"]) == (10, 10, 0, 0)
    assert Vote.objects.count() == 20
    assert set(Prediction.objects.filter(label="Cat").values_list("confirms", "disconfirms")) == {(1, 0)}
    assert ReviewerExclusion.objects.get().created_by == admin_user


def test_including_a_reviewer_again_restores_the_counts(split_cats, reviewer2, admin_user):
    reviewer_exclude(dataset=split_cats, reviewer=reviewer2, by=admin_user)
    assert reviewer_include(dataset=split_cats, reviewer=reviewer2) is True

    row = cat_row(split_cats)
    assert (row["reviewed"], row["confirmed"], row["split"]) == (10, 0, 10)
    assert Vote.objects.count() == 20
    assert not ReviewerExclusion.objects.exists()


def test_excluding_twice_or_including_a_reviewer_never_excluded_changes_nothing(split_cats, reviewer2, admin_user):
    first = reviewer_exclude(dataset=split_cats, reviewer=reviewer2, by=admin_user)
    assert reviewer_exclude(dataset=split_cats, reviewer=reviewer2, by=admin_user) == first
    assert ReviewerExclusion.objects.count() == 1
    reviewer_include(dataset=split_cats, reviewer=reviewer2)
    assert reviewer_include(dataset=split_cats, reviewer=reviewer2) is False


def test_excluding_marks_only_the_reviewers_images_stale(split_cats, reviewer2, admin_user):
    tallies_refresh(dataset_id=split_cats.pk)
    reviewer_exclude(dataset=split_cats, reviewer=reviewer2, by=admin_user)
    stale = set(Prediction.objects.filter(tally_stale=True).values_list("label", flat=True))
    assert stale == {"Cat"}
    assert Prediction.objects.filter(tally_stale=True).count() == 10


def test_dawid_skene_and_exports_skip_excluded_reviewers(split_cats, reviewer, reviewer2, admin_user):
    reviewer_exclude(dataset=split_cats, reviewer=reviewer, by=admin_user)
    assert set(aggregated_votes(split_cats).values_list("reviewer_id", flat=True)) == {reviewer2.pk}
    assert cat_row(split_cats, "dawid-skene")["disconfirmed"] == 10
    cats = [row for row in label_rows(split_cats, consensus="dawid-skene") if row["label"] == "Cat"]
    assert {row["status"] for row in cats} == {"disconfirmed"}


def test_an_exclusion_applies_to_its_dataset_only(split_cats, reviewer2, admin_user, tmp_path):
    predictions_import(dataset_name="other", stream=io.BytesIO(seed_csv({"Cat": 3})), images_root=str(tmp_path))
    reviewer_exclude(dataset=split_cats, reviewer=reviewer2, by=admin_user)
    other = Dataset.objects.get(name="other")
    review_first_batch(reviewer2, other, confirm=False)
    assert cat_row(other)["disconfirmed"] == 3


def test_recompute_aggregates_rebuilds_every_tally_of_a_dataset(split_cats, capsys):
    Prediction.objects.update(confirms=7, disconfirms=7, tally_stale=False)
    call_command("recompute_aggregates", "--dataset", "pets")
    assert "pets: recomputed 66 images" in capsys.readouterr().out
    assert set(Prediction.objects.filter(label="Cat").values_list("confirms", "disconfirms")) == {(1, 1)}
    assert set(Prediction.objects.exclude(label="Cat").values_list("confirms", "disconfirms")) == {(0, 0)}
    assert not Prediction.objects.filter(tally_stale=True).exists()


def test_recompute_aggregates_without_a_dataset_covers_all(split_cats, capsys):
    call_command("recompute_aggregates")
    assert "Recomputed 66 images in 1 dataset(s)" in capsys.readouterr().out


def test_recompute_aggregates_names_an_unknown_dataset(db):
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        call_command("recompute_aggregates", "--dataset", "nope")
