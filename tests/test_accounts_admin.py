"""Admins manage accounts and role groups in the Django admin, but only superusers make superusers."""

import pytest
from django.contrib.auth.models import Group, Permission

from labelqa import roles


def user_form(user, **changes) -> dict:
    """The change form's fields as the admin page posts them for `user`, with `changes` applied."""
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "groups": [str(g.pk) for g in user.groups.all()],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.django_db
def test_an_admin_cannot_tick_superuser_status_or_give_raw_permissions(client, admin_user, reviewer):
    client.force_login(admin_user)
    permission = Permission.objects.get(codename="delete_user")
    response = client.post(
        f"/admin/auth/user/{reviewer.pk}/change/",
        user_form(reviewer, is_superuser="on", user_permissions=[str(permission.pk)], first_name="Alice"),
    )
    assert response.status_code == 302
    reviewer.refresh_from_db()
    assert reviewer.first_name == "Alice", "the rest of the account stays the admin's to edit"
    assert not reviewer.is_superuser and not reviewer.user_permissions.exists()

    client.post(f"/admin/auth/user/{admin_user.pk}/change/", user_form(admin_user, is_superuser="on"))
    admin_user.refresh_from_db()
    assert not admin_user.is_superuser


@pytest.mark.django_db
def test_an_admin_can_grant_a_role_but_not_change_what_a_role_may_do(client, admin_user, reviewer):
    client.force_login(admin_user)
    scientists = Group.objects.get(name=roles.SCIENTIST)
    response = client.post(
        f"/admin/auth/user/{reviewer.pk}/change/",
        user_form(reviewer, groups=[str(g.pk) for g in reviewer.groups.all()] + [str(scientists.pk)]),
    )
    assert response.status_code == 302
    assert roles.SCIENTIST in set(reviewer.groups.values_list("name", flat=True))

    before = set(scientists.permissions.all())
    everything = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]
    client.post(f"/admin/auth/group/{scientists.pk}/change/", {"name": scientists.name, "permissions": everything})
    assert set(scientists.permissions.all()) == before


@pytest.mark.django_db
def test_an_admin_cannot_edit_or_delete_a_superuser_but_a_superuser_can(client, django_user_model, admin_user):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin_user)
    assert client.get(f"/admin/auth/user/{root.pk}/change/").status_code == 200  # shown read-only
    assert client.post(f"/admin/auth/user/{root.pk}/change/", user_form(root, is_active=None)).status_code == 403
    assert client.post(f"/admin/auth/user/{root.pk}/delete/", {"post": "yes"}).status_code == 403
    root.refresh_from_db()
    assert root.is_active

    client.force_login(root)
    response = client.post(f"/admin/auth/user/{admin_user.pk}/change/", user_form(admin_user, is_superuser="on"))
    assert response.status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.is_superuser
