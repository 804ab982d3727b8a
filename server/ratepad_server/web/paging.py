"""Paging, sorting and filtering a list on the server, for every list of the web (ratings,
audit log, notifications …): the requested page of ``?page=`` with ``?per=`` rows, a choice
from a fixed set (``?sort=``, a state) refused with a 400 naming the allowed values. The pages
show the count and the one pager ``web/_pages.html`` (never a silent cut)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.exceptions import BadRequest
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from .period import _date

PER_PAGE = (50, 100, 200)

T = TypeVar("T")


def page_of(
    request: HttpRequest, rows: QuerySet[Any, T], sizes: tuple[int, ...] = PER_PAGE
) -> tuple[Page[T], int]:
    """The requested page (``?page=``; out of range: the last) and its size (``?per=``, one of
    ``sizes``, the first by default)."""
    try:
        per = int(request.GET.get("per") or sizes[0])
    except ValueError:
        per = 0
    if per not in sizes:
        raise BadRequest(_("per: one of %(sizes)s") % {"sizes": ", ".join(map(str, sizes))})
    return Paginator(rows, per).get_page(request.GET.get("page")), per


def choice(request: HttpRequest, name: str, allowed: Iterable[str], default: str = "") -> str:
    """``?name=``: one of ``allowed`` (or empty for ``default``), else a 400 saying which."""
    options = list(allowed)
    value = request.GET.get(name, "") or default
    if value != default and value not in options:
        raise BadRequest(_("%(name)s: one of %(values)s")
                         % {"name": name, "values": ", ".join(options)})  # fmt: skip
    return value


def between(rows: QuerySet[Any, T], field: str, since: str, until: str) -> QuerySet[Any, T]:
    """``rows`` whose ``field`` (a time) falls on the days from ``since`` to ``until``
    (``YYYY-MM-DD``, either empty for no bound; a bad one is a 400 naming it)."""
    if since:
        rows = rows.filter(**{f"{field}__date__gte": _date(since, "since")})
    if until:
        rows = rows.filter(**{f"{field}__date__lte": _date(until, "until")})
    return rows
