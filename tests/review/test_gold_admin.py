"""Setting gold up: the import command and its upload, the rate, marking single images from pages and the admin."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from labelqa.catalog.models import Prediction
from labelqa.review.models import GoldItem
from labelqa.review.services import batch_lease, tallies_refresh, votes_submit
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

GOOD = "image,truth\nimages/dog-0000.jpg,Dog\nimages/dog-0001.jpg,Wolf\n"
BAD = (
    "image,truth\n"
    "images/dog-0000.jpg,Dog\n"  # fine, but the file as a whole is refused
    "missing.jpg,Dog\n"
    "images/dog-0002.jpg,\n"
    "images/dog-0000.jpg,Cat\n"
    "../etc/passwd,Dog\n"
    "images/dog-0003.jpg,Dog,extra\n"
)
BAD_LINES = [
    "line 3: image 'missing.jpg' is not in dataset 'pets'",
    "line 4: truth is empty; write the image's true label",
    "line 5: image 'images/dog-0000.jpg' already appears on line 2",
    "line 6: image path '../etc/passwd' escapes the images root",
    "line 7: expected 2 fields as in the header but found 3",
]


def gold_answers() -> list[tuple[str, str, bool]]:
    return sorted(GoldItem.objects.values_list("prediction__image__path", "truth", "expect_confirm"))


def test_import_gold_marks_images_with_the_verdict_their_truth_implies(pets, tmp_path):
    path = tmp_path / "gold.csv"
    path.write_text(GOOD)
    call_command("import_gold", str(path), "--dataset", "pets")
    assert gold_answers() == [("images/dog-0000.jpg", "Dog", True), ("images/dog-0001.jpg", "Wolf", False)]
    path.write_text("image,truth\nimages/dog-0000.jpg,Fox\n")  # a second import corrects a truth
    out = io.StringIO()
    call_command("import_gold", str(path), "--dataset", "pets", stdout=out)
    assert gold_answers()[0] == ("images/dog-0000.jpg", "Fox", False)
    assert out.getvalue() == "Marked 1 image of 'pets' as gold\n"


def test_import_gold_reads_a_truth_as_typed_answers_are_read(pets, tmp_path):
    """'cat' for the model's 'Cat' was stored as another class: reviewers who rightly confirmed were scored wrong."""
    path = tmp_path / "gold.csv"
    path.write_text("image,truth\nimages/cat-0000.jpg,cat\nimages/dog-0000.jpg,  Golden   retriever \n")
    call_command("import_gold", str(path), "--dataset", "pets")
    assert gold_answers() == [("images/cat-0000.jpg", "Cat", True), ("images/dog-0000.jpg", "Golden retriever", False)]
    path.write_text('image,truth\nimages/dog-0001.jpg,"Dog\x1b[2J"\n')
    with pytest.raises(CommandError, match=r"line 2: truth 'Dog\\x1b\[2J' holds a control character"):
        call_command("import_gold", str(path), "--dataset", "pets")


def test_import_gold_names_every_bad_line_and_changes_nothing(pets, tmp_path):
    path = tmp_path / "gold.csv"
    path.write_text(BAD)
    with pytest.raises(CommandError) as error:
        call_command("import_gold", str(path), "--dataset", "pets")
    message = str(error.value)
    assert "nothing was imported" in message
    for line in BAD_LINES:
        assert line in message
    assert GoldItem.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("image,label\nimages/dog-0000.jpg,Dog\n", "line 1: the first line must be the header image,truth"),
        ("image,truth\n", "the file holds no gold items"),
        ("image,truth\nimages/dog-0000.jpg,Dog\n", "no dataset named 'nope'"),
    ],
)
def test_import_gold_refuses_a_file_without_its_header_rows_or_dataset(pets, tmp_path, content, problem):
    path = tmp_path / "gold.csv"
    path.write_text(content)
    dataset = "nope" if "nope" in problem else "pets"
    with pytest.raises(CommandError, match=problem):
        call_command("import_gold", str(path), "--dataset", dataset)
    assert GoldItem.objects.count() == 0


@pytest.fixture
def admin_client(client, admin_user):
    client.login(username=admin_user.username, password=PASSWORD)
    return client


def test_the_gold_page_imports_an_upload_and_lists_the_items(admin_client, pets):
    upload = SimpleUploadedFile("gold.csv", GOOD.encode(), content_type="text/csv")
    response = admin_client.post(reverse("review:gold"), {"dataset": "pets", "file": upload})
    assert response.status_code == 302 and response["Location"] == reverse("review:gold") + "?dataset=pets"
    page = admin_client.get(response["Location"]).content.decode()
    assert "Marked 2 images of pets as gold." in page
    assert "2 gold items" in page and "images/dog-0001.jpg" in page and "Wolf" in page
    assert page.count('value="unmark"') == 2


