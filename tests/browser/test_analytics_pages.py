"""The analytics table and a class page in a real browser: sorting in place, the class link, the charts."""

import io

import pytest

from labelqa.catalog.models import Prediction
from labelqa.catalog.services import predictions_import
from labelqa.review.services import batch_lease, votes_submit
from tests.browser.conftest import ARTIFACTS, login

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def class_order(page) -> list[str]:
    return page.eval_on_selector_all("#report-table tr.class-row", "rows => rows.map((r) => r.dataset.sortLabel)")


def test_a_scientist_sorts_the_table_and_opens_a_class_page(page, live_server, pets_images, reviewer, scientist):
    for _ in range(5):  # every batch of the pets dataset, the first image of each disconfirmed
        lease = batch_lease(reviewer=reviewer, dataset=pets_images)
        ids = list(Prediction.objects.filter(batch_id=lease.batch_id).order_by("id").values_list("id", flat=True))
        votes_submit(reviewer=reviewer, batch_id=lease.batch_id, token=str(lease.token), confirmed_ids=set(ids[1:]))

    login(page, live_server, scientist.username)
    page.goto(f"{live_server.url}/analytics/")
    assert class_order(page) == ["Cat", "Dog", "Fox"]

    page.click("#report-table a[data-sort=total]")
    assert class_order(page) == ["Dog", "Fox", "Cat"]  # largest first, without a page load
    assert page.get_attribute("#report-table th:has(a[data-sort=total])", "aria-sort") == "descending"
    page.click("#report-table a[data-sort=total]")
    assert class_order(page) == ["Cat", "Fox", "Dog"]
    assert "sort=total" in page.url
    # Tied rows (no class has a certified threshold yet) keep the report's order in the page, as after a reload.
    page.click("#report-table a[data-sort=certified]")
    assert class_order(page) == ["Cat", "Dog", "Fox"]
    page.reload()
    assert class_order(page) == ["Cat", "Dog", "Fox"]

    with page.expect_navigation():
        page.click("#report-table a:text-is('Dog')")
    assert "/analytics/pets/class/Dog/" in page.url
    assert page.locator("h1").inner_text() == "Class Dog"
    for chart in ("#reliability", "#threshold-curve"):
        page.wait_for_function(
            "(sel) => { const i = document.querySelector(sel); return i.complete && i.naturalWidth > 0; }", arg=chart
        )
    assert page.eval_on_selector("#reliability", "img => img.naturalWidth") == 600
    strip = page.locator("#disconfirmed .strip img")
    assert strip.count() == 2  # one per Dog batch
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#disconfirmed img')).every((i) => i.naturalWidth > 0)"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "analytics-class-page.png"), full_page=True)


LONG_LABEL = ("Eastern gray squirrel, Sciurus carolinensis, perched on a branch in a park " * 3)[:200].strip()


def test_a_long_class_name_does_not_widen_the_table(page, live_server, pets, scientist):
    """Model label files hold 200-character names: one of them made the table some 4,000 px wide."""
    lines = [f'images/sq-{i:02d}.jpg,"{LONG_LABEL}",{90 + i / 10:.1f}' for i in range(3)]
    predictions_import(
        dataset_name="pets", stream=io.BytesIO(("\n".join(lines) + "\n").encode()), images_root=pets.images_root
    )
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, live_server, scientist.username)
    page.goto(f"{live_server.url}/analytics/?dataset=pets")
    link = page.locator("#report-table tr.class-row a", has_text="Eastern gray squirrel")
    assert link.get_attribute("title") == LONG_LABEL
    assert link.inner_text() == LONG_LABEL  # cut on screen only
    assert link.evaluate("e => e.scrollWidth > e.clientWidth"), "the name is cut"
    assert link.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "analytics-long-label.png"), full_page=True)

    # The name column stays narrow (16rem and the padding), so the long name widens the table by at most that much.
    # (With the four default buckets of three columns each, the table is wider than 1280 px whatever the names, and
    # scrolls in its frame; the page itself does not scroll sideways.)
    cell = link.evaluate("e => e.closest('td').getBoundingClientRect().width")
    assert cell <= 16 * 16 + 20, cell
    widths = page.evaluate(
        """() => {
          const table = document.getElementById('report-table');
          const row = Array.from(table.querySelectorAll('tr.class-row')).find((r) => r.innerText.includes('squirrel'));
          const wide = table.getBoundingClientRect().width;
          const next = row.nextSibling;
          row.remove();
          const narrow = table.getBoundingClientRect().width;
          next.before(row);
          return {wide, narrow};
        }"""
    )
    assert widths["wide"] - widths["narrow"] <= 16 * 16, widths
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    # Scrolled sideways to the last bucket, the class names stay in view at the frame's left edge.
    frame = page.locator(".table-wrap")
    assert frame.evaluate("e => e.scrollWidth > e.clientWidth"), "the table is wider than its frame at 1280 px"
    frame.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
    left = frame.evaluate("e => e.getBoundingClientRect().left")
    for cell in (link.locator("xpath=ancestor::td"), page.locator("#report-table thead th").first):
        assert abs(cell.evaluate("e => e.getBoundingClientRect().left") - left) <= 1
    last = page.locator("#report-table tr.class-row").first.locator("td").last
    assert last.evaluate("e => e.getBoundingClientRect().right") <= 1280
    frame.evaluate("e => { e.scrollLeft = 0; }")

    # Still the link to the class page.
    with page.expect_navigation():
        link.click()
    assert page.locator("h1").inner_text().startswith("Class Eastern gray squirrel")
