"""The one login throttle: every password check (the web's login, the admin's, the API's token
call) goes through ``ThrottledModelBackend`` (``AUTHENTICATION_BACKENDS``), which refuses a
throttled user name or address before the password is even checked."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from ..audit.log import throttled
from ..text import has_control

_MARK = "_ratepad_login_throttled"


def was_throttled(request: HttpRequest | None) -> bool:
    """Whether this request's login attempt was refused by the throttle (the views answer 429;
    the audit log records ``login.throttled`` instead of ``login.failed``)."""
    return bool(getattr(request, _MARK, False))


class ThrottledModelBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        name = str(username if username is not None else kwargs.get("username", ""))[:150]
        if has_control(name):
            return None  # no user has such a name (and PostgreSQL refuses NUL in a query)
        if request is not None and throttled(request, name):
            setattr(request, _MARK, True)
            raise PermissionDenied  # Django stops here and sends user_login_failed
        return super().authenticate(request, username, password, **kwargs)
