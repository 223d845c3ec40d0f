"""Every route in the URLconf, requested as every role, against one table of who may open what.

DESIGN.md, "Who uses it" and "Pages": anonymous users see only the login page (and /healthz/); a signed-in user
without the role gets 403. A route missing from RULES fails the test, so no view ships without a rule.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from labelqa.catalog.models import ClassificationRun, Dataset, ImportJob
from labelqa.review.models import Batch
from tests.conftest import PASSWORD

ROLES = ("reviewer", "scientist", "admin", "superuser")
EVERYONE = frozenset(ROLES)
REVIEW = frozenset({"reviewer", "admin", "superuser"})
ANALYTICS = frozenset({"scientist", "admin", "superuser"})
MANAGE = frozenset({"admin", "superuser"})
IMAGES = REVIEW | ANALYTICS
LOGIN = "/accounts/login/"


@dataclass(frozen=True)
class Rule:
    """`allowed` roles get `ok` (the status code) for `method`; other signed-in roles get 403."""

    allowed: frozenset
    ok: int
    method: str = "get"
    query: str = ""
    public: bool = False  # anonymous users get `ok` too instead of the login redirect
    # For POST-only views: the status of a GET for allowed roles, and for refused ones (405 where
    # require_POST runs before the role check, 403 where the role check runs first).
    get_status: int | None = None
    get_refused: int = 403


# The one table. Keys: the route's full name ("namespace:name"), or its pattern for unnamed routes.
RULES: dict[str, Rule] = {
    "home": Rule(EVERYONE, 302),  # to the page of the user's main role
    "healthz": Rule(EVERYONE, 200, public=True),
    "login": Rule(EVERYONE, 200, public=True),
    # A GET asks to confirm (signed out already: to the sign-in page, checked below).
    "logout": Rule(EVERYONE, 302, method="post", public=True, get_status=200),
    # Django admin: staff only, like every other page (its own login form is never shown).
    "admin": Rule(MANAGE, 200),
    "favicon.ico": Rule(EVERYONE, 301),
    "catalog:datasets": Rule(MANAGE, 200),
    "catalog:classify": Rule(MANAGE, 200),
    "catalog:run": Rule(MANAGE, 200),
    "catalog:run_progress": Rule(MANAGE, 200),
    "catalog:import_job": Rule(MANAGE, 200),
    "catalog:import_progress": Rule(MANAGE, 200),
    # Regroups the dataset's unreviewed batches, then back to the datasets page.
    "catalog:reform": Rule(MANAGE, 302, method="post", get_status=405),
    "catalog:thumbnail": Rule(IMAGES, 200),
    "catalog:original": Rule(IMAGES, 200),
    "review:home": Rule(REVIEW, 200),
    # Not leased to the user: redirected to review:next (checked before review:next leases one).
    "review:batch": Rule(REVIEW, 302),
    "review:next": Rule(REVIEW, 302),  # leases a batch and redirects to it
    "review:quality": Rule(MANAGE, 200),
    # An empty POST names no dataset: 404 once past the role check.
    "review:exclusion": Rule(MANAGE, 404, method="post", get_status=405),
    "review:gold": Rule(MANAGE, 200),
    # An empty POST names no dataset: 404 once past the role check.
    "review:gold_rate": Rule(MANAGE, 404, method="post", get_status=405),
    # An empty POST names no prediction: back to the gold page with the form's errors.
    "review:gold_mark": Rule(MANAGE, 302, method="post", get_status=405),
    # No correction pass is open in the fixture: the "nothing to correct" page.
    "review:correct": Rule(REVIEW, 200),
    "review:correction_pass": Rule(MANAGE, 200),
    "analytics:index": Rule(ANALYTICS, 200),
    "analytics:prioritise": Rule(ANALYTICS, 302, method="post", get_status=405),
    "analytics:report": Rule(ANALYTICS, 200),
    "analytics:labels": Rule(ANALYTICS, 200),
    "analytics:calibration": Rule(ANALYTICS, 200),
    "analytics:threshold": Rule(ANALYTICS, 200, query="label=Dog"),
    "analytics:class": Rule(ANALYTICS, 200),
}


def walk(patterns, prefix="", namespace=""):
    """Yield (key, pattern, route prefix) for every leaf route; Django admin counts as one route, "admin"."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                yield "admin", None, prefix + str(entry.pattern)
                continue
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            key = f"{namespace}{entry.name}" if entry.name else prefix + str(entry.pattern)
            yield key, entry, prefix + str(entry.pattern)


