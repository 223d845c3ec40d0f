"""Authentication backends."""

from axes.backends import AxesStandaloneBackend


class RequestOptionalAxesBackend(AxesStandaloneBackend):
    """Throttle logins that come through a request; let request-less calls fall through to ModelBackend.

    Every login form passes the request, so throttling still covers every way in from the web; only code that
    calls authenticate() directly (management commands, Django's test Client.login) has none to throttle.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
