import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command


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
def test_add_user_refuses_a_weak_password(monkeypatch):
    monkeypatch.setenv("LABELQA_PASSWORD", "123")
    with pytest.raises(CommandError, match="password refused"):
        call_command("add_user", "frank", "--role", "reviewer")
    assert not get_user_model().objects.filter(username="frank").exists()
