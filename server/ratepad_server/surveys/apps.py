from __future__ import annotations

from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "ratepad_server.surveys"
    label = "surveys"
    verbose_name = "Surveys"
