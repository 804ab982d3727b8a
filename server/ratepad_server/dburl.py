"""``--db URL`` → Django's DATABASES entry: an SQLite file (the default) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_SQLITE = "ratepad-server.sqlite3"


class DatabaseURLError(ValueError):
    """A --db value that names no database ratepad can use."""


def parse_db_url(url: str | None) -> dict[str, Any]:
    """``None`` or a path: SQLite; ``sqlite:///PATH``; ``postgresql://user:pw@host:port/db``."""
    if not url:
        return _sqlite(Path.cwd() / DEFAULT_SQLITE)
    if "://" not in url:
        return _sqlite(Path(url))
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc or not path or path == "/":
            raise DatabaseURLError(f"--db {url!r}: expected sqlite:///PATH")
        return _sqlite(Path(path[1:] if path.startswith("//") else path))
    if parts.scheme in ("postgresql", "postgres"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise DatabaseURLError(f"--db {url!r}: no database name (postgresql://host/NAME)")
        try:
            port = parts.port
        except ValueError:
            raise DatabaseURLError(f"--db {url!r}: bad port") from None
        options = dict(parse_qsl(parts.query))
        host = options.pop("host", None) or unquote(parts.hostname or "")
        # no JIT: the server's queries are short (rollups, indexed lookups); compiling one
        # costs more than running it (seconds, seen on the live wall's latest ratings)
        options["options"] = " ".join(filter(None, [options.get("options"), "-c jit=off"]))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": host,
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise DatabaseURLError(
        f"--db {url!r}: expected a file path, sqlite:///PATH or postgresql://user@host/db"
    )


def keep_sqlite_owner_only(url: str | None) -> None:
    """An SQLite database (and its -wal, -shm) readable by its owner only: it holds session
    keys and password hashes. Created 0600 if missing (SQLite then gives the -wal and -shm
    files the same mode), narrowed if found wider; the agent's store does the same."""
    from ratepad.agent.store import _create_owner_only, _narrow_to_owner

    settings = parse_db_url(url)
    if settings["ENGINE"] != "django.db.backends.sqlite3":
        return
    path = Path(settings["NAME"])
    if path.parent.is_dir():
        _create_owner_only(path)
        _narrow_to_owner(path)


def _sqlite(path: Path) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path.resolve()),
        # one writer at a time: wait for the lock instead of failing; IMMEDIATE so that a
        # read-then-write transaction cannot deadlock on the upgrade
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        },
    }
