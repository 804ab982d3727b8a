from __future__ import annotations

from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ratepad_server.ingest"
    label = "ingest"
    verbose_name = "Ingest"
