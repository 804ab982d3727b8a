from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "ratepad_server.reports"
    label = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from ..ingest.service import batch_stored
        from .rollup import add_batch

        def stored(sender: Any, ratings: Any, **kwargs: Any) -> None:
            add_batch(ratings)

        batch_stored.connect(stored, weak=False, dispatch_uid="ratepad-reports-flags")
