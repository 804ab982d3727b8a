"""``/healthz``, ``/readyz`` and ``/metrics``, answered by the first middleware: before sessions,
the locale, the host check (a load balancer asks by address) and any view.

* ``/healthz``: 200 while the process answers at all; nothing else is looked at.
* ``/readyz``: 200 when the database answers and every migration on disk is applied, else 503
  with the reason (one query: the applied migrations; the ones on disk are read once).
* ``/metrics``: the Prometheus text (``metrics.exposition``), to the addresses of
  ``RATEPAD_METRICS_ALLOW`` only (default loopback; else 403), and, with
  ``RATEPAD_METRICS_TOKEN`` set, only with ``Authorization: Bearer <token>`` (else 401).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from . import metrics

Handler = Callable[[HttpRequest], HttpResponseBase]


class OpsEndpoints:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.paths: dict[str, Handler] = {
            "/healthz": healthz, "/readyz": readyz, "/metrics": scrape,
        }  # fmt: skip

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        handler = self.paths.get(request.path_info)
        if handler is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return JsonResponse({"detail": "GET only"}, status=405, headers={"Allow": "GET"})
        response = handler(request)
        response["Cache-Control"] = "no-store"
        return response


def healthz(request: HttpRequest) -> HttpResponseBase:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponseBase:
    from django.db.migrations.recorder import MigrationRecorder

    try:
        applied = set(MigrationRecorder(connection).applied_migrations())
    except DatabaseError as exc:
        metrics.database_error("readyz", exc)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _unready(f"database: {first}")
    missing = _on_disk() - applied
    if missing:
        return _unready(f"{len(missing)} migrations not applied: run 'ratepad server init'")
    return JsonResponse({"status": "ready"})


def _unready(detail: str) -> JsonResponse:
    return JsonResponse({"status": "unavailable", "detail": detail}, status=503)


@functools.cache
def _on_disk() -> frozenset[tuple[str, str]]:
    """Every migration of the installed apps, as recorded once applied (a squashed migration
    is recorded as the ones it replaces)."""
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    names: set[tuple[str, str]] = set()
    for key, migration in graph.nodes.items():
        names |= set(migration.replaces) or {key}
    return frozenset(names)


def scrape(request: HttpRequest) -> HttpResponseBase:
    address = request.META.get("REMOTE_ADDR", "")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if ip is None or not any(ip in net for net in settings.METRICS_ALLOW):
        return HttpResponse("forbidden: RATEPAD_METRICS_ALLOW does not name this address\n",
                            status=403, content_type="text/plain")  # fmt: skip
    token: str = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("unauthorized: send Authorization: Bearer <token>\n",
                                status=401, content_type="text/plain",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
