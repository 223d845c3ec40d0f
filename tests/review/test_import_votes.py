import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from labelqa.catalog.models import Prediction
from labelqa.review.models import Batch, Vote
from labelqa.review.services import batch_lease


@pytest.mark.django_db
def test_votes_import_creates_unknown_reviewers_without_a_usable_password(pets, tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text(
        "image,reviewer,verdict\nimages/dog-0000.jpg,gt-worker-1,confirm\nimages/dog-0001.jpg,gt-worker-1,disconfirm\n"
    )
    call_command("import_votes", str(path), "--dataset", "pets")
    worker = get_user_model().objects.get(username="gt-worker-1")
    assert not worker.has_usable_password()
    assert worker.groups.filter(name="reviewer").exists()
    assert sorted(Vote.objects.values_list("prediction__image__path", "confirm")) == [
        ("images/dog-0000.jpg", True),
        ("images/dog-0001.jpg", False),
    ]


@pytest.mark.django_db
def test_votes_import_is_all_or_nothing(pets, tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text(
        "image,reviewer,verdict\nimages/dog-0000.jpg,w1,confirm\nmissing.jpg,w1,confirm\nimages/dog-0002.jpg,w1,maybe\n"
    )
    with pytest.raises(CommandError) as error:
        call_command("import_votes", str(path), "--dataset", "pets")
    message = str(error.value)
    # Found in two passes (fields, then images), reported in line order.
    assert message.index("line 3: image 'missing.jpg' is not in dataset 'pets'") < message.index(
        "line 4: verdict 'maybe' must be confirm or disconfirm"
    )
    assert Vote.objects.count() == 0
    assert not get_user_model().objects.filter(username="w1").exists()


@pytest.mark.django_db
def test_reviewer_names_that_cannot_be_accounts_are_named_by_line(pets, tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text(
        "image,reviewer,verdict\nimages/dog-0000.jpg,John Smith,confirm\nimages/dog-0001.jpg,ok-worker,confirm\n"
        "images/dog-0002.jpg,John Smith,confirm\nimages/dog-0003.jpg,job:7,confirm\n"
    )
    with pytest.raises(CommandError) as error:
        call_command("import_votes", str(path), "--dataset", "pets")
    lines = [line.split(":")[0] for line in str(error.value).splitlines() if line.startswith("line ")]
    assert lines == ["line 2", "line 4", "line 5"]
    assert "line 2: reviewer 'John Smith' cannot be an account name: Enter a valid username." in str(error.value)
    assert Vote.objects.count() == 0 and not get_user_model().objects.filter(username="ok-worker").exists()


@pytest.mark.django_db
def test_reviewer_names_are_read_as_the_login_form_reads_them(pets, tmp_path, reviewer):
    path = tmp_path / "votes.csv"
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in reviewer.username)  # "ａｌｉｃｅ"
    path.write_text(f"image,reviewer,verdict\nimages/dog-0000.jpg,{full_width},confirm\n", encoding="utf-8")
    call_command("import_votes", str(path), "--dataset", "pets")
    assert list(Vote.objects.values_list("reviewer__username", flat=True)) == [reviewer.username]
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_imported_votes_count_as_reviews_when_leasing(pets, tmp_path, reviewer, reviewer2):
    """A reviewer whose imported votes cover a batch never gets it again, and the batch counts their review."""
    cat_paths = sorted(Prediction.objects.filter(dataset=pets, label="Cat").values_list("image__path", flat=True))
    dog_batch = Batch.objects.filter(dataset=pets, label="Dog").order_by("pk").first()
    dog_paths = sorted(dog_batch.predictions.values_list("image__path", flat=True))
    name = reviewer.username
    lines = [f"{path},{name},confirm" for path in cat_paths] + [f"{dog_paths[0]},{name},disconfirm"]
    path = tmp_path / "votes.csv"
    path.write_text("image,reviewer,verdict\n" + "\n".join(lines) + "\n")
    call_command("import_votes", str(path), "--dataset", "pets")

    cat_batch = Batch.objects.get(dataset=pets, label="Cat")
    assert cat_batch.reviews_done == 1  # every Cat voted: one review; the Dog batch only in part
    assert Batch.objects.get(pk=dog_batch.pk).reviews_done == 0
    served = []
    while (lease := batch_lease(reviewer=reviewer, dataset=pets)) is not None:
        served.append(lease.batch_id)
        lease.submitted_at = lease.expires_at  # stand in for a submit: only which batches come is asserted
        lease.save()
    assert cat_batch.pk not in served and dog_batch.pk in served
    assert batch_lease(reviewer=reviewer2, dataset=pets, label="Cat") is None, "one review per item was wanted"

    call_command("import_votes", str(path), "--dataset", "pets")  # the same file again changes nothing
    assert Batch.objects.get(pk=cat_batch.pk).reviews_done == 1


@pytest.mark.django_db
def test_a_second_import_reports_new_changed_and_unchanged_votes_and_rewrites_none(pets, tmp_path):
    def imported(*lines: str) -> str:
        path = tmp_path / "votes.csv"
        path.write_text("image,reviewer,verdict\n" + "".join(f"images/{line}\n" for line in lines))
        out = io.StringIO()
        call_command("import_votes", str(path), "--dataset", "pets", stdout=out)
        return out.getvalue()

    assert imported("dog-0000.jpg,w1,confirm", "dog-0001.jpg,w1,disconfirm") == (
        "2 votes for 'pets': 2 new, 0 changed, 0 unchanged\n"
    )
    kept = Vote.objects.get(prediction__image__path="images/dog-0000.jpg")
    again = ("dog-0000.jpg,w1,confirm", "dog-0001.jpg,w1,confirm", "dog-0002.jpg,w1,disconfirm")
    assert imported(*again) == "3 votes for 'pets': 1 new, 1 changed, 1 unchanged\n"
    assert imported(*again) == "3 votes for 'pets': 0 new, 0 changed, 3 unchanged\n"
    assert imported("dog-0003.jpg,w1,confirm") == "1 vote for 'pets': 1 new, 0 changed, 0 unchanged\n"
    assert Vote.objects.get(pk=kept.pk).updated_at == kept.updated_at, "an unchanged vote is not written again"
    assert sorted(Vote.objects.values_list("prediction__image__path", "confirm")) == [
        ("images/dog-0000.jpg", True),
        ("images/dog-0001.jpg", True),
        ("images/dog-0002.jpg", False),
        ("images/dog-0003.jpg", True),
    ]
