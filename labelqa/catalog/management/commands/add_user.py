import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from labelqa.roles import ROLES, grant_role


class Command(BaseCommand):
    help = (
        "Create a user with a role, or add the role to an existing user. "
        "A new user's password comes from LABELQA_PASSWORD, else it is prompted for; an existing user's is left "
        "as it is (manage.py changepassword sets it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)

    def handle(self, *args, username, role, **options):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        with transaction.atomic():
            if user is None:
                user = User(username=username)
                user.set_password(self._password(user))
                try:
                    user.full_clean()
                except ValidationError as exc:
                    raise CommandError(f"cannot create {username!r}: {' '.join(exc.messages)}")
                user.save()
                created = True
            else:
                created = False
            grant_role(user, role)
        if created:
            self.stdout.write(f"Created user {username!r} with role {role}")
        else:
            # Setting LABELQA_PASSWORD for a role change must not reset someone's password behind their back.
            self.stdout.write(
                f"Updated user {username!r} with role {role} "
                f"(password unchanged; use `manage.py changepassword {username}`)"
            )

    def _password(self, user) -> str:
        password = os.environ.get("LABELQA_PASSWORD")
        if password is not None:
            if not password:
                raise CommandError("LABELQA_PASSWORD is empty; set it to the password, or unset it to be asked")
            # A password set by a script is the operator's choice (as with Django's createsuperuser --noinput):
            # a weak one is said, not refused, so scripted and test set-ups keep working.
            if problems := _password_problems(password, user):
                self.stderr.write(f"warning: LABELQA_PASSWORD is weak ({problems}); set a stronger one for real use")
            return password
        if not self.stdin_isatty():
            raise CommandError("set LABELQA_PASSWORD or run in a terminal to be asked for the password")
        password = getpass.getpass(f"Password for {user.username}: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("the passwords did not match; nothing was changed")
        if problems := _password_problems(password, user):
            raise CommandError(f"password refused: {problems}")
        return password

    @staticmethod
    def stdin_isatty() -> bool:
        import sys

        return sys.stdin.isatty()


def _password_problems(password: str, user) -> str:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return " ".join(exc.messages)
    return ""
