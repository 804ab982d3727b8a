"""The JSON API (django-ninja): ``/api/v1/...``, its OpenAPI document at ``openapi.json``.

Every operation names the roles it admits (``require_role``) and checks the node against the
caller's subtree (``node_in_scope``); tests walk the URL map as every role.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Router
from ninja.errors import AuthenticationError, HttpError, ValidationError

from ..casework.api import router as casework_router
from ..ingest.api import router as ingest_router
from ..org.access import AccessDenied, NotFound
from ..surveys.api import router as surveys_router
from . import views
from .auth import UserAuth, current_token, issue_token, live_tokens, revoke
from .models import ApiToken
from .schemas import Error, TokenIn, TokenInfo, TokenOut

api = NinjaAPI(
    title="ratepad server",
    version="1",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url=None,  # the interactive docs page loads scripts a bank's intranet does not have
    auth=UserAuth(),
)


def _error(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


@api.exception_handler(AccessDenied)
def _denied(request: HttpRequest, exc: AccessDenied) -> HttpResponse:
    return _error(request, 403, str(exc))


@api.exception_handler(NotFound)
def _not_found(request: HttpRequest, exc: NotFound) -> HttpResponse:
    return _error(request, 404, str(exc))


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, _("missing or invalid bearer token"))


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first: dict[str, Any] = exc.errors[0] if exc.errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return api.create_response(
        request,
        {"detail": f"{where}: {first.get('msg', 'invalid')}", "errors": exc.errors},
        status=422,
    )


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    # 413, not 400: an agent sends a batch the server finds too large again in halves
    return _error(request, 413, _("the request body is larger than the server takes"))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, str(exc))


auth_router = Router(tags=["auth"])


@auth_router.post("/token", auth=None, response={200: TokenOut, 401: Error, 429: Error})
def token(request: HttpRequest, body: TokenIn) -> tuple[int, dict[str, Any]]:
    """A bearer token for the other calls (valid 12 hours, or until revoked). After 5 failed
    attempts for a user name in 15 minutes (or 20 from one address), 429 until that window has
    passed: the same throttle as the web's and the admin pages' logins."""
    from ..accounts.backends import was_throttled
    from .auth import TOKEN_LIFETIME

    issued = issue_token(body.username, body.password, request)
    if issued is None and was_throttled(request):
        return 429, {"detail": _("too many failed logins; try again later")}
    if issued is None:
        return 401, {"detail": _("wrong user name or password")}
    return 200, {"token": issued, "expires_at": datetime.now(UTC) + TOKEN_LIFETIME}


@auth_router.post("/logout", response={204: None})
def logout(request: HttpRequest) -> tuple[int, None]:
    """Revoke the token this call is made with."""
    row = current_token(request)
    if row is not None:
        revoke(request, ApiToken.objects.filter(pk=row.pk), "logout", row.user)
    return 204, None


@auth_router.get("/tokens", response=list[TokenInfo])
def tokens(request: HttpRequest) -> list[dict[str, Any]]:
    """The caller's live tokens, newest first."""
    row = current_token(request)
    assert row is not None  # UserAuth set it
    return [
        {"id": t.pk, "created_at": t.created_at, "expires_at": t.expires_at,
         "current": t.pk == row.pk}
        for t in live_tokens(row.user)
    ]  # fmt: skip


@auth_router.delete("/tokens/{token_id}", response={204: None, 404: Error})
def revoke_token(request: HttpRequest, token_id: int) -> tuple[int, Any]:
    """Revoke one of the caller's tokens (404 for anyone else's)."""
    row = current_token(request)
    assert row is not None
    if not revoke(request, live_tokens(row.user).filter(pk=token_id), "revoked", row.user):
        return 404, {"detail": _("no such token")}
    return 204, None


api.add_router("/auth", auth_router)
api.add_router("/ingest", ingest_router)
api.add_router("/loop", casework_router)
api.add_router("/surveys", surveys_router)
api.add_router("", views.router)
