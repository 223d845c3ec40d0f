"""The sign-in form."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator


class SignInForm(AuthenticationForm):
    """Django's form, with the user name's length checked on the server as well as in the browser.

    Django sets it as an HTML attribute only: an over-long name reached authenticate(), and django-axes, recording
    the failed attempt in a 255-character column, answered 500 to anyone who posted one.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length))
