from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "ratepad_server.audit"
    label = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        from django.contrib.auth.signals import (
            user_logged_in,
            user_logged_out,
            user_login_failed,
        )

        from .log import record

        def logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
            record(request, "login", user, user=user)

        def logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
            if user is not None:
                record(request, "logout", user, user=user)

        def failed(sender: Any, credentials: Any, request: Any = None, **kwargs: Any) -> None:
            from ..accounts.backends import was_throttled

            action = "login.throttled" if was_throttled(request) else "login.failed"
            record(request, action, username=str(credentials.get("username", ""))[:150])

        user_logged_in.connect(logged_in, weak=False, dispatch_uid="ratepad-audit-login")
        user_logged_out.connect(logged_out, weak=False, dispatch_uid="ratepad-audit-logout")
        user_login_failed.connect(failed, weak=False, dispatch_uid="ratepad-audit-failed")