def all_routes():
    return list(walk(get_resolver().url_patterns))


def test_every_route_has_a_rule():
    keys = [key for key, _, _ in all_routes()]
    missing = [key for key in keys if key not in RULES]
    assert not missing, f"routes without a rule in tests/test_authorization.py RULES: {', '.join(missing)}"
    stale = sorted(set(RULES) - set(keys))
    assert not stale, f"RULES names routes that no longer exist: {', '.join(stale)}"


@pytest.fixture
def kwargs_values(pets, admin_user):
    batch = Batch.objects.filter(dataset=pets, label="Dog").order_by("pk").first()
    run = ClassificationRun.objects.create(dataset=pets, source="/nowhere", model="efficientnet-lite0")
    job = ImportJob.objects.create(dataset_name=pets.name, file_name="p.csv", uploaded_by=admin_user)
    return {
        "dataset": pets.name,
        "label": "Dog",
        "fmt": "csv",
        "batch_id": batch.pk,
        "run_id": run.pk,
        "job_id": job.pk,
        # Another dataset: re-forming pets' batches would take away the batch that review:batch opens.
        "dataset_id": Dataset.objects.create(name="spare").pk,
        "image_id": pets.predictions.first().image_id,
    }


def url_for(key, pattern, route, values):
    if pattern is None:  # Django admin
        return "/" + route
    if not pattern.name:
        return "/" + route
    converters = pattern.pattern.converters
    return reverse(key, kwargs={name: values[name] for name in converters})


@pytest.fixture
def clients(reviewer, scientist, admin_user):
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    users = {"reviewer": reviewer, "scientist": scientist, "admin": admin_user, "superuser": superuser}
    result = {}
    for role, user in users.items():
        client = Client()
        client.force_login(user)
        result[role] = client
    return result


def request(client, rule, url):
    target = f"{url}?{rule.query}" if rule.query else url
    return getattr(client, rule.method)(target)


@pytest.mark.django_db
def test_every_route_as_every_role(clients, kwargs_values):
    failures = []
    routes = sorted(all_routes(), key=lambda r: r[0])
    for key, pattern, route in routes:
        rule = RULES.get(key)
        if rule is None:
            failures.append(f"{key}: no rule in RULES")
            continue
        url = url_for(key, pattern, route, kwargs_values)

        anonymous = request(Client(), rule, url)
        if rule.public:
            if anonymous.status_code != rule.ok:
                failures.append(f"{key} {url} anonymous: {anonymous.status_code}, expected {rule.ok}")
        elif anonymous.status_code != 302 or not anonymous["Location"].startswith(LOGIN + "?next="):
            failures.append(f"{key} {url} anonymous: {anonymous.status_code} {anonymous.get('Location')}")

        for role in ROLES:
            client = clients[role]
            if rule.get_status is not None:
                expected = rule.get_status if role in rule.allowed else rule.get_refused
                got = client.get(url).status_code
                if got != expected:
                    failures.append(f"{key} {url} GET as {role}: {got}, expected {expected}")
            if key == "logout":
                continue  # signing out would end this client's session; checked below
            response = request(client, rule, url)
            status = response.status_code
            if role in rule.allowed:
                if status != rule.ok:
                    failures.append(f"{key} {url} {rule.method.upper()} as {role}: {status}, expected {rule.ok}")
                elif status == 302 and response["Location"].startswith(LOGIN):
                    failures.append(f"{key} {url} as {role}: redirected to the login page")
            elif status != 403:
                failures.append(f"{key} {url} {rule.method.upper()} as {role}: {status}, expected 403")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_the_admins_own_login_page_is_never_shown(clients):
    """It would be a second login page; the admin sends people to the site's, or answers 403 as every page does."""
    anonymous = Client().get("/admin/login/?next=/admin/review/vote/")
    assert anonymous.status_code == 302 and anonymous["Location"] == LOGIN + "?next=/admin/review/vote/"
    assert clients["reviewer"].get("/admin/login/").status_code == 403
    staff = clients["admin"].get("/admin/login/")
    assert staff.status_code == 302 and staff["Location"] == "/admin/"
    for role in ROLES:
        client = clients[role]
        response = client.post(reverse("logout"))
        assert response.status_code == 302 and response["Location"] == LOGIN, role
        after = client.get("/review/")
        assert after.status_code == 302 and after["Location"].startswith(LOGIN), role


