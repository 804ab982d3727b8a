"""The URL map: the JSON API under /api/v1/, the admin pages under /admin/.

Errors under /api/ answer JSON (``{"detail": ...}``), never an HTML page or internals."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from .api.api import api
from .web import errors

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("ratepad_server.web.urls")),
]


# every error in the site's layout and the reader's language; under /api/, JSON
handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
