"""``ratepad server users ...`` and ``ratepad server keys ...``, and the start-up check of
``server run`` for initial passwords. Imported by ``ratepad_server.cli``; Django is set up
before any ``cmd_*`` here runs (the parsers need no Django)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..cli import Usage

ACTIONS = ("users", "keys")
MAX_OVERLAP_HOURS = 24 * 7


def add_parsers(sub: Any, db: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``users`` and ``keys`` actions, on ``build_parser``'s subparsers."""
    users = sub.add_parser("users", help="set a user's password, end a user's API tokens")
    what = users.add_subparsers(dest="what", metavar="ACTION", required=True,
                                parser_class=type(users))  # fmt: skip
    p = what.add_parser("set-password", help="set USER's password, read from the terminal "
                        "(twice) or the first line of stdin; never from the command "
                        "line")  # fmt: skip
    p.add_argument("user", metavar="USER", help="the user's username")
    db(p)
    p = what.add_parser("revoke-tokens", help="end every API token of USER")
    p.add_argument("user", metavar="USER", help="the user's username")
    db(p)
    keys = sub.add_parser("keys", help="list, revoke or rotate agent keys")
    what = keys.add_subparsers(dest="what", metavar="ACTION", required=True,
                               parser_class=type(keys))  # fmt: skip
    p = what.add_parser("list", help="every agent key: branch, created, last upload, revoked")
    p.add_argument("--branch", metavar="CODE", help="only the keys of this node's branches")
    p.add_argument("--json", action="store_true", help="a JSON array")
    db(p)
    p = what.add_parser("revoke", help="refuse KEY_ID's uploads from now on (401)")
    p.add_argument("key_id", metavar="KEY_ID", help="as `keys list` shows it")
    db(p)
    p = what.add_parser("rotate", help="print a new key for KEY_ID's branch (once) and revoke "
                        "KEY_ID, at once or after --overlap")  # fmt: skip
    p.add_argument("key_id", metavar="KEY_ID", help="as `keys list` shows it")
    p.add_argument("--overlap", type=float, default=0, metavar="HOURS",
                   help="the old key keeps working this long (default 0, at most a week), "
                   "time to reconfigure the agent")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print {key, key_id, branch, "
                   "old_key_id, old_revoked_at} as JSON")  # fmt: skip
    db(p)


def run(args: argparse.Namespace) -> int:
    commands: dict[tuple[str, str], Callable[[argparse.Namespace], int]] = {
        ("users", "set-password"): cmd_set_password,
        ("users", "revoke-tokens"): cmd_revoke_tokens,
        ("keys", "list"): cmd_keys_list,
        ("keys", "revoke"): cmd_keys_revoke,
        ("keys", "rotate"): cmd_keys_rotate,
    }
    from ..cli import _check_database

    _check_database()
    return commands[(args.action, args.what)](args)


def actor() -> str:
    """Who ran the command, for the audit log (the operating system's user)."""
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "(cli)"


def _user(name: str) -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=name).first()
    if user is None:
        raise Usage(f"{name!r}: no such user")
    return user


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise Usage("the two passwords differ; nothing changed")
        return first
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise Usage("no password on stdin; nothing changed")
    return line


def cmd_set_password(args: argparse.Namespace) -> int:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError
    from django.utils import translation

    from ..audit.log import record

    user = _user(args.user)
    password = _read_password()
    try:
        with translation.override("en"):  # the CLI speaks English
            validate_password(password, user)
    except ValidationError as exc:
        raise Usage(f"{args.user!r}: {' '.join(exc.messages)} Nothing changed.") from None
    user.set_password(password)
    user.save()  # forgets an initial password (accounts.passwords)
    record(None, "password.reset", user, username=actor(), target=user.get_username())
    print(f"ratepad server: {args.user}: password set")
    return 0


def cmd_revoke_tokens(args: argparse.Namespace) -> int:
    from ..api.auth import revoke
    from ..api.models import ApiToken

    user = _user(args.user)
    count = revoke(None, ApiToken.objects.filter(user=user), f"by {actor()}")
    print(f"ratepad server: {args.user}: {count} API tokens revoked")
    return 0


def refuse_initial_passwords(allowed: bool) -> None:
    """``server run``: refuse (one line, exit 2) while an active user still has the
    organisation file's initial password, unless ``--allow-default-passwords``."""
    from .passwords import users_with_initial_passwords

    names = users_with_initial_passwords()
    if names and not allowed:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise Usage(
            f"{len(names)} users still have the organisation file's initial password "
            f"({shown}): set theirs with 'ratepad server users set-password USER' (or they "
            "change it on the web), or pass --allow-default-passwords for a demo or a test"
        )


def _key_row(key_id: str) -> Any:
    from ..ingest.models import AgentKey

    row = AgentKey.objects.select_related("branch").filter(key_id=key_id).first()
    if row is None:
        raise Usage(f"{key_id!r}: no such agent key (see 'ratepad server keys list')")
    return row


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def cmd_keys_list(args: argparse.Namespace) -> int:
    from django.utils import timezone

    from ..ingest.keys import is_live
    from ..ingest.models import AgentKey
    from ..org.models import Node

    rows = AgentKey.objects.select_related("branch").order_by("branch__code", "created_at")
    if args.branch:
        node = Node.objects.filter(code=args.branch).first()
        if node is None:
            raise Usage(f"--branch {args.branch!r}: no such node")
        rows = rows.filter(branch__path__startswith=node.path)  # a region: its branches
    now = timezone.now()
    out = [
        {"key_id": r.key_id, "branch": r.branch.code, "created_at": _iso(r.created_at),
         "last_upload_at": _iso(r.last_upload_at), "revoked_at": _iso(r.revoked_at),
         "live": is_live(r, now)}
        for r in rows
    ]  # fmt: skip
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{'KEY_ID':<14}{'BRANCH':<14}{'CREATED':<27}{'LAST UPLOAD':<27}REVOKED")
    for k in out:
        print(f"{k['key_id']:<14}{k['branch']:<14}{k['created_at']:<27}"
              f"{k['last_upload_at'] or '-':<27}{k['revoked_at'] or '-'}")  # fmt: skip
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from ..audit.log import record
    from ..ingest.keys import revoke

    row = _key_row(args.key_id)
    revoke(row)
    record(None, "agent_key.revoke", row, username=actor(), node_path=row.branch.path,
           branch=row.branch.code)  # fmt: skip
    print(f"ratepad server: key {row.key_id} ({row.branch.code}) revoked at {_iso(row.revoked_at)}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from django.utils import timezone

    from ..audit.log import record
    from ..ingest.keys import is_live, rotate

    if not 0 <= args.overlap <= MAX_OVERLAP_HOURS:
        raise Usage(f"--overlap: expected 0..{MAX_OVERLAP_HOURS} hours")
    old = _key_row(args.key_id)
    if not is_live(old, timezone.now()):
        raise Usage(f"key {old.key_id} is revoked: enroll a new one with 'ratepad server "
                    f"enroll-agent --branch {old.branch.code}'")  # fmt: skip
    new, key = rotate(old, timedelta(hours=args.overlap))
    record(None, "agent_key.rotate", old, username=actor(), node_path=old.branch.path,
           branch=old.branch.code, new_key_id=new.key_id,
           revoked_at=_iso(old.revoked_at))  # fmt: skip
    if args.json:
        print(json.dumps({"key": key, "key_id": new.key_id, "branch": new.branch.code,
                          "old_key_id": old.key_id,
                          "old_revoked_at": _iso(old.revoked_at)}))  # fmt: skip
    else:
        print(key)
    return 0
