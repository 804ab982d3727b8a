"""The admin site: Django's, with its login behind the one throttle (429 and a message)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from .backends import was_throttled


def throttled_error() -> ValidationError:
    return ValidationError(
        _("Too many failed attempts: try again in 15 minutes."), code="throttled"
    )


class AdminLoginForm(AdminAuthenticationForm):
    def get_invalid_login_error(self) -> ValidationError:
        if was_throttled(self.request):
            return throttled_error()
        return super().get_invalid_login_error()


class AdminSite(admin.AdminSite):
    login_form = AdminLoginForm

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        response: HttpResponse = super().login(request, extra_context)
        if was_throttled(request):
            response.status_code = 429
        return response