def test_a_bad_upload_shows_its_lines_and_changes_nothing(admin_client, pets):
    upload = SimpleUploadedFile("gold.csv", BAD.encode(), content_type="text/csv")
    response = admin_client.post(reverse("review:gold"), {"dataset": "pets", "file": upload})
    page = response.content.decode()
    assert response.status_code == 200 and 'id="gold-errors"' in page
    assert "line 3: image &#x27;missing.jpg&#x27; is not in dataset &#x27;pets&#x27;" in page
    assert GoldItem.objects.count() == 0


def test_a_file_over_the_size_limit_is_refused_without_reading_it_whole(admin_client, pets, settings, spooled):
    settings.LABELQA_MAX_UPLOAD_BYTES = 4096
    big = GOOD + "images/dog-0002.jpg,Dog\n" * 10_000
    upload = SimpleUploadedFile("gold.csv", big.encode(), content_type="text/csv")
    page = admin_client.post(reverse("review:gold"), {"dataset": "pets", "file": upload}).content.decode()
    assert "The file is larger than the upload limit of 4.0\xa0KB (LABELQA_MAX_UPLOAD_BYTES)" in page
    assert "manage.py import_gold" in page and "This field is required" not in page
    assert sum(spooled) <= 4096, "reading stopped at the limit"
    assert GoldItem.objects.count() == 0


def test_an_upload_without_the_csrf_token_is_refused(admin_user, pets):
    client = Client(enforce_csrf_checks=True)  # the view sets its upload handler first, then checks CSRF itself
    client.force_login(admin_user)
    page = client.get(reverse("review:gold"), {"dataset": "pets"})

    def post(**token):
        upload = SimpleUploadedFile("gold.csv", GOOD.encode(), content_type="text/csv")
        return client.post(reverse("review:gold"), {"dataset": "pets", "file": upload, **token})

    assert post().status_code == 403 and GoldItem.objects.count() == 0
    assert post(csrfmiddlewaretoken=page.cookies["csrftoken"].value).status_code == 302
    assert GoldItem.objects.count() == 2


def test_the_rate_form_sets_the_rate_and_refuses_one_out_of_range(admin_client, pets):
    url = reverse("review:gold_rate")
    admin_client.post(url, {"dataset": "pets", "rate": "0.04"})
    pets.refresh_from_db()
    assert pets.gold_rate == 0.04
    response = admin_client.post(url, {"dataset": "pets", "rate": "0.9"}, follow=True)
    assert "The gold rate was not changed" in response.content.decode()
    pets.refresh_from_db()
    assert pets.gold_rate == 0.04
    # The pets batches hold 25 images: setting a rate says gold cannot fill it (it said "fills 4 %").
    said = admin_client.post(url, {"dataset": "pets", "rate": "0.04"}, follow=True).content.decode()
    assert "The gold rate is 4%, but a grid holds 25 images and pets&#x27;s batches have 25: gold fills 0%" in said
    # And the page warns that gold has no room beside them.
    page = admin_client.get(reverse("review:gold"), {"dataset": "pets"}).content.decode()
    assert 'id="no-room"' in page


@pytest.fixture
def disconfirmed_cats(pets, reviewer):
    """alice disconfirms every Cat image, so the Cat class page shows them all on its strip."""
    lease = batch_lease(reviewer=reviewer, dataset=pets, label="Cat")
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set())
    tallies_refresh(dataset_id=pets.pk)
    return Prediction.objects.filter(label="Cat").order_by("id")


def class_page_url() -> str:
    return reverse("analytics:class", args=["pets", "Cat"])


def test_admins_mark_a_disconfirmed_image_as_gold_from_the_class_page(admin_client, disconfirmed_cats, admin_user):
    page = admin_client.get(class_page_url()).content.decode()
    assert page.count('value="disconfirm"') == 10 and 'name="truth"' in page
    cat = disconfirmed_cats[0]
    response = admin_client.post(
        reverse("review:gold_mark"),
        {"prediction": cat.pk, "action": "disconfirm", "truth": "Lynx", "next": class_page_url()},
    )
    assert response.status_code == 302 and response["Location"] == class_page_url()
    gold = GoldItem.objects.get()
    assert (gold.prediction_id, gold.truth, gold.expect_confirm, gold.created_by) == (cat.pk, "Lynx", False, admin_user)


def test_marking_an_image_wrong_again_without_a_truth_keeps_the_known_one(admin_client, disconfirmed_cats):
    """The class page's empty field, or the admin's "wrong" action, erased a truth typed before."""
    cat = disconfirmed_cats[0]
    url = reverse("review:gold_mark")
    admin_client.post(url, {"prediction": cat.pk, "action": "disconfirm", "truth": "Lynx"})
    admin_client.post(url, {"prediction": cat.pk, "action": "disconfirm", "truth": ""})
    admin_client.post(
        reverse("admin:catalog_prediction_changelist"), {"action": "mark_gold_wrong", "_selected_action": [cat.pk]}
    )
    assert GoldItem.objects.values_list("truth", "expect_confirm").get() == ("Lynx", False)
    # The class page's strip says the image is gold, with its truth in the field to keep or change.
    page = admin_client.get(class_page_url()).content.decode()
    assert page.count('class="gold-state"') == 1 and "gold: it is Lynx" in page
    assert f'id="truth-{cat.pk}" maxlength="200" placeholder="true label (optional)" value="Lynx"' in page
    admin_client.post(url, {"prediction": cat.pk, "action": "confirm"})  # another verdict: the old truth is not its
    assert GoldItem.objects.values_list("truth", "expect_confirm").get() == ("", True)


