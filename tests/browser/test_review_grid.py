"""The review grid and the analytics page in a real browser (headless Chromium) against the live server."""

import re

import pytest

from labelqa.catalog.models import Image, Prediction
from labelqa.review.models import Batch, Vote
from tests.browser.conftest import ARTIFACTS, login, login_with_keyboard

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

BATCH_URL = re.compile(r"/review/batch/(\d+)/$")
BAD = "rgb(198, 40, 40)"  # --bad in labelqa.css

# WCAG 2 contrast ratio of an element's text against the first opaque background behind it.
CONTRAST_JS = """
(el) => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bg = null;
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) { bg = c.slice(0, 3); break; }
  }
  bg = bg || [255, 255, 255];
  const fg = rgb(getComputedStyle(el).color).slice(0, 3);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}
"""


def wait_for_images(page) -> None:
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.grid img')).every((i) => i.complete && i.naturalWidth > 0)"
    )


def grid_ids(page) -> list[int]:
    return [int(v) for v in page.eval_on_selector_all("input[name=confirm]", "els => els.map((e) => e.value)")]


def focused_index(page) -> int:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('input[name=confirm]')).indexOf(document.activeElement)"
    )


def checked(page) -> list[bool]:
    return page.eval_on_selector_all("input[name=confirm]", "els => els.map((e) => e.checked)")


def open_first_batch(page, live_server) -> int:
    page.goto(f"{live_server.url}/review/next/")
    match = BATCH_URL.search(page.url)
    assert match, f"/review/next/ did not lead to a batch: {page.url}"
    wait_for_images(page)
    return int(match.group(1))


