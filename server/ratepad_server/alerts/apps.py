from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "ratepad_server.alerts"
    label = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from ..ingest.service import batch_stored
        from .engine import on_batch

        def stored(sender: Any, **kwargs: Any) -> None:
            on_batch(**kwargs)

        batch_stored.connect(stored, weak=False, dispatch_uid="ratepad-alerts-rules")
