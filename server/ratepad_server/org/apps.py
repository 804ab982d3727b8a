from __future__ import annotations

from django.apps import AppConfig


class OrgConfig(AppConfig):
    name = "ratepad_server.org"
    label = "org"
    verbose_name = "Organisation"