def test_a_reviewer_reviews_a_batch_with_the_keyboard_only(page, live_server, pets_images, reviewer):
    login_with_keyboard(page, live_server, reviewer.username)

    first = open_first_batch(page, live_server)
    batch = Batch.objects.get(pk=first)
    ids = grid_ids(page)
    assert 2 <= len(ids) <= 25
    assert ids == list(Prediction.objects.filter(batch=batch).order_by("id").values_list("id", flat=True))
    assert page.locator("h1 .label-name").inner_text() == batch.label
    assert page.locator(".tile").count() == len(ids)
    assert all(checked(page))
    # Real thumbnails, not the placeholder SVG.
    assert page.eval_on_selector_all(".grid img", "els => els.every((i) => i.naturalWidth > 100)")
    assert page.locator(".tile .key").first.inner_text() == "1"
    assert page.locator(".tile .key").nth(len(ids) - 1).inner_text() == "1234567890QWERTYUIOPASDFG"[len(ids) - 1]
    assert page.locator("[data-action=help]").is_visible()
    assert page.locator("#tally").inner_text() == f"All {len(ids)} confirmed"

    # The script focuses the first image; arrows move the focus, Space toggles the focused one.
    assert focused_index(page) == 0
    columns = page.evaluate("getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length")
    assert columns == 5
    page.keyboard.press("ArrowRight")
    assert focused_index(page) == 1
    page.keyboard.press("ArrowDown")
    assert focused_index(page) == 1 + columns
    page.keyboard.press("ArrowLeft")
    assert focused_index(page) == columns
    page.keyboard.press("ArrowUp")
    assert focused_index(page) == 0
    page.keyboard.press("ArrowLeft")  # clamped at the first image
    assert focused_index(page) == 0
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    assert checked(page)[2] is False
    assert page.locator("#tally").inner_text() == f"1 of {len(ids)} marked as not fitting"
    page.keyboard.press("Space")
    assert all(checked(page))
    assert focused_index(page) == 2

    # "?" opens the key map; "?" again (or Esc) closes it, and keys do nothing to the grid while it is open.
    keymap = page.locator("#keymap")
    assert not keymap.is_visible()
    page.keyboard.press("?")
    assert keymap.is_visible()
    assert "toggle the image in that position" in keymap.inner_text()
    page.keyboard.press("2")
    assert all(checked(page))
    page.keyboard.press("?")
    assert not keymap.is_visible()
    page.keyboard.press("?")
    assert keymap.is_visible()
    page.keyboard.press("Escape")
    assert not keymap.is_visible()
    assert focused_index(page) == 2, "closing the key map gives the focus back"

    # Enter on a button does what the button says: Shift+Tab from the first image reaches "Keys (?)".
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "help"
    page.keyboard.press("Enter")
    assert keymap.is_visible(), "Enter on the Keys button must open the key map, not submit the batch"
    assert BATCH_URL.search(page.url).group(1) == str(first)
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert focused_index(page) == 0

    # Z zooms the focused image to its original; Esc closes the zoom.
    zoom = page.locator("#zoom")
    page.keyboard.press("z")
    assert zoom.is_visible()
    page.wait_for_function("() => document.getElementById('zoom-img').naturalWidth > 0")
    assert page.evaluate("document.getElementById('zoom-img').naturalWidth") == 320  # the original, not a thumbnail
    page.keyboard.press("Escape")
    assert not zoom.is_visible()
    assert all(checked(page))

    # Position keys toggle the 2nd and 5th images.
    page.keyboard.press("2")
    page.keyboard.press("5")
    state = checked(page)
    assert state[1] is False and state[4] is False
    assert sum(1 for c in state if not c) == 2
    tiles = page.locator(".tile")
    for i in (1, 4):
        assert float(tiles.nth(i).locator("img").evaluate("e => getComputedStyle(e).opacity")) < 1
        assert tiles.nth(i).evaluate("e => getComputedStyle(e).borderTopColor") == BAD
    assert float(tiles.nth(0).locator("img").evaluate("e => getComputedStyle(e).opacity")) == 1
    assert tiles.nth(0).evaluate("e => getComputedStyle(e).borderTopColor") != BAD
    assert page.locator("#tally").inner_text() == f"2 of {len(ids)} marked as not fitting"

    # X toggles every image; twice restores the choice.
    page.keyboard.press("x")
    assert [not c for c in checked(page)] == state
    assert page.locator("#tally").inner_text() == f"{len(ids) - 2} of {len(ids)} marked as not fitting"
    page.keyboard.press("x")
    assert checked(page) == state

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-grid.png"), full_page=True)

    # Enter submits; the next batch comes up.
    with page.expect_navigation(url=BATCH_URL):
        page.keyboard.press("Enter")
    second = int(BATCH_URL.search(page.url).group(1))
    assert second != first
    wait_for_images(page)
    assert all(checked(page))

    votes = dict(Vote.objects.filter(lease__batch_id=first, reviewer=reviewer).values_list("prediction_id", "confirm"))
    assert set(votes) == set(ids)
    assert sorted(pid for pid, ok in votes.items() if not ok) == sorted([ids[1], ids[4]])
    assert all(ok for pid, ok in votes.items() if pid not in (ids[1], ids[4]))
    assert not Vote.objects.filter(lease__batch_id=second).exists()


def test_arrow_keys_go_past_images_nobody_can_see(page, live_server, pets_images, reviewer):
    """Their boxes are disabled and cannot take focus: arrows used to stop at them, and the first one kept focus."""
    login(page, live_server, reviewer.username)
    open_first_batch(page, live_server)
    ids = grid_ids(page)
    Image.objects.filter(prediction__id__in=[ids[0], ids[2]]).update(unusable=True, problem="not an image")
    page.reload()
    assert page.eval_on_selector_all("input[name=confirm]", "els => els.map((e) => e.disabled)")[:4] == [
        True,
        False,
        True,
        False,
    ]
    assert focused_index(page) == 1, "the first box that can take a vote has the focus"
    page.keyboard.press("ArrowLeft")
    assert focused_index(page) == 1, "nothing but a disabled box to the left: the focus stays"
    page.keyboard.press("ArrowRight")
    assert focused_index(page) == 3
    page.keyboard.press("ArrowLeft")
    assert focused_index(page) == 1
    page.keyboard.press("Space")
    assert checked(page)[:4] == [False, False, False, True]