def test_the_gold_page_reads_a_truth_as_the_import_does(admin_client, disconfirmed_cats):
    """'cat  ' with "confirm" was refused as contradicting the verdict, though it names the model's own class."""
    cat = disconfirmed_cats[0]
    admin_client.post(reverse("review:gold_mark"), {"prediction": cat.pk, "action": "confirm", "truth": " cat  "})
    assert GoldItem.objects.values_list("truth", "expect_confirm").get() == ("Cat", True)


def test_scientists_see_the_strip_without_the_gold_buttons(client, disconfirmed_cats, scientist):
    client.login(username=scientist.username, password=PASSWORD)
    page = client.get(class_page_url()).content.decode()
    assert 'id="disconfirmed"' in page and 'value="disconfirm"' not in page
    assert client.post(reverse("review:gold_mark"), {"prediction": disconfirmed_cats[0].pk}).status_code == 403
    assert not GoldItem.objects.exists()


def test_a_truth_that_contradicts_the_verdict_marks_nothing(admin_client, disconfirmed_cats):
    response = admin_client.post(
        reverse("review:gold_mark"),
        {"prediction": disconfirmed_cats[0].pk, "action": "disconfirm", "truth": "Cat"},
        follow=True,
    )
    assert (
        "Nothing was marked: the true label &#x27;Cat&#x27; means reviewers should confirm" in response.content.decode()
    )
    assert not GoldItem.objects.exists()


def test_a_refused_truth_comes_back_in_its_field_to_mend(admin_client, disconfirmed_cats):
    cat = disconfirmed_cats[0]
    admin_client.post(
        reverse("review:gold_mark"),
        {"prediction": cat.pk, "action": "disconfirm", "truth": "Cat", "next": class_page_url()},
    )
    page = admin_client.get(class_page_url()).content.decode()
    field = f'id="truth-{cat.pk}" maxlength="200" placeholder="true label (optional)"'
    assert f'{field} value="Cat" aria-invalid="true" autofocus>' in page
    again = admin_client.get(class_page_url()).content.decode()
    assert 'aria-invalid="true"' not in again, "shown once, as the message is"


def test_unmark_makes_an_item_ordinary_and_a_foreign_next_goes_to_the_gold_page(admin_client, disconfirmed_cats):
    cat = disconfirmed_cats[0]
    url = reverse("review:gold_mark")
    admin_client.post(url, {"prediction": cat.pk, "action": "confirm"})
    assert GoldItem.objects.get().expect_confirm is True
    response = admin_client.post(url, {"prediction": cat.pk, "action": "unmark", "next": "https://evil.example/"})
    assert response["Location"] == reverse("review:gold") + "?dataset=pets"
    assert not GoldItem.objects.exists()
    assert admin_client.post(url, {"prediction": 0, "action": "confirm"})["Location"] == reverse("review:gold")


def test_the_django_admin_actions_mark_predictions_right_or_wrong(admin_client, pets):
    dogs = list(Prediction.objects.filter(label="Dog").order_by("id").values_list("id", flat=True)[:3])
    changelist = reverse("admin:catalog_prediction_changelist")
    response = admin_client.post(changelist, {"action": "mark_gold_correct", "_selected_action": dogs[:2]})
    assert response.status_code == 302
    admin_client.post(changelist, {"action": "mark_gold_wrong", "_selected_action": dogs[2:]})
    assert sorted(GoldItem.objects.values_list("prediction_id", "truth", "expect_confirm")) == [
        (dogs[0], "Dog", True),
        (dogs[1], "Dog", True),
        (dogs[2], "", False),
    ]


@pytest.mark.django_db
def test_the_django_admin_lists_and_deletes_gold_but_cannot_make_or_edit_it(client, django_user_model, pets):
    # Its form would skip the rule that the truth implies the verdict; the gold page and the import apply it.
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
    prediction = pets.predictions.first()
    gold = GoldItem.objects.create(prediction=prediction, truth=prediction.label, expect_confirm=True)
    assert client.get("/admin/review/golditem/").status_code == 200
    assert client.get("/admin/review/golditem/add/").status_code == 403
    change = f"/admin/review/golditem/{gold.pk}/change/"
    assert client.post(change, {"truth": "Fox", "expect_confirm": "on"}).status_code == 403
    assert client.get(f"/admin/review/golditem/{gold.pk}/delete/").status_code == 200
    # Deleted from a filtered list: back to that list (Django sent those who may not change rows to the admin index).
    deleted = client.post(
        f"/admin/review/golditem/{gold.pk}/delete/?_changelist_filters=expect_confirm__exact%3D1", {"post": "yes"}
    )
    assert deleted.status_code == 302 and deleted["Location"] == "/admin/review/golditem/?expect_confirm__exact=1"
    assert not GoldItem.objects.exists()
