"""Receive uploaded files within a size limit, spooled to disk rather than memory."""

import functools

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from labelqa.middleware import RejectNulCharacters


class SizeLimitedUploadHandler(TemporaryFileUploadHandler):
    """Spool each uploaded file to a temporary file, and drop it as soon as it passes `limit` bytes.

    Reading stops at the limit, so an oversized file never fills the disk; the rest of the request is read and
    discarded (not reset) so the browser gets the page that says why. `exceeded` tells the view.
    """

    def __init__(self, request, limit: int):
        super().__init__(request)
        self.limit = limit
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int):
        if start + len(raw_data) > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)


def size_limited_upload(view):
    """Read the view's uploads through a SizeLimitedUploadHandler at LABELQA_MAX_UPLOAD_BYTES, its `upload_handler`.

    The handler must be set before anything reads the request body, and the CSRF middleware reads it to find the
    token: so the view is csrf_exempt, and CSRF and the NUL check that the middleware would have made are made here,
    once the handler is set (Django's documented pattern for per-view upload handlers).
    """
    checked = csrf_protect(decorator_from_middleware(RejectNulCharacters)(view))

    @csrf_exempt
    @functools.wraps(view)
    def with_upload_handler(request, *args, **kwargs):
        handler = SizeLimitedUploadHandler(request, settings.LABELQA_MAX_UPLOAD_BYTES)
        request.upload_handlers = [handler]
        return checked(request, *args, upload_handler=handler, **kwargs)

    return with_upload_handler
