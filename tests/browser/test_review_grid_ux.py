"""The review grid as reviewers use it all day: its fit on a laptop screen, answers that survive a failed submit,
and the keys beyond toggling."""

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from labelqa.catalog.models import Dataset
from labelqa.catalog.services import predictions_import
from labelqa.review.models import Lease, Vote
from tests.browser.conftest import ARTIFACTS, _draw, login

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

BATCH_URL = re.compile(r"/review/batch/(\d+)/$")
# A label as long as the model's label field allows: model label files hold such names (and longer ones, cut).
LONG_LABEL = ("Eastern gray squirrel, Sciurus carolinensis, perched on a branch in a park " * 3)[:200].strip()


@pytest.fixture
def full_batch(db, tmp_path):
    """One dataset of exactly 25 images (one full batch) whose label is 200 characters long."""
    lines = [f'images/sq-{i:02d}.jpg,"{LONG_LABEL}",{90 + i / 10:.1f}' for i in range(25)]
    for i in range(25):
        _draw(Path(tmp_path) / f"images/sq-{i:02d}.jpg", "Dog", i)
    predictions_import(
        dataset_name="squirrels", stream=io.BytesIO(("\n".join(lines) + "\n").encode()), images_root=str(tmp_path)
    )
    return Dataset.objects.get(name="squirrels")


def open_grid(page, live_server) -> int:
    page.goto(f"{live_server.url}/review/next/")
    match = BATCH_URL.search(page.url)
    assert match, f"/review/next/ did not lead to a batch: {page.url}"
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.grid img')).every((i) => i.complete && i.naturalWidth > 0)"
    )
    return int(match.group(1))


def outside_viewport(page) -> list[str]:
    """Name every tile (and the submit button) whose box is not wholly inside the viewport, scrolled to the top."""
    return page.evaluate(
        """() => {
          window.scrollTo(0, 0);
          const w = document.documentElement.clientWidth, h = document.documentElement.clientHeight;
          const out = [];
          const check = (el, name) => {
            const r = el.getBoundingClientRect();
            if (r.top < 0 || r.left < 0 || r.bottom > h || r.right > w || r.width === 0) {
              const [x0, y0, x1, y1] = [r.left, r.top, r.right, r.bottom].map(Math.round);
              out.push(`${name}: ${x0},${y0}-${x1},${y1}`);
            }
          };
          document.querySelectorAll('.tile').forEach((t, i) => check(t, `tile ${i + 1}`));
          check(document.querySelector('.actions button[type=submit]'), 'submit');
          check(document.querySelector('h1'), 'headline');
          return out;
        }"""
    )


@pytest.mark.parametrize("width,height", [(1280, 720), (1366, 768)])
def test_a_full_grid_fits_a_laptop_screen(page, live_server, full_batch, reviewer, width, height):
    page.set_viewport_size({"width": width, "height": height})
    login(page, live_server, reviewer.username)
    open_grid(page, live_server)
    assert page.locator(".tile").count() == 25
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"review-grid-{width}x{height}.png"))
    assert outside_viewport(page) == []

    # The tiles stay square-ish images of a useful size, not slivers.
    sizes = page.eval_on_selector_all(".tile img", "els => els.map((e) => e.getBoundingClientRect().height)")
    assert min(sizes) >= 80, sizes

    # Every caption is one line, its key badge included.
    heights = page.eval_on_selector_all(
        ".tile .caption",
        "els => els.map((e) => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight))",
    )
    assert max(heights) < 1.9, heights
    assert page.locator(".tile .key").first.is_visible()

    # A 200-character label takes one line of the headline, cut with an ellipsis, and its full text in a title.
    name = page.locator("h1 .label-name")
    assert page.locator("h1").get_attribute("title") == LONG_LABEL
    assert name.inner_text() == LONG_LABEL  # cut on screen, whole in the page (and for screen readers)
    lines = page.locator("h1").evaluate(
        "e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)"
    )
    assert lines < 1.9, lines
    assert name.evaluate("e => e.scrollWidth > e.clientWidth"), "the long label is cut to the line"
    assert name.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"

    # Back on the submitted batch, its notice and a message above it, the grid still fits.
    first = BATCH_URL.search(page.url).group(0)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.goto(f"{live_server.url}{first}")
    assert page.locator("#revising").is_visible()
    page.evaluate(
        """() => {  // the page as it is after a second submit: a message above the head
          const list = document.createElement('ul'); list.className = 'messages';
          list.innerHTML = '<li>That batch was already submitted, so the answers sent first were kept.</li>';
          document.querySelector('main').before(list);
        }"""
    )
    page.screenshot(path=str(ARTIFACTS / f"review-grid-{width}x{height}-revising.png"))
    assert outside_viewport(page) == []


