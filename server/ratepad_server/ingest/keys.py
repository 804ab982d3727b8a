"""Agent keys: ``rpk_<id>_<secret>``, enrolled per branch, stored as a SHA-256 only.

A key is 256 random bits, so a plain SHA-256 is as good as a slow password hash against
guessing, and lets every upload be checked in microseconds. A key checked once against its row
is remembered by the process (its SHA-256 → the row's id and branch: neither ever changes), so
an agent's request costs no lookup; the revocation is checked by the one statement every
request makes anyway (``touch``: the heartbeat's UPDATE, the first statement of an upload's
transaction), so a revocation refuses the very next request (401) on every server instance. A
rotation may leave the old key an overlap to reconfigure the agent (``revoked_at`` in the
future)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from ninja.errors import AuthenticationError

from ..org.models import Node
from .models import AgentKey

PREFIX = "rpk_"
# keys checked by this process: SHA-256 → (row id, key id, branch id); bounded (emptied when
# full: the next request of each agent looks its key up once more)
_checked: dict[str, tuple[int, str, int]] = {}
CHECKED_MAX = 200_000


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def enroll(branch: Node) -> tuple[AgentKey, str]:
    """A new key for ``branch``: the row and the key itself (shown once, never stored)."""
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = AgentKey.objects.create(key_id=key_id, key_hash=_hash(key), branch=branch)
    return row, key


def authenticate(key: str) -> AgentKey | None:
    """The AgentKey for ``key`` (its id, key id and branch id only), or None (unknown, wrong
    secret, or revoked when looked up). A key this process has checked before is not looked
    up again: ``touch`` finds its revocation."""
    if not key.startswith(PREFIX):
        return None
    digest = _hash(key)
    known = _checked.get(digest)
    if known is None:
        key_id = key[len(PREFIX) :].partition("_")[0]
        row = AgentKey.objects.filter(key_id=key_id).only("key_hash", "branch", "revoked_at")
        found = row.first()
        if found is None or not is_live(found, timezone.now()):
            return None
        if not hmac.compare_digest(found.key_hash, digest):
            return None
        if len(_checked) >= CHECKED_MAX:
            _checked.clear()
        known = _checked[digest] = (found.pk, key_id, found.branch_id)
    pk, key_id, branch_id = known
    return AgentKey(pk=pk, key_id=key_id, key_hash=digest, branch_id=branch_id)


class Revoked(AuthenticationError):
    """The key was revoked after this process checked it: the request is answered 401."""


def touch(agent: AgentKey, now: datetime) -> bool:
    """Record that ``agent`` was heard from at ``now``, if its key is still live: one indexed
    UPDATE (in an upload, its transaction's last statement before the commit: a revocation
    committed before it is seen and the batch rolled back, one committed later comes after
    the batch). False: revoked (or deleted) since the key was checked; the process forgets
    it."""
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE ingest_agentkey SET last_upload_at = %s"
            " WHERE id = %s AND (revoked_at IS NULL OR revoked_at > %s)",
            [at, agent.pk, at],
        )
        live: bool = cur.rowcount == 1
    if not live:
        _checked.pop(agent.key_hash, None)
    return live


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
