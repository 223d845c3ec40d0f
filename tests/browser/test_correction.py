"""The correction page in a real browser: one image named with the keyboard only, and the page without JavaScript."""

import re

import pytest

from labelqa.review.corrections import corrections_open
from labelqa.review.models import Correction
from tests.browser.conftest import ARTIFACTS, login, login_with_keyboard
from tests.review.correction_data import disconfirm, dog

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]
CORRECT_URL = re.compile(r"/review/correct/\?dataset=pets$")


@pytest.fixture
def correction_pass(pets_images):
    """dog 2 (94 %), dog 1 (87 %) and dog 3 (81 %) disconfirmed, served in that order, with the pass open."""
    ids = disconfirm(pets_images, [dog(2), dog(1), dog(3)])
    corrections_open(dataset=pets_images)
    return ids


def open_correction_page(page, live_server) -> None:
    page.goto(f"{live_server.url}/review/correct/?dataset=pets")
    page.wait_for_function("() => document.getElementById('correct-img').naturalWidth > 0")


def test_a_reviewer_corrects_images_with_the_keyboard_only(page, live_server, correction_pass, reviewer):
    first, second, third = correction_pass
    login_with_keyboard(page, live_server, reviewer.username)
    open_correction_page(page, live_server)
    assert page.evaluate("document.getElementById('correct-img').naturalWidth") == 320  # the original, full size
    assert page.locator("h1 .label-name").inner_text() == "Dog"
    assert page.locator(".choices .key").all_inner_texts() == ["1", "2"]  # hints shown by the script
    assert page.locator("#correct-keys").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "correct.png"), full_page=True)

    # 2 picks the second quick choice (the dataset's other labels A to Z: Cat, Fox); Enter saves.
    page.keyboard.press("2")
    assert page.locator("#choice-2").is_checked() and page.evaluate("document.activeElement.id") == "choice-2"
    with page.expect_navigation(url=CORRECT_URL):
        page.keyboard.press("Enter")
    assert "Saved “Fox”." in page.locator(".messages").inner_text()
    assert Correction.objects.get(prediction_id=first).label == "Fox"

    # "/" jumps to the text field; a typed label that no list holds is saved with Enter.
    page.wait_for_function("() => document.getElementById('correct-img').naturalWidth > 0")
    page.keyboard.press("1")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "other"
    page.keyboard.type("=Red panda")
    assert not page.locator("#choice-1").is_checked(), "typing clears the pick, as the server would ignore it"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # Refused (a formula start): the same image comes back with the text as typed, focused to mend.
    assert "cannot begin with =" in page.locator("#correct-refused").inner_text()
    assert page.evaluate("[document.activeElement.id, document.activeElement.value]") == ["other", "=Red panda"]
    page.keyboard.press("Home")
    page.keyboard.press("Delete")
    with page.expect_navigation(url=CORRECT_URL):
        page.keyboard.press("Enter")
    assert Correction.objects.get(prediction_id=second).label == "Red panda"

    # Enter with nothing chosen is refused, and the keys keep working: the empty text field is not the problem, so
    # it is not focused (typed into, S was saved as the label "s").
    page.wait_for_function("() => document.getElementById('correct-img').naturalWidth > 0")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Pick one of the labels" in page.locator("#correct-refused").inner_text()
    assert page.evaluate("document.activeElement.id") != "other"
    assert page.locator("#other").get_attribute("aria-invalid") is None

    # S skips ("not sure"): recorded without a label, and the queue is empty for this reviewer.
    page.wait_for_function("() => document.getElementById('correct-img').naturalWidth > 0")
    with page.expect_navigation(url=CORRECT_URL):
        page.keyboard.press("s")
    skipped = Correction.objects.get(prediction_id=third)
    assert skipped.submitted_at is not None and skipped.label == ""
    assert page.locator("#correct-empty").is_visible()


def test_the_page_works_without_javascript(nojs_page, live_server, correction_pass, reviewer):
    first, second, _ = correction_pass
    login(nojs_page, live_server, reviewer.username)
    nojs_page.goto(f"{live_server.url}/review/correct/?dataset=pets")
    assert not nojs_page.locator(".choices .key").first.is_visible()  # key hints need the script
    nojs_page.click("label[for=choice-1]")
    with nojs_page.expect_navigation():
        nojs_page.click("button.primary")
    assert Correction.objects.get(prediction_id=first).label == "Cat"
    with nojs_page.expect_navigation():
        nojs_page.click("button[name=skip]")
    skipped = Correction.objects.get(prediction_id=second)
    assert skipped.submitted_at is not None and skipped.label == ""