def test_on_a_phone_the_grid_scrolls_but_submit_stays_in_reach(page, live_server, full_batch, reviewer):
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server, reviewer.username)
    open_grid(page, live_server)
    submit = page.locator(".actions button[type=submit]")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-grid-phone.png"))
    for y in (0, 600, 1200):
        page.evaluate(f"window.scrollTo(0, {y})")
        box = submit.bounding_box()
        assert box and 0 <= box["y"] and box["y"] + box["height"] <= 844, (y, box)
    # A touch screen shows no title: the 200-character label is there whole, wrapped, and nothing scrolls sideways.
    name = page.locator("h1 .label-name")
    assert name.evaluate("e => e.scrollWidth <= e.clientWidth && e.getClientRects().length > 0")
    assert name.bounding_box()["height"] > 3 * 20, "several lines"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    # The bar does not hide the last row of tiles.
    last = page.locator(".tile").last.bounding_box()
    bar = page.locator(".actions").bounding_box()
    assert last["y"] + last["height"] <= bar["y"] + 1, (last, bar)


def checked(page) -> list[bool]:
    return page.eval_on_selector_all("input[name=confirm]", "els => els.map((e) => e.checked)")


def saved_grids(page) -> dict:
    return page.evaluate("() => JSON.parse(sessionStorage.getItem('labelqa.review.grids') || '{}')")


