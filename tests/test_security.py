"""Deployment hardening: check --deploy, security headers and CSP, login throttling, escaping of imported labels."""

import io
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from labelqa.catalog.services import predictions_import
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_check_deploy_passes_in_production():
    # Other tests (Playwright's) may leave DJANGO_ALLOW_ASYNC_UNSAFE set; no deployment has it.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env |= {
        "LABELQA_PRODUCTION": "true",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "example.com",
        "DJANGO_DEBUG": "false",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_need_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env["LABELQA_PRODUCTION"] = "true"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_a_site_others_can_reach_needs_a_secret_key_even_outside_production():
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "LABELQA_PRODUCTION")}
    env["DJANGO_ALLOWED_HOSTS"] = "labelqa.example.com"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_ALLOWED_HOSTS names other hosts" in result.stderr
    env["DJANGO_ALLOWED_HOSTS"] = "localhost,127.0.0.1"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def leased_grid(client: Client):
    response = client.get(reverse("review:next"), follow=True)
    assert response.status_code == 200
    assert response.redirect_chain and "/review/batch/" in response.redirect_chain[-1][0]
    return response


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_review_grid_has_csp_and_frame_headers(client, reviewer, pets):
    client.force_login(reviewer)
    response = leased_grid(client)
    assert "Content-Security-Policy" in response
    csp = csp_directives(response)
    assert csp["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert "'unsafe-inline'" not in csp["style-src"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    # No inline script or style on the page, which the policy would block.
    html = response.content.decode()
    assert "<script>" not in html and "<style" not in html and " style=" not in html


def test_login_page_has_csp(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert "'unsafe-inline'" not in csp_directives(response)["script-src"]
    assert response["X-Frame-Options"] == "DENY"


def test_session_cookie_is_httponly(client, reviewer):
    response = client.post(reverse("login"), {"username": reviewer.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies["sessionid"]["httponly"]


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True


def login_post(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def signed_in(client) -> bool:
    response = client.get(reverse("review:home"))
    return response.status_code == 200


def test_six_failed_logins_lock_the_user_out(axes_on, client, reviewer):
    for attempt in range(1, 6):
        response = login_post(client, reviewer.username, "wrong-password")
        assert response.status_code in (200, 429), attempt
    # The limit is 5: the 6th attempt is refused even with the right password.
    response = login_post(client, reviewer.username, PASSWORD)
    assert response.status_code == 429
    assert "Account locked" in response.content.decode()
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert not signed_in(client)
    # Another user from the same address is not locked out.
    other = get_user_model().objects.create_user("erin", password=PASSWORD)
    fresh = Client()
    assert login_post(fresh, other.username, PASSWORD).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("length", [151, 256, 5000])
def test_an_over_long_user_name_is_a_failed_sign_in_not_a_server_error(axes_on, client, length):
    """django-axes records failed attempts in a 255-character column; the form stops longer names first."""
    response = login_post(client, "u" * length, "x")
    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    assert not signed_in(client)


def test_a_successful_login_resets_the_failure_count(axes_on, client, reviewer):
    for _ in range(4):
        assert login_post(client, reviewer.username, "wrong-password").status_code == 200
    assert login_post(client, reviewer.username, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        assert login_post(client, reviewer.username, "wrong-password").status_code == 200
    assert login_post(client, reviewer.username, PASSWORD).status_code == 302
    assert signed_in(client)


@pytest.fixture
def xss_dataset(db, tmp_path):
    rows = "".join(f'images/x-{i:04d}.jpg,"{XSS}",{80 + i % 20}\n' for i in range(12))
    predictions_import(dataset_name="xss", stream=io.BytesIO(rows.encode()), images_root=str(tmp_path))
    from labelqa.catalog.models import Dataset

    dataset = Dataset.objects.get(name="xss")
    assert dataset.predictions.filter(label=XSS).exists()
    return dataset


def test_script_label_is_escaped_on_the_review_grid(client, reviewer, xss_dataset):
    client.force_login(reviewer)
    html = leased_grid(client).content.decode()
    assert XSS not in html
    assert XSS_ESCAPED in html


def test_script_label_is_escaped_on_analytics(client, scientist, xss_dataset):
    client.force_login(scientist)
    response = client.get(reverse("analytics:index"), {"dataset": "xss"})
    assert response.status_code == 200
    html = response.content.decode()
    assert XSS not in html
    assert XSS_ESCAPED in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "method", "url", "data"),
    [
        ("reviewer", "get", "/review/next/", {"dataset": "\x00"}),
        ("reviewer", "get", "/review/next/", {"label": "Dog\x00"}),
        ("scientist", "get", "/analytics/pets%00/report.json", {}),
        ("scientist", "get", "/analytics/", {"dataset": "\x00"}),
        ("admin_user", "post", "/review/quality/exclusion/", {"dataset": "pets\x00", "reviewer": "1"}),
        ("admin_user", "get", "/review/quality/", {"dataset\x00": "pets"}),
        ("admin_user", "post", "/review/gold/", {"dataset": "pets\x00"}),  # an upload form: exempt from the middleware
    ],
)
def test_a_nul_character_gets_a_bad_request_page_not_a_server_error(request, pets, who, method, url, data):
    """PostgreSQL text cannot hold NUL: such a request must be refused before it reaches a query."""
    client = Client(raise_request_exception=False)
    client.force_login(request.getfixturevalue(who))
    response = getattr(client, method)(url, data)
    assert response.status_code == 400
    assert "Bad request" in response.content.decode()


def test_a_forbidden_page_logs_one_line_not_a_traceback(client, reviewer):
    """Reviewers opening admin pages is routine: the log says so in one line per request."""
    # The console handler settings.LOGGING configures, writing into a buffer instead of stderr for the request.
    console = next(h for h in logging.getLogger().handlers if h.filters)
    written = io.StringIO()
    stderr = console.setStream(written)
    try:
        client.force_login(reviewer)
        assert client.get(reverse("catalog:datasets")).status_code == 403
    finally:
        console.setStream(stderr)
    assert "Forbidden" in written.getvalue()
    assert "Traceback" not in written.getvalue()
    assert written.getvalue().count("\n") == 1
