"""Uploading predictions in a real browser, imported by a real Celery worker: the bar moves and finishes for a large
file, and a bad file shows its lines in red."""

import time

import pytest

from labelqa.catalog.models import ImportJob, Prediction
from tests.browser.conftest import ARTIFACTS, login

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
ROWS = 200_000


def write_predictions(path, rows: int) -> None:
    labels = ("Dog", "Cat", "Fox", "Crawdad")
    with path.open("w") as f:
        f.writelines(f"images/{i:07d}.jpg,{labels[i % 4]},{80 + (i * 7919) % 2000 / 100:.2f}\n" for i in range(rows))


def upload(page, live_server, dataset: str, path) -> None:
    page.goto(f"{live_server.url}/datasets/")
    page.fill("#upload_dataset", dataset)
    page.fill("#upload_images_root", str(path.parent))
    page.set_input_files("#upload_file", str(path))
    with page.expect_navigation():
        page.click("#upload-form button[type=submit]")
    assert "/datasets/imports/" in page.url


def watch_bar(page, timeout: float = 60) -> list[float]:
    """Return the bar's values as seen every 50 ms until the job page says the job ended."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = page.get_attribute("#import", "data-status") in ("done", "failed")
        # Read after the status: one poll sets both, so a value read first may predate the final one.
        seen.append(float(page.get_attribute("#import-bar", "value")))
        if ended:
            return seen
        page.wait_for_timeout(50)
    raise AssertionError(f"the job did not end within {timeout} s; bar values seen: {sorted(set(seen))}")


def test_the_bar_moves_and_finishes_for_a_large_file_and_a_bad_file_shows_its_lines(
    page, live_server, admin_user, live_worker, tmp_path
):
    big = tmp_path / "big.csv"
    write_predictions(big, ROWS)
    login(page, live_server, admin_user.username)

    upload(page, live_server, "big", big)
    seen = watch_bar(page)
    assert page.get_attribute("#import", "data-status") == "done", page.inner_text("#import-status")
    assert any(0 < value < 100 for value in seen), f"the bar never showed a step between 0 and 100: {set(seen)}"
    assert seen == sorted(seen), "the bar never moves back"
    assert seen[-1] == 100
    assert f"{ROWS:,} rows validated, {ROWS:,} imported" in page.inner_text("#import-status")
    assert Prediction.objects.filter(dataset__name="big").count() == ROWS
    page.screenshot(path=str(ARTIFACTS / "import-done.png"))

    bad = tmp_path / "bad.csv"
    bad.write_text("a.jpg,Dog,90\nb.jpg,Cat,abc\nc.jpg,,50\n")
    upload(page, live_server, "big", bad)
    watch_bar(page)
    errors = page.locator("#import-errors li")
    errors.first.wait_for()
    assert errors.all_inner_texts() == [
        "line 2: confidence 'abc' is not a number",
        "line 3: label is empty",
    ]
    red, green, blue = (
        int(c) for c in page.eval_on_selector("#import-errors", "e => getComputedStyle(e).color")[4:-1].split(",")
    )
    assert red > 2 * max(green, blue), "the error list is shown in red"
    assert ImportJob.objects.order_by("pk").last().status == ImportJob.Status.FAILED
    assert Prediction.objects.filter(dataset__name="big").count() == ROWS, "the bad file changed nothing"
    page.screenshot(path=str(ARTIFACTS / "import-failed.png"))
