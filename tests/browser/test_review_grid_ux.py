"""The review grid as reviewers use it all day: its fit on a laptop screen, answers that survive a failed submit,
and the keys beyond toggling."""

import io
import re
from pathlib import Path

import pytest

from labelqa.catalog.models import Dataset
from labelqa.catalog.services import predictions_import
from tests.browser.conftest import ARTIFACTS, _draw, login

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

BATCH_URL = re.compile(r"/review/batch/(\d+)/$")
# A label as long as the model's label field allows: model label files hold such names (and longer ones, cut).
LONG_LABEL = ("Eastern gray squirrel, Sciurus carolinensis, perched on a branch in a park " * 3)[:200].strip()


@pytest.fixture
def full_batch(db, tmp_path, media_root):
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
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    # The bar does not hide the last row of tiles.
    last = page.locator(".tile").last.bounding_box()
    bar = page.locator(".actions").bounding_box()
    assert last["y"] + last["height"] <= bar["y"] + 1, (last, bar)
