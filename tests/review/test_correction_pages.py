"""The correction pass over HTTP: the reviewer's page and its answers, the home page, the admin's page."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from labelqa.catalog.models import Dataset, Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.corrections import corrections_open
from labelqa.review.models import Correction, CorrectionPass
from tests.review.correction_data import disconfirm, dog, vote
from tests.review.test_flow import login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
SCRIPT = "<script>alert(1)</script>"


def lease_token(html: str) -> str:
    return re.search(r'name="lease" value="([^"]+)"', html).group(1)


def csrf(client: Client) -> str:
    return client.cookies["csrftoken"].value


def answer(client: Client, data: dict, dataset: str = "pets"):
    """Open the correction page and post `data` with its lease and CSRF token."""
    page = client.get(f"/review/correct/?dataset={dataset}").content.decode()
    form = {"lease": lease_token(page), "dataset": dataset, "csrfmiddlewaretoken": csrf(client), **data}
    return client.post("/review/correct/", form)


@pytest.fixture
def open_pass(pets):
    ids = disconfirm(pets, [dog(2), dog(1)])
    corrections_open(dataset=pets)
    return ids


def test_the_page_shows_one_image_with_quick_choices_a_label_list_and_a_lease(open_pass, reviewer):
    client = login(reviewer.username)
    response = client.get("/review/correct/?dataset=pets")
    html = response.content.decode()
    assert response.status_code == 200
    prediction = Prediction.objects.get(pk=open_pass[0])  # the most confident disconfirmed image comes first
    assert f'src="/datasets/images/{prediction.image_id}/original/"' in html
    # No top-k and no answers yet: the quick choices are the dataset's other labels, A to Z.
    choices = re.findall(r'<input type="radio" name="choice" value="([^"]+)" id="choice-(\d)"', html)
    assert choices == [("Cat", "1"), ("Fox", "2")]
    assert re.findall(r'<option value="([^"]+)">', html) == ["Cat", "Dog", "Fox"]
    assert 'list="dataset-labels"' in html and "csrfmiddlewaretoken" in html
    assert lease_token(html) == str(Correction.objects.get(reviewer=reviewer).token)
    assert "Keys: 1–2 pick a label, / types another" in html


def test_the_keys_line_names_a_lone_quick_choice_by_its_key_alone(tmp_path, reviewer):
    rows = "image,label,confidence\na.jpg,Dog,90\nb.jpg,Cat,95\n"
    predictions_import(dataset_name="two", stream=io.BytesIO(rows.encode()), images_root=str(tmp_path))
    dataset = Dataset.objects.get(name="two")
    vote(dataset, {"a.jpg": "d"})
    corrections_open(dataset=dataset)
    html = login(reviewer.username).get("/review/correct/?dataset=two").content.decode()
    assert re.findall(r'<input type="radio" name="choice" value="([^"]+)"', html) == ["Cat"]
    assert "Keys: 1 pick a label, / types another" in html


def test_posting_a_choice_records_it_and_leads_to_the_next_image(open_pass, reviewer):
    client = login(reviewer.username)
    response = answer(client, {"choice": "Cat"})
    assert response.status_code == 302 and response["Location"] == "/review/correct/?dataset=pets"
    assert list(Correction.objects.values_list("prediction_id", "label")) == [(open_pass[0], "Cat")]
    follow = client.get(response["Location"])
    assert "Saved “Cat”." in follow.content.decode()
    assert Correction.objects.get(submitted_at__isnull=True).prediction_id == open_pass[1]


def test_a_typed_label_counts_over_a_picked_one(open_pass, reviewer):
    client = login(reviewer.username)
    answer(client, {"choice": "Cat", "other": "  Red   panda "})
    assert Correction.objects.get().label == "Red panda"


def test_skipping_records_no_label_and_the_image_goes_to_someone_else(open_pass, reviewer, reviewer2):
    client = login(reviewer.username)
    answer(client, {"choice": "Cat", "skip": "1"})
    skipped = Correction.objects.get(reviewer=reviewer)
    assert skipped.submitted_at is not None and skipped.label == ""
    html = login(reviewer2.username).get("/review/correct/?dataset=pets").content.decode()
    assert Correction.objects.get(reviewer=reviewer2, token=lease_token(html)).prediction_id == open_pass[0]


def test_an_empty_answer_says_what_to_do_and_shows_the_same_image_again(open_pass, reviewer):
    client = login(reviewer.username)
    first = client.get("/review/correct/?dataset=pets").content.decode()
    response = answer(client, {"other": "  "})
    again = response.content.decode()
    assert response.status_code == 200
    assert "Pick one of the labels, type one, or choose “Not sure”" in again
    assert lease_token(again) == lease_token(first)
    assert not Correction.objects.filter(submitted_at__isnull=False).exists()


def test_a_refused_label_comes_back_as_typed_and_escaped_to_mend(open_pass, reviewer):
    client = login(reviewer.username)
    first = client.get("/review/correct/?dataset=pets").content.decode()
    response = answer(client, {"other": f"={SCRIPT}", "choice": "Fox"})
    again = response.content.decode()
    assert response.status_code == 200 and 'role="alert">A new label cannot begin with =' in again
    assert f'value="={escape(SCRIPT)}" aria-invalid="true"' in again and SCRIPT not in again
    assert 'value="Fox" id="choice-2" data-key="2" checked>' in again
    assert lease_token(again) == lease_token(first)
    # Mended, it is saved and the reviewer goes on.
    assert answer(client, {"other": "Red panda"}).status_code == 302
    assert Correction.objects.get(submitted_at__isnull=False).label == "Red panda"


def test_a_refused_label_comes_back_on_its_own_image_even_after_its_lease_ran_out(open_pass, reviewer):
    client = login(reviewer.username)
    first = lease_token(client.get("/review/correct/?dataset=pets").content.decode())
    held = Correction.objects.get(token=first)
    # The lease ran out, and the image now ranks below the other one: a fresh lease would be the other image.
    Correction.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    Prediction.objects.filter(pk=held.prediction_id).update(confidence=1)
    form = {"lease": first, "dataset": "pets", "csrfmiddlewaretoken": csrf(client), "other": "=sum"}
    again = client.post("/review/correct/", form).content.decode()
    assert 'role="alert">A new label cannot begin with =' in again and 'value="=sum"' in again
    assert lease_token(again) == first
    assert Correction.objects.get(token=first).expires_at > timezone.now()


def test_a_post_without_the_csrf_token_is_refused(open_pass, reviewer):
    client = login(reviewer.username)
    token = lease_token(client.get("/review/correct/").content.decode())
    assert client.post("/review/correct/", {"lease": token, "choice": "Cat"}).status_code == 403
    assert not Correction.objects.filter(submitted_at__isnull=False).exists()


def test_an_unknown_dataset_is_a_404_and_an_empty_queue_says_so(pets, reviewer):
    client = login(reviewer.username)
    assert client.get("/review/correct/?dataset=nope").status_code == 404
    response = client.get("/review/correct/?dataset=pets")
    assert response.status_code == 200 and 'id="correct-empty"' in response.content.decode()


def test_labels_are_escaped_on_the_page_in_messages_and_on_the_admin_page(tmp_path, reviewer, admin_user):
    rows = f'image,label,confidence\na.jpg,"{SCRIPT}",90\nb.jpg,Cat,95\n'
    predictions_import(dataset_name="xss", stream=io.BytesIO(rows.encode()), images_root=str(tmp_path))
    dataset = Dataset.objects.get(name="xss")
    vote(dataset, {"b.jpg": "d", "a.jpg": "d"})
    corrections_open(dataset=dataset)
    client = login(reviewer.username)
    page = client.get("/review/correct/?dataset=xss").content.decode()
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    saved = client.get(answer(client, {"other": SCRIPT}, dataset="xss")["Location"]).content.decode()
    assert SCRIPT not in saved and "Saved “&lt;script&gt;" in saved
    admin_page = login(admin_user.username).get("/review/correction-pass/?dataset=xss").content.decode()
    assert SCRIPT not in admin_page and "&lt;script&gt;alert(1)&lt;/script&gt; ×1" in admin_page


def test_the_home_page_shows_correction_work_only_while_there_is_some(pets, reviewer, admin_user):
    disconfirm(pets, [dog(0)])
    client = login(reviewer.username)
    assert 'id="correction-work"' not in client.get("/review/").content.decode()
    corrections_open(dataset=pets)
    home = client.get("/review/").content.decode()
    assert 'id="correction-work"' in home and 'href="/review/correct/?dataset=pets"' in home and "(1 image)" in home
    answer(client, {"choice": "Cat"})
    assert 'id="correction-work"' not in client.get("/review/").content.decode()


def test_an_admin_opens_updates_and_closes_the_pass(pets, admin_user):
    client = login(admin_user.username)
    page = client.get("/review/correction-pass/?dataset=pets")
    assert page.status_code == 200 and "Open the correction pass" in page.content.decode()
    form = {"dataset": "pets", "action": "open", "corrections_per_item": "3", "csrfmiddlewaretoken": csrf(client)}
    response = client.post("/review/correction-pass/", form)
    assert response["Location"] == "/review/correction-pass/?dataset=pets"
    opened = CorrectionPass.objects.get(dataset=pets)
    assert opened.is_open and opened.corrections_per_item == 3 and opened.changed_by == admin_user
    assert "3 answers each" in client.get(response["Location"]).content.decode()
    client.post("/review/correction-pass/", {**form, "action": "close"})
    opened.refresh_from_db()
    assert not opened.is_open and opened.corrections_per_item == 3


def test_a_bad_number_of_answers_changes_nothing_and_says_why(pets, admin_user):
    corrections_open(dataset=pets, corrections_per_item=2)
    client = login(admin_user.username)
    form = {"dataset": "pets", "action": "open", "corrections_per_item": "0", "csrfmiddlewaretoken": csrf(client)}
    page = client.get(client.post("/review/correction-pass/", form)["Location"]).content.decode()
    assert "Nothing changed." in page and "greater than or equal to 1" in page
    assert CorrectionPass.objects.get(dataset=pets).corrections_per_item == 2


def test_the_web_label_export_has_the_corrected_label(open_pass, reviewer, scientist):
    answer(login(reviewer.username), {"choice": "Cat"})
    client = login(scientist.username)
    body = b"".join(client.get("/analytics/pets/labels.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0])[-1] == "corrected_label"
    corrected = {r["image"]: r["corrected_label"] for r in rows if r["corrected_label"]}
    assert corrected == {dog(2): "Cat"}


def test_the_django_admin_lists_passes_and_answers(open_pass, reviewer, admin_user):
    """Admins hold the permissions of models added after the role groups were made (post_migrate syncs them)."""
    answer(login(reviewer.username), {"choice": "Cat"})
    client = login(admin_user.username)
    assert client.get("/admin/review/reviewerexclusion/").status_code == 200  # added later, like the two below
    passes = client.get("/admin/review/correctionpass/")
    answers = client.get("/admin/review/correction/")
    assert passes.status_code == 200 and "pets" in passes.content.decode()
    assert answers.status_code == 200 and "Cat" in answers.content.decode()
