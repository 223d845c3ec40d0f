"""Request checks that every view would otherwise repeat."""

from collections.abc import Callable

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

NUL = "\x00"


class RejectNulCharacters(MiddlewareMixin):
    """Answer 400 to a path, query or form that carries a NUL character.

    PostgreSQL text cannot hold NUL, so a `?dataset=%00` would otherwise reach a query and end in a 500. The form is
    read only where CSRF protection reads it too: a csrf_exempt view (an upload, which installs its size-limiting
    upload handler first) has its form checked by `catalog.uploads.size_limited_upload` once the handler is set.
    """

    def process_view(self, request: HttpRequest, view_func: Callable, view_args, view_kwargs) -> HttpResponse | None:
        fields = [request.GET]
        if request.method == "POST" and not getattr(view_func, "csrf_exempt", False):
            fields.append(request.POST)
        texts = (text for q in fields for key, values in q.lists() for text in (key, *values))
        if NUL in request.path or any(NUL in text for text in texts):
            raise BadRequest("The request contains a NUL character.")
        return None