def test_the_grid_meets_basic_accessibility_checks(page, live_server, pets_images, reviewer):
    login(page, live_server, reviewer.username)
    open_first_batch(page, live_server)

    # Every checkbox has a <label for=...> with text, and every image an alt text.
    boxes = page.locator("input[name=confirm]")
    assert boxes.count() > 0
    for i in range(boxes.count()):
        box_id = boxes.nth(i).get_attribute("id")
        assert box_id
        label = page.locator(f"label[for='{box_id}']")
        assert label.count() == 1
        assert label.inner_text().strip()
        assert boxes.nth(i).evaluate("e => e.labels.length") == 1
    assert page.eval_on_selector_all(".grid img", "els => els.every((i) => i.alt.trim().length > 0)")

    # A checkbox focused from the keyboard shows a visible outline (on the tile or on the box itself).
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert focused_index(page) == 2
    assert page.evaluate("document.activeElement.matches(':focus-visible')")
    outline = page.evaluate(
        """() => {
          const box = document.activeElement, tile = box.closest('.tile');
          const width = (e) => {
            const style = getComputedStyle(e);
            return style.outlineStyle === 'none' ? 0 : parseFloat(style.outlineWidth);
          };
          return {tile: width(tile), box: width(box), other: width(document.querySelectorAll('.tile')[0])};
        }"""
    )
    assert max(outline["tile"], outline["box"]) >= 2, outline
    assert outline["other"] == 0, "only the focused tile is outlined"

    # Text contrast (WCAG AA, 4.5:1): the headline, the label in it, captions (also of a rejected image), hints.
    page.keyboard.press("2")
    for selector in (
        "h1",
        "h1 .label-name",
        ".tile:nth-child(1) .caption",
        ".tile:nth-child(2) .caption",
        ".batch-head .muted",
        "#tally",
        ".actions button.primary",
    ):
        ratio = page.locator(selector).first.evaluate(CONTRAST_JS)
        assert ratio >= 4.5, f"{selector}: contrast {ratio:.2f} < 4.5"


def test_the_grid_works_without_javascript(nojs_page, live_server, pets_images, reviewer):
    page = nojs_page
    login(page, live_server, reviewer.username)
    first = open_first_batch(page, live_server)
    ids = grid_ids(page)
    assert all(checked(page))
    # Shortcut hints would promise what only the script does.
    assert not page.locator("[data-action=help]").is_visible()
    assert not page.locator(".tile .key").first.is_visible()

    # Clicking the image (the checkbox's label) un-checks it.
    page.locator(".tile").nth(2).locator("img").click()
    state = checked(page)
    assert state[2] is False and sum(1 for c in state if not c) == 1

    with page.expect_navigation(url=BATCH_URL):
        page.get_by_role("button", name="Submit batch").click()
    assert int(BATCH_URL.search(page.url).group(1)) != first
    wait_for_images(page)
    votes = dict(Vote.objects.filter(lease__batch_id=first, reviewer=reviewer).values_list("prediction_id", "confirm"))
    assert set(votes) == set(ids)
    assert [pid for pid, ok in votes.items() if not ok] == [ids[2]]


def test_the_analytics_page_shows_the_report_and_its_downloads(page, live_server, pets, reviewer, scientist):
    from labelqa.review.services import batch_lease, votes_submit

    lease = batch_lease(reviewer=reviewer, dataset=pets)
    ids = list(Prediction.objects.filter(batch_id=lease.batch_id).values_list("id", flat=True))
    votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids[1:]))

    login(page, live_server, scientist.username)
    response = page.goto(f"{live_server.url}/analytics/")
    assert response.status == 200
    table = page.locator("#report-table")
    assert table.is_visible()
    text = table.inner_text()
    for label in ("Dog", "Cat", "Fox", "TOTALS"):
        assert label in text
    links = page.locator("a", has_text=re.compile(r"^(report|labels) ")).all()
    hrefs = [a.get_attribute("href") for a in links]
    assert len(hrefs) == 4, hrefs
    for href in hrefs:
        download = page.request.get(f"{live_server.url}{href}")
        assert download.status == 200, f"{href}: {download.status}"
        assert "attachment" in download.headers.get("content-disposition", "")
        assert download.body()
