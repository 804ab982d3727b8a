"""``ratepad server backup | restore | pgbackrest-config``: backups of the server's database.

* SQLite: ``backup FILE`` copies the database with SQLite's online backup API while the server
  runs (one read transaction: a consistent snapshot, uploads go on beside it), into a file
  written beside FILE and renamed onto it, mode 0600 like the database. ``restore FILE`` copies
  a backup into a stopped server's database, in one transaction (the old database stays whole
  if it fails), after checking that FILE is a ratepad database whose migrations this version
  knows.
* PostgreSQL: pgBackRest does it (full and incremental backups, continuous WAL archiving,
  point-in-time restore); ``pgbackrest-config`` prints its configuration file for ratepad's
  cluster, or (``--postgresql``) the lines postgresql.conf needs to archive its WAL there.

Exit status: 0 done; 1 the copy failed (an I/O error, a full disk: nothing was replaced);
2 bad input or refused (one line on stderr). These run before Django opens a database: a
missing SQLite file is an error here, never created.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .cli import Usage

ACTIONS = ("backup", "restore", "pgbackrest-config")
EXIT_OK, EXIT_FAILED = 0, 1
STANZA = "ratepad"
# the tables a ratepad database has from its first migration on
RATEPAD_TABLES = ("django_migrations", "ingest_rating", "org_node")


class CopyFailed(Exception):
    """The copy did not complete (I/O error, full disk): exit 1, nothing replaced."""


def add_parsers(sub: Any, db: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``backup``, ``restore`` and ``pgbackrest-config`` actions, on ``build_parser``'s
    subparsers."""
    p = sub.add_parser("backup", help="copy the SQLite database to FILE while the server runs "
                       "(PostgreSQL: pgBackRest, see pgbackrest-config)")  # fmt: skip
    p.add_argument("file", metavar="FILE", type=Path, help="the backup to write")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    db(p)
    p = sub.add_parser("restore", help="copy a backup FILE into the (stopped) server's SQLite "
                       "database")  # fmt: skip
    p.add_argument("file", metavar="FILE", type=Path, help="the backup to restore")
    p.add_argument("--force", action="store_true", help="replace a database that exists")
    db(p)
    p = sub.add_parser("pgbackrest-config", help="print a pgBackRest configuration for the "
                       "server's PostgreSQL cluster (or, --postgresql, its archiving "
                       "settings)")  # fmt: skip
    p.add_argument("--repo", required=True, type=Path, metavar="DIR",
                   help="the backup repository (another disk or a mounted share)")  # fmt: skip
    p.add_argument("--pg-data", required=True, type=Path, metavar="DIR",
                   help="the cluster's data directory")  # fmt: skip
    p.add_argument("--pg-port", type=int, default=5432, metavar="PORT", help="default 5432")
    p.add_argument("--pg-socket-path", type=Path, default=Path("/var/run/postgresql"),
                   metavar="DIR", help="the cluster's Unix socket directory")  # fmt: skip
    p.add_argument("--pg-user", default="postgres", metavar="USER",
                   help="a superuser pgBackRest connects as (default postgres)")  # fmt: skip
    p.add_argument("--stanza", default=STANZA, help=f"default {STANZA}")
    p.add_argument("--full-retention", type=int, default=4, metavar="N",
                   help="full backups kept, and the WAL to restore to any time since the "
                   "oldest (default 4: four weeks of weekly fulls)")  # fmt: skip
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="where the configuration file will be, if not pgBackRest's default "
                   "(named in archive_command)")  # fmt: skip
    p.add_argument("--log-path", type=Path, metavar="DIR", help="pgBackRest's log folder")
    p.add_argument("--lock-path", type=Path, metavar="DIR", help="pgBackRest's lock folder")
    p.add_argument("--postgresql", action="store_true",
                   help="print postgresql.conf's settings that archive the WAL")  # fmt: skip
    p.set_defaults(db=None)


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "backup":
            return cmd_backup(_sqlite_path(args.db, "backup"), args.file, force=args.force)
        if args.action == "restore":
            return cmd_restore(args.file, _sqlite_path(args.db, "restore"), force=args.force)
        print(pgbackrest_config(args) if not args.postgresql else archive_settings(args), end="")
        return EXIT_OK
    except CopyFailed as exc:
        print(f"ratepad server {args.action}: {exc}", file=sys.stderr)
        return EXIT_FAILED


# -- SQLite ------------------------------------------------------------------------------


