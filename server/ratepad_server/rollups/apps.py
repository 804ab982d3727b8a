from __future__ import annotations

from django.apps import AppConfig


class RollupsConfig(AppConfig):
    name = "ratepad_server.rollups"
    label = "rollups"
    verbose_name = "Rollups"
