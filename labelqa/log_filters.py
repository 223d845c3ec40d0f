"""Filters for settings.LOGGING (no Django imports: settings loads this module)."""

import logging


def client_errors_without_traceback(record: logging.LogRecord) -> bool:
    """Keep a 4xx answer (a reviewer opening an admin page, a stale link) to one line: it is routine, not a fault."""
    if 400 <= getattr(record, "status_code", 0) < 500:
        record.exc_info = None
        record.exc_text = None
    return True