def _sqlite_path(url: str | None, action: str) -> Path:
    from .dburl import parse_db_url

    settings = parse_db_url(url or os.environ.get("RATEPAD_DB"))  # as the settings read it
    if settings["ENGINE"] != "django.db.backends.sqlite3":
        raise Usage(f"{action} copies an SQLite database; back up PostgreSQL with pgBackRest "
                    "(see 'ratepad server pgbackrest-config')")  # fmt: skip
    return Path(settings["NAME"])


@contextlib.contextmanager
def _open(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    # quoted: a '?' or '#' in a file name is part of the name, not of the URI
    uri = f"file:{quote(path.as_posix())}{'?mode=ro' if read_only else ''}"
    conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _ratepad_migrations(path: Path, *, check: bool = True) -> set[tuple[str, str]]:
    """The migrations applied to the ratepad database ``path``; Usage if it is not one (not
    SQLite, damaged (``check``: every page read), or another application's)."""
    try:
        with _open(path, read_only=True) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if not set(RATEPAD_TABLES) <= tables:
                raise Usage(f"{path}: not a ratepad server database")
            found = conn.execute("PRAGMA quick_check").fetchone() if check else ("ok",)
            if found is None or found[0] != "ok":
                raise Usage(f"{path}: damaged ({found[0] if found else 'no answer'})")
            return {(app, name) for app, name in conn.execute(
                "SELECT app, name FROM django_migrations")}  # fmt: skip
    except sqlite3.DatabaseError as exc:
        raise Usage(f"{path}: not a ratepad server database ({_describe(exc)})") from None


def _code_migrations() -> set[tuple[str, str]]:
    """The migrations this version of ratepad has (read from the code, no database opened),
    with those a squashed one replaces."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratepad_server.settings")
    import django

    django.setup()
    from django.db.migrations.loader import MigrationLoader

    disk = MigrationLoader(None, ignore_no_migrations=True).disk_migrations
    known = set(disk)
    for migration in disk.values():
        known.update(migration.replaces)
    return known


def _ratings(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM ingest_rating").fetchone()
    return int(row[0]) if row else 0


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def cmd_backup(database: Path, target: Path, *, force: bool) -> int:
    if not database.is_file():
        raise Usage(f"{database}: no such database")
    _ratepad_migrations(database, check=False)  # the copy is checked: the live file read once
    target = Path(os.path.abspath(target))
    if target.is_dir():
        raise Usage(f"{target} is a directory: name the backup file")
    if not target.parent.is_dir():
        raise Usage(f"{target.parent}: no such directory")
    if target.exists() and not force:
        raise Usage(f"{target} exists: give --force to replace it")
    if target.exists() and target.samefile(database):
        raise Usage(f"{target} is the database itself")
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        # created owner-only before SQLite writes into it: it holds password hashes and keys
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise Usage(f"cannot write in {target.parent}: {_describe(exc)}") from None
    try:
        with _open(database) as source, _open(partial) as copy:
            # pages=-1: one step, so one read transaction: in WAL mode it sees one committed
            # state and blocks no writer (stepping would restart on every upload)
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
            check = copy.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise CopyFailed(f"the copy does not check: {check}")
            ratings = _ratings(copy)
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        if force:
            os.replace(partial, target)
        else:
            os.link(partial, target)  # fails if FILE appeared meanwhile: never overwritten
            os.unlink(partial)
        _fsync_dir(target.parent)
    except FileExistsError:
        raise Usage(f"{target} exists: give --force to replace it") from None
    except (OSError, sqlite3.Error) as exc:
        raise CopyFailed(f"{target}: {_describe(exc)} (nothing written)") from None
    finally:
        for leftover in (partial, partial.with_name(partial.name + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    size = target.stat().st_size / 1e6
    print(f"ratepad server: {database} backed up to {target} ({ratings} ratings, {size:.1f} MB)")
    return EXIT_OK


def _open_elsewhere(path: Path) -> int | None:
    """The id of another process that has ``path`` (or its -wal) open, if /proc tells."""
    names = {str(path), f"{path}-wal"}
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) in names for fd in (entry / "fd").iterdir()):
                return int(entry.name)
        except OSError:  # gone meanwhile, or another user's
            continue
    return None


def cmd_restore(backup: Path, database: Path, *, force: bool) -> int:
    if not backup.is_file():
        raise Usage(f"{backup}: no such file")
    applied = _ratepad_migrations(backup)
    known = _code_migrations()
    newer = sorted(applied - known)
    if newer:
        app, name = newer[0]
        raise Usage(f"{backup} was written by a newer ratepad (migration {app}.{name} is "
                    "unknown here): restore it with that version")  # fmt: skip
    if not database.parent.is_dir():
        raise Usage(f"{database.parent}: no such directory")
    if database.exists() and database.samefile(backup):
        raise Usage(f"{backup} is the database itself")
    if database.exists() and database.stat().st_size and not force:
        raise Usage(f"{database} exists: give --force to replace it (with the server stopped)")
    pid = _open_elsewhere(database)
    if pid is not None:
        raise Usage(f"{database} is open in process {pid}: stop the server first")
    from .dburl import keep_sqlite_owner_only

    keep_sqlite_owner_only(str(database))  # created 0600 if missing, narrowed if wider
    try:
        with _open(backup, read_only=True) as source, _open(database) as target:
            # one transaction on the target: a failure leaves the old database whole
            source.backup(target)
            target.execute("PRAGMA journal_mode=WAL")  # as the server opens it
            ratings = _ratings(target)
    except (OSError, sqlite3.Error) as exc:
        raise CopyFailed(f"{database}: {_describe(exc)} (the database is as before)") from None
    print(f"ratepad server: {backup} restored into {database} ({ratings} ratings)")
    if known - applied:
        print("ratepad server: the backup's schema is older: run 'ratepad server init' to "
              "migrate it")  # fmt: skip
    return EXIT_OK


# -- PostgreSQL: pgBackRest --------------------------------------------------------------


def _config_option(args: argparse.Namespace) -> str:
    return f" --config={shlex.quote(str(args.config))}" if args.config else ""


def pgbackrest_config(args: argparse.Namespace) -> str:
    """pgBackRest's configuration file for ratepad's cluster (one stanza)."""
    if not 1 <= args.full_retention <= 1000:
        raise Usage("--full-retention: expected 1..1000")
    if not 1 <= args.pg_port <= 65535:
        raise Usage("--pg-port: expected 1..65535")
    for path in (args.repo, args.pg_data, args.pg_socket_path, args.config, args.log_path,
                 args.lock_path):  # fmt: skip
        if path is not None and any(c in str(path) for c in "\n\r#'"):
            raise Usage(f"{str(path)!r}: a path for pgBackRest cannot hold a line break, # or '")
    for option, value in (("--stanza", args.stanza), ("--pg-user", args.pg_user)):
        if not value or not all(c.isalnum() or c in "_-" for c in value):
            raise Usage(f"{option} {value!r}: expected letters, digits, '-' and '_'")
    lines = [
        "# pgBackRest for ratepad's PostgreSQL (written by 'ratepad server pgbackrest-config')",
        "# postgresql.conf archives every WAL segment here: see "
        "'ratepad server pgbackrest-config --postgresql'",
        "[global]",
        f"repo1-path={Path(os.path.abspath(args.repo))}",
        "# full backups kept; the WAL is kept to restore to any moment since the oldest",
        "repo1-retention-full-type=count",
        f"repo1-retention-full={args.full_retention}",
        "# small files bundled: fewer files in the repository",
        "repo1-bundle=y",
        "compress-type=zst",
        "process-max=2",
        "# the checkpoint a backup starts from is spread out (no I/O burst at peak)",
        "start-fast=n",
        "log-level-console=warn",
        "log-level-file=info",
    ]
    if args.log_path:
        lines.append(f"log-path={Path(os.path.abspath(args.log_path))}")
    if args.lock_path:
        lines.append(f"lock-path={Path(os.path.abspath(args.lock_path))}")
    lines += [
        "",
        f"[{args.stanza}]",
        f"pg1-path={Path(os.path.abspath(args.pg_data))}",
        f"pg1-port={args.pg_port}",
        f"pg1-socket-path={Path(os.path.abspath(args.pg_socket_path))}",
        f"pg1-user={args.pg_user}",
    ]
    return "\n".join(lines) + "\n"


def archive_settings(args: argparse.Namespace) -> str:
    """The postgresql.conf lines that hand every finished WAL segment to pgBackRest."""
    pgbackrest_config(args)  # the same checks
    push = f"pgbackrest{_config_option(args)} --stanza={args.stanza} archive-push %p"
    return "\n".join([
        "# ratepad: WAL archiving to pgBackRest (a restart of PostgreSQL applies it)",
        "wal_level = replica",
        "archive_mode = on",
        "archive_command = '{}'".format(push.replace("'", "''")),  # quoted for the file
        "# a WAL segment is archived at least every minute: at most a minute of ratings is",
        "# only on the cluster's own disk",
        "archive_timeout = 60",
        "max_wal_senders = 10",
    ]) + "\n"  # fmt: skip
