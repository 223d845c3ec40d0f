"""Gold in a real browser: an admin marks an image from a class page; a reviewer gets it in a grid and keys it."""

import pytest

from labelqa.catalog.models import Prediction
from labelqa.review.gold import gold_mark
from labelqa.review.models import Batch, GoldItem, LeasedGold, Vote
from labelqa.review.services import batch_lease, tallies_refresh, votes_submit
from tests.browser.conftest import login
from tests.browser.test_review_grid import checked, grid_ids, open_first_batch

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_an_admin_marks_gold_on_the_strip_and_a_reviewer_answers_it_from_the_keyboard(
    page, live_server, pets_images, reviewer, reviewer2, admin_user
):
    # bob disconfirms 3 images of the full Dog batch (25), so they show on the Dog class page's strip.
    big, small = Batch.objects.filter(dataset=pets_images, label="Dog").order_by("id")
    lease = batch_lease(reviewer=reviewer2, dataset=pets_images, label="Dog")
    assert lease.batch_id == big.pk
    ids = list(Prediction.objects.filter(batch=big).order_by("id").values_list("id", flat=True))
    votes_submit(reviewer=reviewer2, batch_id=big.pk, token=str(lease.token), confirmed_ids=set(ids[3:]))
    tallies_refresh(dataset_id=pets_images.pk)

    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/analytics/pets/class/Dog/")
    first_form = page.locator("#disconfirmed form.gold-mark").first
    first_form.locator("input[name=truth]").fill("Wolf")
    with page.expect_navigation():
        first_form.locator("button[value=disconfirm]").click()
    assert "/analytics/pets/class/Dog/" in page.url
    assert "is gold: reviewers should disconfirm Dog" in page.locator(".messages").inner_text()
    assert GoldItem.objects.get().truth == "Wolf"
    for pid in set(ids[:3]) - {GoldItem.objects.get().prediction_id}:
        gold_mark(prediction=Prediction.objects.get(pk=pid), expect_confirm=False)

    # alice gets the 5-image Dog batch first; at a rate of 0.5 its grid takes the 3 gold images as well.
    pets_images.gold_rate = 0.5
    pets_images.save()
    Batch.objects.filter(pk=small.pk).update(priority=1)
    page.context.clear_cookies()
    login(page, live_server, reviewer.username)
    assert open_first_batch(page, live_server) == small.pk
    shown = grid_ids(page)
    gold = set(LeasedGold.objects.filter(reviewer=reviewer).values_list("prediction_id", flat=True))
    assert len(shown) == 8 and gold == set(ids[:3]) and gold <= set(shown)
    keys = page.eval_on_selector_all(".tile .key", "els => els.map((e) => e.textContent)")
    assert keys == ["1", "2", "3", "4", "5", "6", "7", "8"]
    page.keyboard.press("1")
    assert checked(page) == [False] + [True] * 7
    with page.expect_navigation():
        page.keyboard.press("Enter")
    votes = dict(Vote.objects.filter(reviewer=reviewer).values_list("prediction_id", "confirm"))
    assert set(votes) == set(shown) and [pid for pid, ok in votes.items() if not ok] == [shown[0]]


LONG = ("Northern white-cheeked gibbon in a mountain habitat, photographed at dusk " * 3)[:200].strip()


def test_tables_of_long_names_keep_their_buttons_in_view_at_1280(page, live_server, pets_images, admin_user):
    """A 200-character label or a 100-character dataset name pushed Unmark and the dataset links off screen."""
    pets_images.name = ("Long dataset name " * 6)[:100].strip()
    pets_images.save()
    prediction = Prediction.objects.filter(dataset=pets_images).first()
    Prediction.objects.filter(pk=prediction.pk).update(label=LONG)
    gold_mark(prediction=Prediction.objects.get(pk=prediction.pk), expect_confirm=False, truth=LONG[:190] + " other")
    page.set_viewport_size({"width": 1280, "height": 720})
    login(page, live_server, admin_user.username)
    for path, table in (("/review/gold/", "#gold-table"), ("/datasets/", "#datasets")):
        page.goto(f"{live_server.url}{path}")
        wrap = page.locator(table).locator("xpath=..")
        assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth"), (path, wrap.evaluate("e => e.scrollWidth"))
        button = page.locator(f"{table} button").first
        box = button.bounding_box()
        assert box["x"] + box["width"] <= 1280, (path, box)
