"""``ratepad server load-org FILE.toml``: the organisation file, applied idempotently.

Loading the same file twice changes nothing; a changed file updates names, moves nodes,
rebinds keypads (closing the old binding, so history is kept) and adds what is new. Nothing is
deleted: a window or a user missing from the file stays as it is. A user's password is set
when the user is created only, as an initial password (``accounts.passwords``): not held to the
password policy, but ``server run`` refuses to start until it is changed (the web, the admin
pages, ``ratepad server users set-password``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ..accounts.passwords import mark_initial
from .models import Binding, Node, Role, Staff, Window
from .orgfile import ROLES, OrgFileError, check_org, read_org_file

__all__ = ["LoadResult", "OrgFileError", "bind", "check_org", "load_org", "read_org_file"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class LoadResult:
    nodes: int = 0
    windows: int = 0
    staff: int = 0
    users: int = 0
    rebound: int = 0
    moved: bool = False  # a node has a new parent: the node rollups need rebuilding


def load_org(org: dict[str, list[dict[str, Any]]], now: datetime | None = None) -> LoadResult:
    """Apply a checked organisation (``check_org``) in one transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        result = LoadResult()
        nodes = _load_nodes(org["node"], result)
        _load_windows(org["window"], nodes, result, now)
        staff = _load_staff(org["staff"], nodes, result)
        _load_users(org["user"], nodes, staff, result)
        return result


def _load_nodes(rows: list[dict[str, Any]], result: LoadResult) -> dict[str, Node]:
    by_code = {r["code"]: r for r in rows}
    existing = {n.code: n for n in Node.objects.all()}
    paths: dict[str, str] = {}

    def path_of(code: str, seen: tuple[str, ...] = ()) -> str:
        if code in paths:
            return paths[code]
        if code in seen:
            raise OrgFileError(f"node {code!r}: its parents form a cycle")
        row = by_code.get(code)
        if row is None:
            node = existing.get(code)
            if node is None:
                raise OrgFileError(f"node {seen[-1]!r}: unknown parent {code!r}")
            paths[code] = node.path
            return node.path
        parent = row.get("parent")
        prefix = path_of(parent, (*seen, code)) if parent else "/"
        paths[code] = f"{prefix}{code}/"
        return paths[code]

    for code in by_code:
        if "/" in code:
            raise OrgFileError(f"node {code!r}: a code cannot contain '/'")
        path_of(code)
    # parents first (shorter paths), so that every parent exists when its child is saved
    for code in sorted(by_code, key=lambda c: paths[c].count("/")):
        row = by_code[code]
        parent = existing[row["parent"]] if row.get("parent") else None
        node = existing.get(code) or Node(code=code)
        new = {
            "name": row["name"],
            "kind": row.get("kind", ""),
            "parent": parent,
            "path": paths[code],
        }
        if node.pk is None or any(getattr(node, k) != v for k, v in new.items()):
            old_path = node.path if node.pk else None
            for k, v in new.items():
                setattr(node, k, v)
            node.save()
            result.nodes += 1
            if old_path and old_path != node.path:  # moved: its descendants move with it
                result.moved = True
                for child in Node.objects.filter(path__startswith=old_path).exclude(pk=node.pk):
                    child.path = node.path + child.path[len(old_path) :]
                    child.save(update_fields=["path"])
                existing.update({n.code: n for n in Node.objects.all()})
        existing[code] = node
    return existing


def _branch(nodes: dict[str, Node], code: str, what: str) -> Node:
    node = nodes.get(code)
    if node is None:
        raise OrgFileError(f"{what}: unknown node {code!r}")
    return node


def _load_windows(
    rows: list[dict[str, Any]], nodes: dict[str, Node], result: LoadResult, now: datetime
) -> None:
    existing = {w.code: w for w in Window.objects.all()}
    serials = [r["keypad"] for r in rows if "keypad" in r]
    dupes = sorted(s for s, n in Counter(serials).items() if n > 1)  # linear: 70,000 windows
    if dupes:
        raise OrgFileError(f"keypad {dupes[0]!r} is bound to two windows")
    for row in rows:
        branch = _branch(nodes, row["branch"], f"window {row['code']!r}")
        window = existing.get(row["code"]) or Window(code=row["code"])
        if window.pk is None or (window.name, window.branch_id) != (row["name"], branch.pk):
            window.name, window.branch = row["name"], branch
            window.save()
            result.windows += 1
        existing[window.code] = window
        if "keypad" in row:
            result.rebound += bind(row["keypad"], window, now)


def bind(serial: str, window: Window, now: datetime) -> int:
    """Bind keypad ``serial`` to ``window`` from ``now`` on; 1 if that changed anything."""
    current = Binding.objects.filter(window=window, until=None).first()
    if current is not None and current.serial == serial:
        return 0
    if current is not None:
        current.until = now
        current.save(update_fields=["until"])
    elsewhere = Binding.objects.filter(serial=serial, until=None).first()
    if elsewhere is not None:
        elsewhere.until = now
        elsewhere.save(update_fields=["until"])
    # a keypad's first binding reaches back: ratings it made before the file was loaded
    first = not Binding.objects.filter(serial=serial).exists()
    Binding.objects.create(serial=serial, window=window, since=EPOCH if first else now)
    return 1


def _load_staff(
    rows: list[dict[str, Any]], nodes: dict[str, Node], result: LoadResult
) -> dict[str, Staff]:
    existing = {s.staff_id: s for s in Staff.objects.all()}
    for row in rows:
        branch = _branch(nodes, row["branch"], f"staff {row['id']!r}")
        staff = existing.get(row["id"]) or Staff(staff_id=row["id"])
        if staff.pk is None or (staff.name, staff.branch_id) != (row["name"], branch.pk):
            staff.name, staff.branch = row["name"], branch
            staff.save()
            result.staff += 1
        existing[staff.staff_id] = staff
    return existing


def _load_users(
    rows: list[dict[str, Any]],
    nodes: dict[str, Node],
    staff: dict[str, Staff],
    result: LoadResult,
) -> None:
    user_model = get_user_model()
    for row in rows:
        what = f"user {row['username']!r}"
        if row["role"] not in ROLES:
            raise OrgFileError(f"{what}: role must be one of {', '.join(sorted(ROLES))}")
        node = _branch(nodes, row["node"], what)
        member = None
        if row["role"] == Role.STAFF:
            if "staff" not in row or row["staff"] not in staff:
                raise OrgFileError(f"{what}: a staff user needs staff = ID of a [[staff]]")
            member = staff[row["staff"]]
        user = user_model.objects.filter(username=row["username"]).first()
        if user is None:
            if "password" not in row:
                raise OrgFileError(f"{what}: a new user needs a password")
            user = user_model.objects.create_user(row["username"], password=row["password"])
            mark_initial(user)  # known to the file's readers: to be changed before production
            result.users += 1
        role = Role.objects.filter(user=user).first() or Role(user=user)
        if role.pk is None or (role.role, role.node_id, role.staff_id) != (
            row["role"],
            node.pk,
            member.pk if member else None,
        ):
            created = role.pk is None
            role.role, role.node, role.staff = row["role"], node, member
            role.save()
            result.users += 0 if created else 1
        is_staff = row["role"] == Role.ADMIN and node.parent_id is None
        if user.is_staff != is_staff or user.is_superuser != is_staff:
            user.is_staff = user.is_superuser = is_staff  # the admin pages: the root's admins
            user.save(update_fields=["is_staff", "is_superuser"])