def test_answers_survive_a_submit_that_fails(page, live_server, pets_images, reviewer):
    """The server is down when the reviewer presses Enter: the browser shows its error page, and the grid they come
    back to still has the two images they un-checked. Once a submit gets through, the tab forgets them."""
    login(page, live_server, reviewer.username)
    first = open_grid(page, live_server)
    grid_url = page.url
    token = page.get_attribute("input[name=lease]", "value")
    ids = page.eval_on_selector_all("input[name=confirm]", "els => els.map((e) => e.value)")
    page.keyboard.press("2")
    page.keyboard.press("5")
    assert [i for i, c in enumerate(checked(page)) if not c] == [1, 4]

    page.route(BATCH_URL, lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    with page.expect_event("requestfailed") as failed:  # as it does with the server down
        page.keyboard.press("Enter")
    assert failed.value.method == "POST"
    page.unroute(BATCH_URL)
    assert not Vote.objects.filter(lease__batch_id=first).exists()

    page.goto(grid_url)
    assert [i for i, c in enumerate(checked(page)) if not c] == [1, 4]
    tally = page.locator("#tally").inner_text()
    assert tally == f"Restored your unsaved answers: 2 of {len(ids)} marked as not fitting"
    page.reload()  # as often as it takes
    assert [i for i, c in enumerate(checked(page)) if not c] == [1, 4]

    # Toggled back to all confirmed, there is nothing to keep.
    page.keyboard.press("2")
    page.keyboard.press("5")
    assert token not in saved_grids(page)
    page.keyboard.press("5")
    assert saved_grids(page)[token]["off"] == [ids[4]]

    # This time the submit gets through: the votes are the restored answers, and the next grid forgets them.
    page.keyboard.press("2")
    with page.expect_navigation(url=BATCH_URL):
        page.keyboard.press("Enter")
    assert int(BATCH_URL.search(page.url).group(1)) != first
    votes = dict(Vote.objects.filter(lease__batch_id=first, reviewer=reviewer).values_list("prediction_id", "confirm"))
    assert sorted(str(pid) for pid, ok in votes.items() if not ok) == sorted([ids[1], ids[4]])
    assert token not in saved_grids(page)

    # Answers left in the tab for a batch the server has since recorded (say, saved from another tab) never
    # override the server's: the batch opened again shows its recorded votes.
    page.evaluate(
        """([token, ids]) => sessionStorage.setItem('labelqa.review.grids', JSON.stringify(
             {[token]: {revise: false, base: [], off: ids, t: Date.now()}}))""",
        [token, ids[:3]],
    )
    page.goto(grid_url)
    assert page.locator("#revising").is_visible()
    assert [i for i, c in enumerate(checked(page)) if not c] == [1, 4]
    assert "Restored" not in page.locator("#tally").inner_text()
    assert token not in saved_grids(page)


def test_the_last_submit_forgets_its_answers_too(page, live_server, full_batch, reviewer):
    """After the last batch the queue-empty page, not a grid, comes up: it forgets that grid's answers."""
    login(page, live_server, reviewer.username)
    open_grid(page, live_server)
    token = page.get_attribute("input[name=lease]", "value")
    page.keyboard.press("3")
    assert token in saved_grids(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#queue-empty").is_visible()
    page.wait_for_load_state()
    assert saved_grids(page) == {}


def test_b_goes_back_to_the_previous_batch(page, live_server, pets_images, reviewer):
    login(page, live_server, reviewer.username)
    first = open_grid(page, live_server)
    assert page.locator("#previous-batch").count() == 0
    page.keyboard.press("b")  # nothing to go back to: nothing happens
    assert int(BATCH_URL.search(page.url).group(1)) == first
    page.keyboard.press("2")
    with page.expect_navigation(url=BATCH_URL):
        page.keyboard.press("Enter")
    second = int(BATCH_URL.search(page.url).group(1))
    assert second != first
    page.keyboard.press("?")
    assert "back to the previous batch" in page.locator("#keymap").inner_text()
    page.keyboard.press("Escape")

    # Un-checked on this grid, then B: the previous batch, with its answers, to change them.
    page.keyboard.press("3")
    with page.expect_navigation(url=re.compile(rf"/review/batch/{first}/\?back={second}$")):
        page.keyboard.press("B")
    assert page.locator("#revising").is_visible()
    assert [i for i, c in enumerate(checked(page)) if not c] == [1]

    # Back to the batch the reviewer was on: the grid left open comes back with its answer.
    with page.expect_navigation(url=re.compile(rf"/review/batch/{second}/$")):
        page.get_by_role("link", name="back to the batch you were on").click()
    assert [i for i, c in enumerate(checked(page)) if not c] == [2]

    # Changed and submitted: saved, and the reviewer is back on that grid, not on whatever /review/next/ gives.
    with page.expect_navigation(url=re.compile(rf"/review/batch/{first}/\?back={second}$")):
        page.keyboard.press("B")
    page.keyboard.press("4")
    with page.expect_navigation(url=re.compile(rf"/review/batch/{second}/$")):
        page.keyboard.press("Enter")
    assert "were updated" in page.locator(".messages").inner_text()
    assert [i for i, c in enumerate(checked(page)) if not c] == [2]


def test_the_last_minute_of_a_lease_is_announced(page, live_server, pets_images, reviewer):
    login(page, live_server, reviewer.username)
    batch_id = open_grid(page, live_server)
    assert page.locator("#lease-time").is_hidden(), "ten minutes left: nothing to say"
    Lease.objects.filter(batch_id=batch_id, reviewer=reviewer).update(expires_at=timezone.now() + timedelta(seconds=3))
    page.reload()
    notice = page.locator("#lease-time")
    assert "Under a minute left on this grid" in notice.inner_text()
    # Counted on the page's own clock: once the lease runs out, the notice says what a submit still does.
    page.wait_for_function("() => document.getElementById('lease-time').textContent.includes('time is up')")
    assert notice.get_attribute("role") == "status"


def test_the_end_of_a_filtered_queue_keeps_its_filter_in_the_address(page, live_server, pets_images, reviewer):
    """Reloading "All done" must ask the same queue again, not lease from another dataset."""
    login(page, live_server, reviewer.username)
    page.goto(f"{live_server.url}/review/next/?dataset=pets&label=Cat")  # Cat: one batch
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#queue-empty").is_visible()
    assert page.url.endswith("/review/next/?dataset=pets&label=Cat")
    page.reload()
    assert page.locator("#queue-empty").is_visible() and "labelled “Cat”" in page.inner_text("#queue-empty")


def test_an_image_zoomed_by_holding_the_mouse_gives_focus_back_to_its_box(page, live_server, pets_images, reviewer):
    """As Z and Esc do: Space, the arrows and Enter then go on from that image, not from the top of the page."""
    login(page, live_server, reviewer.username)
    open_grid(page, live_server)
    box = page.locator(".tile").nth(2).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_function("() => document.getElementById('zoom').open")
    page.mouse.up()
    page.wait_for_function("() => document.getElementById('zoom-img').naturalWidth > 0")
    # Drawn as large as the window allows, though the original is only 320 pixels wide.
    assert page.locator("#zoom-img").bounding_box()["height"] >= 0.75 * page.viewport_size["height"]
    page.keyboard.press("Escape")
    third_box = page.locator(".tile").nth(2).locator("input").get_attribute("id")
    assert page.evaluate("document.activeElement.id") == third_box
    assert all(checked(page)), "holding to zoom toggles nothing"
    page.keyboard.press("Space")
    assert [i for i, c in enumerate(checked(page)) if not c] == [2]
