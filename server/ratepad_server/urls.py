"""The URL map: the JSON API under /api/v1/, the admin pages under /admin/."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from .api.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
