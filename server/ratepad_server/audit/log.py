"""``record(...)``: one audit entry; login, logout, failed and throttled logins are recorded
from Django's auth signals (connected in ``AuditConfig.ready``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.utils import timezone

from ..text import printable
from .models import AuditEntry


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    ip = request.META.get("REMOTE_ADDR") or None
    return str(ip) if ip else None


def record(
    request: HttpRequest | None,
    action: str,
    obj: Any = None,
    *,
    user: AbstractBaseUser | AnonymousUser | None = None,
    username: str | None = None,
    node_path: str = "",
    **detail: Any,
) -> AuditEntry:
    """Add an entry: ``action`` (e.g. ``alert.acknowledge``) on ``obj`` by the request's user."""
    if user is None and request is not None:
        user = request.user
    real = user if isinstance(user, User) else None
    name = printable(username or (real.get_username() if real is not None else ""))
    return AuditEntry.objects.create(
        user=real,
        username=name,
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "pk", "") or "") if obj is not None else "",
        node_path=node_path,
        detail={
            k: v if isinstance(v, (int, float, bool, type(None))) else printable(str(v))
            for k, v in detail.items()
        },
        ip=client_ip(request),
    )


THROTTLE_FAILURES = 5  # per user name
THROTTLE_IP_FAILURES = 20  # per address (many users behind one proxy share it)
THROTTLE_WINDOW = timedelta(minutes=15)


def throttled(request: HttpRequest, username: str) -> bool:
    """True after 5 failed logins for ``username`` in 15 minutes, or 20 from the request's
    address: every login path refuses then (``accounts.backends``; the refusal is recorded as
    ``login.throttled`` and does not count as a failure)."""
    failures = AuditEntry.objects.filter(
        action="login.failed", at__gte=timezone.now() - THROTTLE_WINDOW
    )
    ip = client_ip(request)
    by_user = failures.filter(username=printable(username)).count() if username else 0
    by_ip = failures.filter(ip=ip).count() if ip else 0
    return by_user >= THROTTLE_FAILURES or by_ip >= THROTTLE_IP_FAILURES
