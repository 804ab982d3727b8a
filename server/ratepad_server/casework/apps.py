from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class CaseworkConfig(AppConfig):
    name = "ratepad_server.casework"
    label = "casework"
    verbose_name = "Casework"

    def ready(self) -> None:
        from ..ingest.service import batch_stored
        from .service import open_cases

        def stored(sender: Any, **kwargs: Any) -> None:
            open_cases(**kwargs)

        # connected after the alerts' receiver (INSTALLED_APPS order): a low-rating alert raised
        # by the same batch exists when the case looks for it
        batch_stored.connect(stored, weak=False, dispatch_uid="ratepad-casework-cases")
