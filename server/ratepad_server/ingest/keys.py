"""Agent keys: ``rpk_<id>_<secret>``, enrolled per branch, stored as a SHA-256 only.

A key is 256 random bits, so a plain SHA-256 is as good as a slow password hash against
guessing, and lets every upload be checked in microseconds. Every upload looks the key up, so a
revocation refuses the very next upload (401); a rotation may leave the old key an overlap to
reconfigure the agent (``revoked_at`` in the future)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..org.models import Node
from .models import AgentKey

PREFIX = "rpk_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def enroll(branch: Node) -> tuple[AgentKey, str]:
    """A new key for ``branch``: the row and the key itself (shown once, never stored)."""
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = AgentKey.objects.create(key_id=key_id, key_hash=_hash(key), branch=branch)
    return row, key


def authenticate(key: str) -> AgentKey | None:
    """The live AgentKey for ``key``, or None (unknown, wrong secret, or revoked)."""
    if not key.startswith(PREFIX):
        return None
    key_id = key[len(PREFIX) :].partition("_")[0]
    row = AgentKey.objects.select_related("branch").filter(key_id=key_id).first()
    if row is None or not is_live(row, timezone.now()):
        return None
    if not hmac.compare_digest(row.key_hash, _hash(key)):
        return None
    return row


def is_live(row: AgentKey, now: datetime) -> bool:
    return row.revoked_at is None or row.revoked_at > now


def revoke(row: AgentKey, at: datetime | None = None) -> None:
    """Revoke ``row`` now (or at ``at``; an earlier revocation stands)."""
    at = at or timezone.now()
    if row.revoked_at is None or row.revoked_at > at:
        row.revoked_at = at
        row.save(update_fields=["revoked_at"])


def rotate(row: AgentKey, overlap: timedelta = timedelta(0)) -> tuple[AgentKey, str]:
    """A new key for ``row``'s branch; ``row`` is revoked after ``overlap`` (0: at once)."""
    with transaction.atomic():
        revoke(row, timezone.now() + overlap)
        return enroll(row.branch)
