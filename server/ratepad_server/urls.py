"""The URL map: the JSON API under /api/v1/, the admin pages under /admin/.

Errors under /api/ answer JSON (``{"detail": ...}``), never an HTML page or internals."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults

from .api.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("ratepad_server.web.urls")),
]


def _json_or(page: Any, status: int, detail: str) -> Any:
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": detail}, status=status)
        response: HttpResponse = page(request, *args, **kwargs)
        return response

    return view


handler400 = _json_or(defaults.bad_request, 400, "bad request")
handler403 = _json_or(defaults.permission_denied, 403, "forbidden")
handler404 = _json_or(defaults.page_not_found, 404, "not found")
handler500 = _json_or(defaults.server_error, 500, "internal error (see the server's log)")
