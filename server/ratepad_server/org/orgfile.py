"""The organisation file (TOML): read and checked without touching the database.

The contract is in server.md; ``loader.load_org`` applies a checked file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROLES = {"admin", "manager", "viewer", "staff"}
NODE_KINDS = ("hq", "region", "branch")
"""What a node may be (``kind``, or none): only "branch" (``Node.BRANCH``) changes anything,
agents enroll there; "hq" and "region" name the levels above for people."""
_FIELDS = {
    "node": ({"code", "name"}, {"parent", "kind"}),
    "window": ({"code", "branch", "name"}, {"keypad"}),
    "staff": ({"id", "name", "branch"}, set()),
    "user": ({"username", "role", "node"}, {"password", "staff"}),
}


class OrgFileError(ValueError):
    """The organisation file cannot be applied (one line for the user)."""


def read_org_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OrgFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise OrgFileError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise OrgFileError(f"{path} is not valid TOML: {exc}") from None
    return check_org(data, str(path))


def check_org(data: Mapping[str, Any], where: str) -> dict[str, list[dict[str, Any]]]:
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise OrgFileError(f"{where}: unknown table {unknown[0]!r} (known: node, window, ...)")
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, (required, optional) in _FIELDS.items():
        rows = data.get(kind, [])
        if not isinstance(rows, list):
            raise OrgFileError(f"{where}: {kind} must be an array of tables ([[{kind}]])")
        for i, row in enumerate(rows, 1):
            at = f"{where}: [[{kind}]] #{i}"
            if not isinstance(row, dict):
                raise OrgFileError(f"{at} must be a table")
            missing = sorted(required - set(row))
            if missing:
                raise OrgFileError(f"{at}: missing {missing[0]!r}")
            extra = sorted(set(row) - required - optional)
            if extra:
                raise OrgFileError(f"{at}: unknown key {extra[0]!r}")
            for key, value in row.items():
                if not isinstance(value, str) or not value.strip():
                    raise OrgFileError(f"{at}: {key} must be a non-empty string")
            if kind == "node" and "kind" in row and row["kind"] not in NODE_KINDS:
                raise OrgFileError(
                    f"{at}: kind {row['kind']!r} is not one of {', '.join(NODE_KINDS)}"
                )
            if kind == "user" and row["role"] not in ROLES:
                raise OrgFileError(f"{at}: role must be one of {', '.join(sorted(ROLES))}")
        keys = [
            r["username" if kind == "user" else ("id" if kind == "staff" else "code")] for r in rows
        ]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise OrgFileError(f"{where}: [[{kind}]] {dupes[0]!r} appears twice")
        out[kind] = rows
    return out
