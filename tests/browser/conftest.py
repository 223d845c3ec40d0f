"""Browser fixtures: one headless Chromium for the session (Debian's; Playwright never downloads one), a page per test.

The browser talks to pytest-django's `live_server` over real HTTP; tests using it need
`@pytest.mark.django_db(transaction=True)` because the server thread has its own database connection.
"""

import os
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw

from tests.conftest import PASSWORD

# Playwright's sync API keeps an asyncio event loop marked as running in this thread from
# `sync_playwright().start()` until `stop()`, i.e. for the rest of the session once the browser fixture
# has started. Django's ORM refuses to run while a loop runs in its thread (SynchronousOnlyOperation),
# which would break every database call made from the test thread afterwards -- fixtures, the
# transactional flush between tests, and the database checks in the tests themselves. Nothing here is
# actually async (the live server answers from its own thread), so the guard is switched off.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("LABELQA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.access(CHROMIUM, os.X_OK):
        # In CI a missing browser must fail the run, not turn every browser test into a quiet skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no Chromium at {CHROMIUM} (run `make system-deps`)")
    playwright = sync_api.sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
    finally:
        playwright.stop()


def _new_page(browser, **context_options):
    context = browser.new_context(viewport=VIEWPORT, **context_options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    return context, page, errors


def _close(context, page) -> None:
    """Let the page's requests finish first: the live server would otherwise still be answering them (and
    writing thumbnails) while pytest-django empties the database after the test."""
    try:
        page.wait_for_load_state("networkidle", timeout=5_000)
    finally:
        context.close()


@pytest.fixture
def page(browser):
    """A page in a fresh context (own cookies); the test fails if the page logs a JavaScript error."""
    context, page, errors = _new_page(browser)
    yield page
    _close(context, page)
    assert not errors, "JavaScript errors on the page:\n" + "\n".join(errors)


@pytest.fixture
def nojs_page(browser):
    """A page in a fresh context with JavaScript disabled."""
    context, page, _ = _new_page(browser, java_script_enabled=False)
    yield page
    _close(context, page)


SHAPES = {"Dog": "ellipse", "Cat": "triangle", "Fox": "rectangle"}


def _draw(path: Path, label: str, index: int) -> None:
    """A 320x240 JPEG: a light background whose hue walks with the index and a dark shape per label."""
    hue = (index * 47) % 360
    background = PILImage.new("HSV", (320, 240), (int(hue * 255 / 360), 60, 235)).convert("RGB")
    draw = ImageDraw.Draw(background)
    fill = PILImage.new("HSV", (1, 1), (int(((hue + 180) % 360) * 255 / 360), 200, 150)).convert("RGB").getpixel((0, 0))
    box = (90, 50, 230, 190)
    shape = SHAPES.get(label, "ellipse")
    if shape == "ellipse":
        draw.ellipse(box, fill=fill, outline="black", width=4)
    elif shape == "triangle":
        draw.polygon([(160, 40), (240, 200), (80, 200)], fill=fill, outline="black", width=4)
    else:
        draw.rectangle(box, fill=fill, outline="black", width=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    background.save(path, "JPEG", quality=85)


@pytest.fixture
def pets_images(pets, media_root):
    """Write a real JPEG for every image of the `pets` dataset, so thumbnails are real, not placeholders."""
    from labelqa.catalog.models import Image

    root = Path(pets.images_root)
    for n, (path, label) in enumerate(
        Image.objects.filter(dataset=pets).values_list("path", "prediction__label").order_by("path")
    ):
        _draw(root / path, label or "Dog", n)
    return pets


def login(page, live_server, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form (the fields are filled, the button clicked)."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/accounts/login/" not in page.url, "login failed"


def login_with_keyboard(page, live_server, username: str, password: str = PASSWORD) -> None:
    """Sign in without the mouse: the user name field has autofocus; type, Tab, type, Enter."""
    page.goto(f"{live_server.url}/accounts/login/")
    # Autofocus may land just after the load event: wait for it (a page without it times out here).
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'id_username'", timeout=5000)
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, "the keyboard login failed"
