import getpass
import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from labelqa.catalog.management.commands.add_user import Command


@pytest.mark.django_db
def test_add_user_creates_a_user_with_the_role_and_adds_roles_later(monkeypatch):
    monkeypatch.setenv("LABELQA_PASSWORD", "a-long-enough-password")
    call_command("add_user", "erin", "--role", "scientist")
    user = authenticate(username="erin", password="a-long-enough-password")
    assert user is not None and user.has_perm("analytics.view_analytics")
    assert not user.has_perm("review.review_batches")

    call_command("add_user", "erin", "--role", "admin")
    user = get_user_model().objects.get(username="erin")
    assert set(user.groups.values_list("name", flat=True)) == {"scientist", "admin"}
    assert user.is_staff and user.has_perm("catalog.manage_datasets")


@pytest.mark.django_db
def test_adding_a_role_to_an_existing_user_says_the_password_is_unchanged(monkeypatch):
    monkeypatch.setenv("LABELQA_PASSWORD", "a-long-enough-password")
    call_command("add_user", "erin", "--role", "scientist", stdout=io.StringIO())
    monkeypatch.setenv("LABELQA_PASSWORD", "another-long-password")
    out = io.StringIO()
    call_command("add_user", "erin", "--role", "admin", stdout=out)
    assert out.getvalue() == (
        "Updated user 'erin' with role admin (password unchanged; use `manage.py changepassword erin`)\n"
    )
    assert authenticate(username="erin", password="a-long-enough-password") is not None


@pytest.mark.django_db
def test_a_weak_password_from_the_environment_is_set_with_a_warning(monkeypatch):
    monkeypatch.setenv("LABELQA_PASSWORD", "123")
    errors = io.StringIO()
    call_command("add_user", "frank", "--role", "reviewer", stderr=errors)
    assert "warning: LABELQA_PASSWORD is weak (This password is too short." in errors.getvalue()
    assert authenticate(username="frank", password="123") is not None


@pytest.mark.django_db
def test_an_empty_password_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("LABELQA_PASSWORD", "")
    with pytest.raises(CommandError, match="LABELQA_PASSWORD is empty"):
        call_command("add_user", "frank", "--role", "reviewer")
    assert not get_user_model().objects.filter(username="frank").exists()


@pytest.mark.django_db
def test_a_weak_password_typed_at_the_prompt_is_refused(monkeypatch):
    monkeypatch.delenv("LABELQA_PASSWORD", raising=False)
    monkeypatch.setattr(Command, "stdin_isatty", staticmethod(lambda: True))
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "123")
    with pytest.raises(CommandError, match="password refused: This password is too short"):
        call_command("add_user", "frank", "--role", "reviewer")
    assert not get_user_model().objects.filter(username="frank").exists()
