"""The live wall's time format (its JavaScript, ``wall.js``, formats pushed times alike): the
local time of day for today, with the date for an earlier day."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from ...reports.service import TZ

register = template.Library()


@register.filter
def wall_time(when: datetime | None) -> str:
    if when is None:
        return "–"
    local = when.astimezone(TZ)
    if local.date() == timezone.now().astimezone(TZ).date():
        return f"{local:%H:%M:%S}"
    return f"{local:%m-%d %H:%M}"
