import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from labelqa.review.models import Vote


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
    assert "line 3: image 'missing.jpg' is not in dataset 'pets'" in message
    assert "line 4: verdict 'maybe' must be confirm or disconfirm" in message
    assert Vote.objects.count() == 0
    assert not get_user_model().objects.filter(username="w1").exists()
