from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AccountsConfig(AppConfig):
    name = "ratepad_server.accounts"
    label = "accounts"
    verbose_name = "Accounts"
    default = True

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from ..api.auth import revoke_all

        def logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
            if user is not None:  # the web's logout ends the user's API tokens too
                revoke_all(request, user)

        user_logged_out.connect(logged_out, weak=False, dispatch_uid="ratepad-tokens-logout")


class AdminConfig(DjangoAdminConfig):
    """The admin pages, with a login that goes through the same throttle as every other."""

    default = False
    default_site = "ratepad_server.accounts.adminsite.AdminSite"
