"""Who may see what: a user's role at a node covers that node's subtree."""

from __future__ import annotations

from django.utils.translation import gettext as _

from .models import Node, Role


class AccessDenied(Exception):
    """403: the caller's role or subtree does not cover this."""


class NotFound(Exception):
    """404: no such object."""


def require_role(role: Role, *allowed: str) -> None:
    if role.role not in allowed:
        raise AccessDenied(_("role %(role)s may not do this") % {"role": role.role})


def node_in_scope(role: Role, code: str | None) -> Node:
    """The node ``code`` (default: the user's own) if it lies in the user's subtree. An
    unknown code is refused like another subtree's (403 both): the answer must not tell which
    node codes exist."""
    if code is None or code == role.node.code:
        return role.node
    node = Node.objects.filter(code=code).first()
    if node is None or not role.node.contains(node):
        raise AccessDenied(
            _("node %(code)s is outside your part of the organisation") % {"code": code}
        )
    return node


def staff_filter(role: Role) -> str | None:
    """A staff user sees only their own ratings: their staff id, else None (no filter)."""
    if role.role == Role.STAFF:
        # a staff user bound to no staff member sees nothing: DEL, a control character the
        # upload refuses in a staff id (unlike NUL, PostgreSQL accepts it in a query)
        return role.staff.staff_id if role.staff else "\x7f"
    return None
