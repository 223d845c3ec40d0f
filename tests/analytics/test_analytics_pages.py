"""The analytics pages: roles, the class table's sorting and links, the class page, the chart endpoints."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image as PILImage

from labelqa.catalog.models import Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Batch, Vote
from labelqa.review.services import batch_lease, votes_submit
from tests.conftest import PASSWORD


def review_first_batches(dataset, reviewer, *, disconfirm_first: int = 1) -> list[int]:
    """Review every batch once, disconfirming the first `disconfirm_first` images of each; return those ids."""
    disconfirmed = []
    for _ in range(Batch.objects.filter(dataset=dataset).count()):
        lease = batch_lease(reviewer=reviewer, dataset=dataset)
        if lease is None:
            break
        ids = list(Prediction.objects.filter(batch_id=lease.batch_id).order_by("id").values_list("id", flat=True))
        disconfirmed += ids[:disconfirm_first]
        confirmed = set(ids[disconfirm_first:])
        votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=confirmed)
    return disconfirmed


@pytest.fixture
def reviewed_pets(pets, reviewer):
    review_first_batches(pets, reviewer)
    return pets


@pytest.fixture
def scientist_client(client, scientist):
    client.force_login(scientist)
    return client


def png_of(response) -> PILImage.Image:
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert len(body) > 1000
    image = PILImage.open(io.BytesIO(body))
    image.load()
    assert image.format == "PNG"
    return image


def test_the_index_links_each_class_to_its_page(scientist_client, reviewed_pets):
    html = scientist_client.get(reverse("analytics:index")).content.decode()
    for label in ("Dog", "Cat", "Fox"):
        assert f'href="{reverse("analytics:class", args=["pets", label])}' in html


def test_the_index_sorts_classes_without_javascript(scientist_client, reviewed_pets):
    response = scientist_client.get(reverse("analytics:index"), {"sort": "total", "dir": "desc"})
    labels = [c["label"] for c in response.context["classes"]]
    assert labels == ["Dog", "Fox", "Cat"]  # 30, 26, 10 predictions
    html = response.content.decode()
    assert 'aria-sort="descending"' in html
    assert "sort=total&amp;dir=asc" in html  # the current column's link reverses the order


def test_the_index_sorts_labels_as_the_page_script_does(scientist_client, db, tmp_path):
    """Case-insensitive and as text (static/analytics.js): the server sorted by code point, so a reload reordered."""
    rows = "".join(f"{n}.jpg,{label},90\n" for n, label in enumerate(["bee", "Ant", "cat", "9", "10", "Dog"]))
    predictions_import(dataset_name="mixed", stream=io.BytesIO(rows.encode()), images_root=str(tmp_path))
    response = scientist_client.get(reverse("analytics:index"), {"dataset": "mixed", "sort": "label", "dir": "asc"})
    assert [c["label"] for c in response.context["classes"]] == ["10", "9", "Ant", "bee", "cat", "Dog"]


def test_the_index_sorts_empty_values_last_either_way(scientist_client, pets, reviewer):
    # Only Cat gets reviewed: Dog and Fox have no accuracy to sort by.
    cats = Prediction.objects.filter(dataset=pets, label="Cat")
    Vote.objects.bulk_create([Vote(prediction=p, reviewer=reviewer, confirm=True) for p in cats])
    cats.update(tally_stale=True)
    for direction in ("asc", "desc"):
        response = scientist_client.get(reverse("analytics:index"), {"sort": "accuracy", "dir": direction})
        assert [c["label"] for c in response.context["classes"]][0] == "Cat"


def test_the_index_titles_each_bucket_with_the_reviews_needed(scientist_client, db, tmp_path):
    rows = "".join(f"{n}.jpg,Dog,92\n" for n in range(500))  # more left to review than ±5 points needs
    predictions_import(dataset_name="many", stream=io.BytesIO(rows.encode()), images_root=str(tmp_path))
    response = scientist_client.get(reverse("analytics:index"), {"dataset": "many"})
    needed = response.context["classes"][0]["buckets"][2]["reviews_needed"]
    assert 0 < needed < 500
    assert f'title="{needed} more reviews for ±5 points"' in response.content.decode()


def test_a_bucket_title_never_asks_for_reviews_that_cannot_be_done(scientist_client, pets, reviewer):
    """Empty buckets and fully reviewed ones were titled "381 more reviews", as the class page never says."""
    cats = Prediction.objects.filter(dataset=pets, label="Cat")
    Vote.objects.bulk_create([Vote(prediction=p, reviewer=reviewer, confirm=True) for p in cats])
    cats.update(tally_stale=True)
    response = scientist_client.get(reverse("analytics:index"), {"edges": "0,50,80,100"})
    [cat] = [c for c in response.context["classes"] if c["label"] == "Cat"]
    empty, full = cat["buckets"][0], cat["buckets"][2]
    assert empty["total"] == 0 and full["total"] == full["reviewed"] == 10 and full["reviews_needed"] > 0
    html = response.content.decode()
    assert 'title="no predictions in this bucket"' in html
    assert 'title="all reviewed, and still short of ±5 points"' in html


def test_the_index_shows_the_overall_calibration(scientist_client, reviewed_pets):
    response = scientist_client.get(reverse("analytics:index"))
    calibration = response.context["calibration"]
    assert calibration["reviewed"] == 66
    assert calibration["ece"] is not None
    html = response.content.decode()
    assert reverse("analytics:calibration", args=["pets"]) in html
    assert 'id="ece"' in html


def test_the_class_page_shows_buckets_thresholds_and_charts(scientist_client, reviewed_pets):
    response = scientist_client.get(reverse("analytics:class", args=["pets", "Dog"]))
    assert response.status_code == 200
    entry = response.context["detail"]["entry"]
    assert entry["label"] == "Dog" and entry["total"] == 30
    assert all("reviews_needed" in b for b in entry["buckets"])
    html = response.content.decode()
    assert "Certified threshold" in html
    assert "Reviews for ±5 points" in html
    assert reverse("analytics:calibration", args=["pets"]) + "?label=Dog" in html
    assert reverse("analytics:threshold", args=["pets"]) + "?label=Dog" in html
    for b in entry["buckets"]:
        assert f"<td>{b['low']}–{b['high']}</td>" in html
    # A bucket with fewer images left than the ±5 points would take says so rather than asking for the impossible.
    short = [b for b in entry["buckets"] if b["total"] and b["reviews_needed"] > b["total"] - b["reviewed"]]
    assert short and all(
        ("all reviewed" if b["total"] == b["reviewed"] else f"all {b['total'] - b['reviewed']} left")
        + ", and still short"
        in html
        for b in short
    )
    assert "all 0 left" not in html


def test_the_class_page_says_which_predictions_the_coverage_counts(scientist_client, reviewed_pets):
    url = reverse("analytics:class", args=["pets", "Dog"]) + "?max_error_ratio=0.5&edges=80,90,100"
    response = scientist_client.get(url)
    certified = response.context["detail"]["entry"]["certified"]
    assert certified["threshold"] is not None
    assert f"It keeps {round(100 * certified['coverage'], 1)}% of the class's predictions from 80 to 100%." in (
        response.content.decode()
    )


def test_the_class_page_strips_disconfirmed_images_linked_to_their_originals(scientist_client, pets, reviewer):
    disconfirmed = review_first_batches(pets, reviewer, disconfirm_first=2)
    dog = Prediction.objects.filter(pk__in=disconfirmed, label="Dog").select_related("image")
    response = scientist_client.get(reverse("analytics:class", args=["pets", "Dog"]))
    shown = list(response.context["disconfirmed"])
    assert {p.pk for p in shown} == {p.pk for p in dog}
    assert [p.confidence for p in shown] == sorted((p.confidence for p in shown), reverse=True)
    html = response.content.decode()
    for prediction in dog:
        assert reverse("catalog:thumbnail", args=[prediction.image_id]) in html
        assert reverse("catalog:original", args=[prediction.image_id]) in html
    assert "/admin/" not in html, "scientists cannot open the admin"


def test_the_class_page_is_404_for_an_unknown_class(scientist_client, pets):
    assert scientist_client.get(reverse("analytics:class", args=["pets", "Unicorn"])).status_code == 404


def test_the_class_page_reports_bad_parameters(scientist_client, pets):
    response = scientist_client.get(reverse("analytics:class", args=["pets", "Dog"]), {"edges": "90,80"})
    assert response.status_code == 200
    assert "strictly increasing" in response.content.decode()


def test_the_page_refuses_more_buckets_than_percentage_points(scientist_client, pets):
    """Each bucket is a column per class: hundreds of them made one request cost seconds and megabytes."""
    edges = ",".join(f"{edge / 5:g}" for edge in range(501))
    response = scientist_client.get(reverse("analytics:index"), {"dataset": "pets", "edges": edges})
    assert response.status_code == 200
    assert "<li>Edges: at most 100 buckets" in response.content.decode(), "named as the form names the field"


def test_a_label_with_a_slash_has_its_page(scientist_client, db, tmp_path):
    predictions_import(
        dataset_name="odd", stream=io.BytesIO(b"a.jpg,n01/fish,91\nb.jpg,n01/fish,92\n"), images_root=str(tmp_path)
    )
    url = reverse("analytics:class", args=["odd", "n01/fish"])
    assert scientist_client.get(url).status_code == 200


def test_the_calibration_png_renders_for_all_classes_and_one(scientist_client, reviewed_pets):
    url = reverse("analytics:calibration", args=["pets"])
    assert png_of(scientist_client.get(url)).size == (600, 520)
    png_of(scientist_client.get(url, {"label": "Fox", "bins": 20}))


def test_the_calibration_png_downloads_as_an_attachment(scientist_client, reviewed_pets):
    response = scientist_client.get(reverse("analytics:calibration", args=["pets"]), {"download": "1"})
    assert response["Content-Disposition"] == 'attachment; filename="pets-calibration-all.png"'


def test_the_calibration_png_rejects_bad_bins(scientist_client, pets):
    response = scientist_client.get(reverse("analytics:calibration", args=["pets"]), {"bins": "1"})
    assert response.status_code == 400


def test_the_calibration_png_renders_without_reviews(scientist_client, pets):
    png_of(scientist_client.get(reverse("analytics:calibration", args=["pets"])))


def test_the_threshold_png_renders(scientist_client, reviewed_pets):
    response = scientist_client.get(reverse("analytics:threshold", args=["pets"]), {"label": "Dog"})
    assert png_of(response).size == (600, 400)


def test_the_threshold_png_needs_a_label(scientist_client, pets):
    assert scientist_client.get(reverse("analytics:threshold", args=["pets"])).status_code == 400


def test_it_serves_a_scientist_signed_in_with_a_password(client, scientist, pets):
    assert client.login(username=scientist.username, password=PASSWORD)
    assert client.get(reverse("analytics:class", args=["pets", "Cat"])).status_code == 200


@pytest.mark.parametrize("label", ["$x^$", "cost $5", "$\\frac{a}{b}$"])
def test_charts_draw_a_label_with_dollar_signs_as_text(scientist_client, db, tmp_path, label):
    """matplotlib read "$…$" in titles as math: an unbalanced one was a 500, a balanced one drew a formula."""
    rows = f'a.jpg,"{label}",91\nb.jpg,"{label}",62\n'.encode()
    predictions_import(dataset_name="money", stream=io.BytesIO(rows), images_root=str(tmp_path))
    png_of(scientist_client.get(reverse("analytics:calibration", args=["money"]), {"label": label}))
    png_of(scientist_client.get(reverse("analytics:threshold", args=["money"]), {"label": label}))


def test_the_index_says_how_many_predictions_fall_outside_the_bucket_edges(scientist_client, db, tmp_path):
    """Predictions below the first edge were left out with no word: 48 predictions, 8 in the table."""
    rows = b"a.jpg,Dog,20\nb.jpg,Dog,45\nc.jpg,Dog,90\nd.jpg,Cat,10\n"
    predictions_import(dataset_name="low", stream=io.BytesIO(rows), images_root=str(tmp_path))
    html = " ".join(scientist_client.get(reverse("analytics:index"), {"dataset": "low"}).content.decode().split())
    assert "3 predictions with a confidence outside 80–100% are not in this report" in html
    html = scientist_client.get(reverse("analytics:index"), {"dataset": "low", "edges": "0,50,100"}).content.decode()
    assert 'id="outside-edges"' not in html


@pytest.fixture
def one_in_three_wrong(db, tmp_path):
    """Cat at 96, 97, 98: two confirmed, and c3 confirmed by two reviewers of three.

    Under unanimous c3 is split, so the top bucket holds 1 incorrect per 2 correct: it fails at ratio 0.1 and passes
    at 0.5. Under majority c3 is confirmed, and the bucket passes at 0.1 too.
    """
    rows = "image,label,confidence\nc1.jpg,Cat,96\nc2.jpg,Cat,97\nc3.jpg,Cat,98\n"
    predictions_import(dataset_name="cats", stream=io.BytesIO(rows.encode()), images_root=str(tmp_path))
    votes = tmp_path / "votes.csv"
    votes.write_text(
        "image,reviewer,verdict\nc1.jpg,r1,confirm\nc2.jpg,r1,confirm\nc3.jpg,r1,confirm\nc3.jpg,r2,confirm\n"
        "c3.jpg,r3,disconfirm\n"
    )
    call_command("import_votes", str(votes), "--dataset", "cats")


def test_the_report_download_follows_the_error_ratio_and_consensus_asked_for(scientist_client, one_in_three_wrong):
    def cat(**query):
        response = scientist_client.get(reverse("analytics:report", args=["cats", "json"]), query)
        report = response.json()
        return report["max_error_ratio"], report["consensus"], report["classes"][0]["threshold"]

    assert cat() == (0.1, "unanimous", 100)
    assert cat(max_error_ratio="0.5") == (0.5, "unanimous", 80)
    # The consensus changes the figures, not only the field that names it: by majority c3 is right.
    assert cat(consensus="majority") == (0.1, "majority", 80)


def test_the_labels_download_follows_the_consensus_asked_for(scientist_client, one_in_three_wrong):
    def status_of_c3(**query):
        response = scientist_client.get(reverse("analytics:labels", args=["cats", "jsonl"]), query)
        rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
        return {row["image"]: row["status"] for row in rows}["c3.jpg"]

    assert status_of_c3() == "split"
    assert status_of_c3(consensus="majority") == "confirmed"


def test_a_page_that_is_not_there_says_what_was_not_found(scientist_client, pets):
    """A bookmark to a deleted dataset, or a class outside the edges, showed only "nothing at this address"."""
    gone = scientist_client.get(reverse("analytics:index"), {"dataset": "nope"})
    assert gone.status_code == 404
    assert "There is no dataset named &#x27;nope&#x27;: it may have been deleted or renamed." in gone.content.decode()
    outside = scientist_client.get(reverse("analytics:class", args=["pets", "Cat"]), {"edges": "99.9,100"})
    assert "No predictions labelled &#x27;Cat&#x27; in pets within the bucket edges." in outside.content.decode()
    nowhere = scientist_client.get("/analytics/no/such/page/")
    assert nowhere.status_code == 404 and "There is nothing at this address." in nowhere.content.decode()
