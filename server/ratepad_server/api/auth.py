"""Bearer authentication: user tokens (``rpt_...``) and agent keys (``rpk_...``)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from ..ingest import keys
from ..ingest.models import AgentKey
from ..org.models import Role
from .models import ApiToken

TOKEN_PREFIX = "rpt_"
TOKEN_LIFETIME = timedelta(hours=12)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(username: str, password: str, request: HttpRequest | None = None) -> str | None:
    """A new token, or None for wrong credentials (a failed login, counted by the throttle).
    Expired tokens are deleted on the way."""
    user = authenticate(request, username=username, password=password)
    if user is None or not Role.objects.filter(user=user).exists():
        return None
    now = timezone.now()
    ApiToken.objects.filter(expires_at__lte=now).delete()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(token_hash=_hash(token), user=user, expires_at=now + TOKEN_LIFETIME)
    return token


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
        return Role.objects.select_related("node", "staff").filter(user=row.user).first()


class AgentAuth(HttpBearer):
    """An agent's key → its AgentKey (``request.auth``)."""

    def authenticate(self, request: HttpRequest, token: str) -> AgentKey | None:
        return keys.authenticate(token)
