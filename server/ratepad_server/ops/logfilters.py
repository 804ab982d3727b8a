"""What the server's log keeps of a refused request.

Django logs every 4xx and 5xx answer (``django.request``, ``django.security.*``) with the
request's path, and a 403 with the exception's traceback. A client's error is not the server's:
its traceback is noise that buries real ones, so it is dropped (5xx keep theirs). The path and
any other argument come from the client: a control character in them (a line break above all)
would let a client write lines of its own into the log, so each is shown as U+FFFD."""

from __future__ import annotations

import logging

from ..text import printable


class ClientErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        if isinstance(record.args, tuple):
            record.args = tuple(printable(a) if isinstance(a, str) else a for a in record.args)
        return True
