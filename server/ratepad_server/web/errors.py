"""Error pages (400, 403, 404, 429, 500 and a refused form token) in the site's layout and the
reader's language: what went wrong, why where it is known, and a way back. Under /api/ the
answer is JSON (``{"detail": ...}``) instead, never a page or internals."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..text import has_control

log = logging.getLogger(__name__)

TITLES = {
    400: gettext_lazy("Bad request"),
    403: gettext_lazy("Not allowed"),
    404: gettext_lazy("Page not found"),
    429: gettext_lazy("Too many requests"),
    500: gettext_lazy("Server error"),
}
EXPLANATIONS = {
    400: gettext_lazy("The request could not be understood."),
    403: gettext_lazy("Your role does not include this page or this part of the organisation."),
    404: gettext_lazy("There is no page at this address."),
    429: gettext_lazy("Too many requests in a short time: wait a minute and try again."),
    500: gettext_lazy("Something went wrong on the server; it is in the server's log. "
                      "Try again, and tell your administrator if it happens again."),
}  # fmt: skip
API_DETAILS = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    429: "too many requests",
    500: "internal error (see the server's log)",
}


def _back(request: HttpRequest) -> str:
    """The page the reader came from, if it is one of this site's (else no back link)."""
    referer = request.headers.get("Referer", "")
    allowed = {request.get_host()} if referer else set()
    same_site = url_has_allowed_host_and_scheme(referer, allowed, request.is_secure())
    return referer if referer and same_site and referer != request.build_absolute_uri() else ""


def page(request: HttpRequest, status: int, reason: object = "") -> HttpResponse:
    """The error page for ``status``; ``reason`` (shown as text) says why where it is known."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": str(reason) or API_DETAILS[status]}, status=status)
    context = {
        "status": status,
        "title": TITLES[status],
        "reason": str(reason) or EXPLANATIONS[status],
        "back": _back(request),
    }
    try:
        return render(request, "web/error.html", context, status=status)
    except Exception:  # the layout reads the database (role, bell): a 500 may be that failing
        log.exception("the error page could not be drawn in the layout")
        title, reason = escape(context["title"]), escape(context["reason"])
        body = (
            f"<!doctype html><title>{title}</title><h1>{title} ({status})</h1>"
            f"<p id=reason>{reason}</p><p><a href='{reverse('web:home')}'>ratepad</a>"
        )
        return HttpResponse(body, status=status)


def _told(exception: object) -> str:
    """The message a view raised for the reader (not the resolver's internals), if any."""
    args = getattr(exception, "args", ())
    if type(exception) in (Http404, PermissionDenied, BadRequest) and args:
        text = args[0]
        if isinstance(text, str) and not has_control(text):
            return text
    return ""


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return page(request, 400, _told(exception))


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return page(request, 403, _told(exception))


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return page(request, 404, _told(exception))


def server_error(request: HttpRequest) -> HttpResponse:
    return page(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "", **_kwargs: Any) -> HttpResponse:
    """Django's CSRF check refused a form (``CSRF_FAILURE_VIEW``)."""
    return page(
        request,
        403,
        _("The form had expired or came from another site: reload the page and send it again."),
    )
