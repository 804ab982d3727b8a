"""Bearer authentication: user tokens (``rpt_...``) and agent keys (``rpk_...``).

A user's token ends when it expires (12 hours), when it is revoked (``POST auth/logout``,
``DELETE auth/tokens/{id}``, the admin pages) or when the user logs out of the web."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from ..audit.log import record
from ..ingest import keys
from ..ingest.models import AgentKey
from ..org.models import Role
from .models import ApiToken

TOKEN_PREFIX = "rpt_"
TOKEN_LIFETIME = timedelta(hours=12)
_CURRENT = "_ratepad_api_token"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(username: str, password: str, request: HttpRequest | None = None) -> str | None:
    """A new token, or None for wrong credentials (a failed login, counted by the throttle) or
    a throttled attempt (``accounts.backends.was_throttled``). Expired tokens are deleted on
    the way."""
    user = authenticate(request, username=username, password=password)
    if user is None or not Role.objects.filter(user=user).exists():
        return None
    now = timezone.now()
    ApiToken.objects.filter(expires_at__lte=now).delete()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(token_hash=_hash(token), user=user, expires_at=now + TOKEN_LIFETIME)
    return token


def live_tokens(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """``user``'s unexpired tokens, newest first."""
    return ApiToken.objects.filter(user_id=user.pk, expires_at__gt=timezone.now()).order_by(
        "-created_at", "-id"
    )


def current_token(request: HttpRequest) -> ApiToken | None:
    """The token this API request was authenticated with (set by ``UserAuth``)."""
    row = getattr(request, _CURRENT, None)
    return row if isinstance(row, ApiToken) else None


def revoke(
    request: HttpRequest | None,
    rows: QuerySet[ApiToken],
    why: str,
    actor: AbstractBaseUser | None = None,
) -> int:
    """Delete ``rows``, each recorded in the audit log (``token.revoke``, by ``actor``, or the
    request's user); how many."""
    doomed = list(rows.select_related("user"))
    for row in doomed:
        record(request, "token.revoke", row, user=actor, owner=row.user.get_username(), why=why)
    ApiToken.objects.filter(pk__in=[r.pk for r in doomed]).delete()
    return len(doomed)


def revoke_all(request: HttpRequest | None, user: AbstractBaseUser) -> int:
    """End every token of ``user`` (the web's logout does)."""
    return revoke(request, ApiToken.objects.filter(user_id=user.pk), "logout", user)


class UserAuth(HttpBearer):
    """A user's token → their Role (``request.auth``)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        if not token.startswith(TOKEN_PREFIX):
            return None
        row = (
            ApiToken.objects.select_related("user")
            .filter(token_hash=_hash(token), expires_at__gt=timezone.now())
            .first()
        )
        if row is None or not row.user.is_active:
            return None
        setattr(request, _CURRENT, row)
        return Role.objects.select_related("node", "staff").filter(user=row.user).first()


class AgentAuth(HttpBearer):
    """An agent's key → its AgentKey (``request.auth``)."""

    def authenticate(self, request: HttpRequest, token: str) -> AgentKey | None:
        return keys.authenticate(token)
