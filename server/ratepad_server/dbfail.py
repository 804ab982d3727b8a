"""The database away (a failover, a restart, a network cut): 503 with ``Retry-After``, not 500.

A request whose database connection fails (it cannot connect, the server closed it, or the
node it reached no longer takes writes) is answered 503 with ``Retry-After`` (JSON
``{"detail": ...}`` under ``/api/``, a short page elsewhere) and one line in the log instead of
a traceback. Nothing was committed for it: an agent sends the batch again (its outbox keeps
it until a 200), a browser reloads. The broken connection is closed at once, so the next
request connects again; with a failover group's URL (``dburl``) that connection finds the new
primary.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.html import escape
from django.utils.translation import gettext as _

log = logging.getLogger("ratepad.db")

RETRY_AFTER_S = 5  # about one failover check; agents back off on their own as well
READ_ONLY = "25006"  # read_only_sql_transaction: the node was demoted to a standby


def database_unavailable(exc: BaseException) -> bool:
    """The connection failed, as opposed to a query the database refused (those stay 500s:
    they are the server's bugs and a retry would not help)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    cause = exc.__cause__
    return isinstance(exc, DatabaseError) and getattr(cause, "sqlstate", None) == READ_ONLY


def close_broken_connections() -> None:
    """Close this thread's connections that saw an error: a demoted node still answers the
    health check (``SELECT 1``), so Django alone would keep using it until CONN_MAX_AGE."""
    for conn in connections.all(initialized_only=True):
        if conn.errors_occurred:
            conn.close()


class DatabaseUnavailable(MiddlewareMixin):
    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not database_unavailable(exc):
            return None
        close_broken_connections()
        from .ops.metrics import database_error

        database_error("request", exc)  # /metrics: ratepad_database_errors_total
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("database unavailable (%s %s answered 503): %s", request.method,
                    request.path, first)  # fmt: skip
        detail = _("The database cannot be reached just now; try again in a few seconds.")
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": detail}, status=503)
        else:
            response = HttpResponse(
                f"<!doctype html><title>503</title><p>{escape(detail)}</p>", status=503
            )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
