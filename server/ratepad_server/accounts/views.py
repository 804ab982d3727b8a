"""The account page of the managers' web: change one's password (with the current one), see
and revoke one's API tokens. Every role has it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ..api.auth import live_tokens, revoke
from ..audit.log import record
from ..web.access import ALL, roles, user_of
from .adminsite import throttled_error
from .backends import was_throttled
from .models import InitialPassword


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's form, its check of the current password a login like any other: failures
    count for the throttle, and a throttled user is refused (so a left-open session cannot
    be used to guess the password)."""

    def __init__(self, request: HttpRequest, user: User, *args: Any, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        old: str = self.cleaned_data["old_password"]
        if authenticate(self.request, username=self.user.get_username(), password=old) is None:
            if was_throttled(self.request):
                raise throttled_error()
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old


@require_http_methods(["GET", "POST"])
@roles(*ALL)
def account(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    form = ThrottledPasswordChangeForm(
        request, user, request.POST if request.method == "POST" else None
    )
    changed = request.GET.get("changed") == "1"
    if request.method == "POST" and form.is_valid():
        form.save()  # the policy applied (AUTH_PASSWORD_VALIDATORS); forgets an initial one
        update_session_auth_hash(request, user)  # this session stays logged in
        record(request, "password.change", user)
        return HttpResponseRedirect(reverse("web:account") + "?changed=1")
    context = {
        "form": form,
        "changed": changed,
        "initial": InitialPassword.objects.filter(user=user).exists(),
        "tokens": live_tokens(user),
    }
    status = 429 if was_throttled(request) else 400 if form.errors else 200
    return render(request, "web/account.html", context, status=status)


@require_POST
@roles(*ALL)
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    if not revoke(request, live_tokens(user).filter(pk=pk), "revoked", user):
        raise Http404(_("no such token"))
    return HttpResponseRedirect(reverse("web:account"))
