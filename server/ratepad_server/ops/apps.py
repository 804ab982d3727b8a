from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ratepad_server.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.core.signals import got_request_exception

        from . import metrics

        got_request_exception.connect(metrics.request_failed, dispatch_uid="ratepad-ops")
        metrics.start_process()
