"""The analytics table and a class page in a real browser: sorting in place, the class link, the charts."""

import pytest

from labelqa.catalog.models import Prediction
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
