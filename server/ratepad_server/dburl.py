"""``--db URL`` → Django's DATABASES entry: an SQLite file (the default) or PostgreSQL.

PostgreSQL with automatic failover (pg_auto_failover, see docs/failover.md) is named by every
node of the group, libpq's multi-host form, which psycopg passes through as host and port lists:

    postgresql://ratepad@db1:5432,db2:5432/ratepad?target_session_attrs=read-write

Each new connection tries the hosts in order and keeps the first that takes writes, so after a
failover the next connection finds the new primary. Such a URL gets, unless it says otherwise,
``target_session_attrs=read-write`` (the server writes), ``connect_timeout=5`` (a host that
vanished without a reset costs each new connection 5 s, not the kernel's TCP timeout, before
the next host is tried) and TCP keepalives (a connection to a primary that died with its
machine is found dead in about 25 s instead of holding its request's thread for many minutes).
The replica URL of reports (``--db-replica``, read only) gets ``prefer-standby`` instead: a
standby of the group if one answers, else the primary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_SQLITE = "ratepad-server.sqlite3"
# a URL naming several hosts (a failover group) gets these unless it sets them itself
HA_DEFAULTS = {
    "connect_timeout": "5",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}


class DatabaseURLError(ValueError):
    """A --db value that names no database ratepad can use."""


def parse_db_url(url: str | None, *, writes: bool = True) -> dict[str, Any]:
    """``None`` or a path: SQLite; ``sqlite:///PATH``; ``postgresql://user:pw@host:port/db``
    or ``postgresql://user:pw@host1:port1,host2:port2/db?...`` (a failover group; ``writes``
    False: a group to read from)."""
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
        userinfo, _, hostlist = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        hosts = [_host_port(url, item) for item in hostlist.split(",")]
        options = dict(parse_qsl(parts.query))
        host = options.pop("host", None) or ",".join(h for h, _ in hosts)
        ports = [p for _, p in hosts]  # an empty one: the default port (libpq's rule)
        port = options.pop("port", None) or (",".join(ports) if any(ports) else "")
        if len(hosts) > 1:
            for key, value in HA_DEFAULTS.items():
                options.setdefault(key, value)
            options.setdefault("target_session_attrs", "read-write" if writes else "prefer-standby")
        # no JIT: the server's queries are short (rollups, indexed lookups); compiling one
        # costs more than running it (seconds, seen on the live wall's latest ratings)
        options["options"] = " ".join(filter(None, [options.get("options"), "-c jit=off"]))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(user),
            "PASSWORD": unquote(password),
            "HOST": host,
            "PORT": port,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise DatabaseURLError(
        f"--db {url!r}: expected a file path, sqlite:///PATH or postgresql://user@host/db"
    )


def _host_port(url: str, item: str) -> tuple[str, str]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` → (host, port or "")."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
        if rest and not rest.startswith(":"):
            raise DatabaseURLError(f"--db {url!r}: bad host {item!r}")
    else:
        host, _, port = item.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise DatabaseURLError(f"--db {url!r}: bad port")
    if not host and item:
        raise DatabaseURLError(f"--db {url!r}: bad host {item!r}")
    return unquote(host), port


def keep_sqlite_owner_only(url: str | None) -> None:
    """An SQLite database (and its -wal, -shm) readable by its owner only: it holds session
    keys and password hashes. Created 0600 if missing (SQLite then gives the -wal and -shm
    files the same mode), narrowed if found wider; the agent's store does the same."""
    from ratepad.agent.store.files import create_owner_only, narrow_to_owner

    settings = parse_db_url(url)
    if settings["ENGINE"] != "django.db.backends.sqlite3":
        return
    path = Path(settings["NAME"])
    if path.parent.is_dir():
        create_owner_only(path)
        narrow_to_owner(path)


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
