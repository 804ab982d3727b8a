"""Who may open which page: every view names its roles (``roles``) and resolves the node from
the URL inside the caller's subtree (``scoped_node``): another subtree and an unknown node are
both 403 (no answer tells which node codes exist). A logged-out caller is sent to the login
page."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext as _

from ..org.access import AccessDenied, node_in_scope
from ..org.models import Node, Role
from ..reports.service import TZ

ALL = (Role.ADMIN, Role.MANAGER, Role.VIEWER, Role.STAFF)
READERS = (Role.ADMIN, Role.MANAGER, Role.VIEWER)
ACTORS = (Role.ADMIN, Role.MANAGER)
ADMINS = (Role.ADMIN,)

V = TypeVar("V", bound=Callable[..., HttpResponseBase])


def role_of(request: HttpRequest) -> Role | None:
    if not request.user.is_authenticated:
        return None
    cached = getattr(request, "_ratepad_role", None)
    if cached is None:
        cached = Role.objects.select_related("node", "staff").filter(user=request.user).first()
        request._ratepad_role = cached  # type: ignore[attr-defined]
    return cast("Role | None", cached)


def roles(*allowed: str) -> Callable[[V], V]:
    """The view admits these roles; ``request.role`` is the caller's."""

    def wrap(view: V) -> V:
        @functools.wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            role = role_of(request)
            if role is None or role.role not in allowed:
                raise PermissionDenied(_("your role may not open this page"))
            request.role = role  # type: ignore[attr-defined]
            timezone.activate(TZ)  # pages show the reports' local time
            return view(request, *args, **kwargs)

        return cast(V, inner)

    return wrap


def user_of(request: HttpRequest) -> User:
    """The logged-in user (the views behind ``roles`` have one)."""
    user = request.user
    assert isinstance(user, User)
    return user


def get_role(request: HttpRequest) -> Role:
    role = getattr(request, "role", None)
    assert isinstance(role, Role)
    return role


def scoped_node(request: HttpRequest, code: str) -> Node:
    try:
        return node_in_scope(get_role(request), code)
    except AccessDenied as exc:
        raise PermissionDenied(str(exc)) from None


def check_path(request: HttpRequest, path: str) -> None:
    """403 unless ``path`` (a node's) lies in the caller's subtree."""
    if not path.startswith(get_role(request).node.path):
        raise PermissionDenied(_("outside your part of the organisation"))
