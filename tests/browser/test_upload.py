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


def test_the_job_page_says_why_its_progress_stopped_and_carries_on_once_it_can(page, live_server, admin_user):
    """Signed out in another tab, the progress address answers with the sign-in page: the bar used to freeze."""
    job = ImportJob.objects.create(
        dataset_name="big", file_name="p.csv", uploaded_by=admin_user, status=ImportJob.Status.RUNNING
    )
    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/datasets/imports/{job.pk}/")
    trouble = page.locator("#import-trouble")
    page.wait_for_timeout(1500)  # a poll or two that get through
    assert trouble.is_hidden()

    page.context.clear_cookies()
    trouble.wait_for(state="visible", timeout=5000)
    assert "You are signed out" in trouble.inner_text() and "sign in again" in trouble.inner_text()

    other_tab = page.context.new_page()
    login(other_tab, live_server, admin_user.username)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.DONE)
    page.wait_for_function("() => document.getElementById('import').dataset.status === 'done'", timeout=8000)
    assert trouble.is_hidden()


def test_a_refused_upload_says_so_at_the_top_of_the_page(page, live_server, admin_user, tmp_path):
    """The form lies below the fold at 1280×720: its field errors alone looked like the same page as before."""
    page.set_viewport_size({"width": 1280, "height": 720})
    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/datasets/")
    page.fill("#upload_dataset", "pets")
    page.fill("#upload_images_root", str(tmp_path / "nowhere"))
    predictions = tmp_path / "p.csv"
    predictions.write_text("a.jpg,Dog,90\n")
    page.set_input_files("#upload_file", str(predictions))
    with page.expect_navigation():
        page.click("#upload-form button[type=submit]")

    summary = page.locator("#upload-refused")
    assert summary.is_visible() and summary.bounding_box()["y"] + summary.bounding_box()["height"] <= 720
    page.wait_for_function("() => document.activeElement.id === 'upload-refused'", timeout=5000)  # Tab goes on from it
    assert f"Images root: There is no directory {tmp_path / 'nowhere'} on the server." in summary.inner_text()
    field = page.locator("#upload_images_root")
    assert field.get_attribute("aria-invalid") == "true"
    described = field.get_attribute("aria-describedby").split()
    assert "There is no directory" in page.locator(f"#{described[-1]}").inner_text(), "the field names its error"
    summary.get_by_role("link", name="Images root").click()
    assert page.evaluate("document.activeElement.id") == "upload_images_root"
    assert not ImportJob.objects.exists()
