"""Receive uploaded files within a size limit, spooled to disk rather than memory."""

from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


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