@pytest.mark.django_db
def test_the_sign_out_address_opened_asks_first_or_sends_to_sign_in(reviewer):
    """Signing in from /accounts/login/?next=/accounts/logout/ (a stale tab) used to end on a 405."""
    anonymous = Client().get(reverse("logout"))
    assert anonymous.status_code == 302 and anonymous["Location"] == LOGIN, "no ?next= that leads back here"
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    page = client.get(reverse("logout"))
    assert page.status_code == 200 and 'id="sign-out"' in page.content.decode()
    assert client.get("/review/").status_code == 200, "opening the page signs nobody out"
    response = client.post(reverse("logout"), {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert client.get("/review/")["Location"].startswith(LOGIN)


@pytest.mark.django_db
def test_no_role_user_is_refused_everywhere_but_home(db, kwargs_values):
    """A signed-in user with no group (e.g. a fresh account) opens nothing of ours."""
    user = get_user_model().objects.create_user("nobody", password=PASSWORD)
    client = Client()
    client.force_login(user)
    for key, pattern, route in all_routes():
        rule = RULES.get(key)
        if rule is not None and rule.allowed != EVERYONE:
            url = url_for(key, pattern, route, kwargs_values)
            assert request(client, rule, url).status_code == 403, key


@pytest.mark.django_db
def test_home_tells_a_user_without_a_role_to_ask_for_one_and_sends_staff_to_the_admin(db):
    """Home used to send them to /review/, whose 403 page linked back home: a loop."""
    user = get_user_model().objects.create_user("nobody", password=PASSWORD)
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    assert "Your account nobody has no role" in response.content.decode()

    user.is_staff = True
    user.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")


# Class-based views of Django's own (the admin, login, the favicon's redirect) answer methods as Django decides.
DJANGOS_OWN = {"admin", "login", "favicon.ico"}


@pytest.mark.django_db
def test_every_page_answers_head_as_get_and_refuses_other_methods(clients, kwargs_values):
    """HEAD is GET without the body (HTTP requires it wherever GET works); OPTIONS, PUT or DELETE reach no view.

    /review/next/ leased a batch on an OPTIONS request: a view without a method check runs on any method.
    """
    client = clients["superuser"]
    failures = []
    for key, pattern, route in sorted(all_routes(), key=lambda r: r[0]):
        rule = RULES[key]
        if key in DJANGOS_OWN or rule.method != "get":
            continue
        url = url_for(key, pattern, route, kwargs_values)
        target = f"{url}?{rule.query}" if rule.query else url
        head = client.head(target)
        body = b"".join(head.streaming_content) if head.streaming else head.content
        if head.status_code != rule.ok or body:
            failures.append(f"HEAD {key} {url}: {head.status_code} with {len(body)} bytes, expected {rule.ok}")
        for method in ("options", "put", "delete", "patch"):
            status = getattr(client, method)(target).status_code
            if status != 405:
                failures.append(f"{method.upper()} {key} {url}: {status}, expected 405")
    assert not failures, "\n".join(failures)
