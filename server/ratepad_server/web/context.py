"""Template context of every page: the caller's role and unread notifications."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .access import role_of


def web(request: HttpRequest) -> dict[str, Any]:
    role = role_of(request) if hasattr(request, "user") else None
    if role is None:
        return {"role": None}
    from ..alerts.models import Notification

    unread = Notification.objects.filter(user_id=request.user.pk or 0, read_at__isnull=True).count()
    return {"role": role, "unread": unread}
