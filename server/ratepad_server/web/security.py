"""Middleware of the site's HTTP hygiene (Django's ``MiddlewareMixin``: usable in the async
stack as well, so the live streams' async views stay async).

* ``SecurityHeaders``: a Content-Security-Policy on every answer (scripts only from the site's
  own static files: no inline script, no ``eval``), and its cookies (session, CSRF, language)
  marked ``Secure`` when the request came over HTTPS (directly, or through the trusted proxy's
  ``X-Forwarded-Proto``); HSTS, ``X-Content-Type-Options``, ``Referrer-Policy`` and
  ``X-Frame-Options`` come from Django's own middleware and the settings.
* ``ControlCharacters``: a path or query string holding a control character (``%00`` above
  all, which PostgreSQL refuses in any query), or a posted form field holding one other than
  tab and line breaks, is answered 400 before any view runs (multipart bodies are left to
  their views, which bound their size before parsing them).
* ``BadRequestPage``: a page's ``BadRequest`` (a date out of range, a bad form field) is
  answered with the reason, in the site's layout, 400 (the JSON API answers its own).
"""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _

from ..text import has_control
from . import errors

# style-src allows inline styles: ECharts builds its tooltips as HTML with style attributes
# (styles cannot run code; scripts stay strictly the site's files)
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])  # fmt: skip


class SecurityHeaders(MiddlewareMixin):
    """Placed above the session and CSRF middleware, so that it sees the cookies they set."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.is_secure():  # over plain HTTP a Secure cookie would never come back
            for morsel in response.cookies.values():  # session, CSRF, language, messages
                morsel["secure"] = True
        return response


class BadRequestPage(MiddlewareMixin):
    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, BadRequest) or request.path.startswith("/api/"):
            return None
        return errors.page(request, 400, str(exc))


class ControlCharacters(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        form = (
            request.POST.lists()
            if request.method == "POST"
            and request.content_type == "application/x-www-form-urlencoded"
            else ()
        )
        if not (
            has_control(request.path)
            or any(has_control(k) or any(map(has_control, v)) for k, v in request.GET.lists())
            or any(has_control(k) or any(has_control(x, lines=True) for x in v) for k, v in form)
        ):
            return None
        reason = _("The address holds a control character.")
        return errors.page(request, 400, reason)
