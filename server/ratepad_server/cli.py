"""``ratepad server init | load-org | enroll-agent | run | users | keys`` (the CLI contract in
server.md).

``main(argv)`` configures Django for the ``--db`` given, once per process.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .envconf import ConfigError

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


class Usage(Exception):
    """Bad input: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise Usage(f"{self.prog}: {message}")


def build_parser(prog: str = "ratepad server") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="The central ratepad server (Django).")
    sub = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )

    def db(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--db",
            metavar="URL",
            help="SQLite file (default "
            "./ratepad-server.sqlite3), sqlite:///PATH or postgresql://user@host/db",
        )

    db(sub.add_parser("init", help="create or migrate the schema"))
    p = sub.add_parser("load-org", help="load the organisation file (idempotent)")
    p.add_argument("file", metavar="FILE.toml", type=Path, help="the organisation file (TOML)")
    db(p)
    p = sub.add_parser("enroll-agent", help="print a new agent key for a branch")
    p.add_argument("--branch", required=True, metavar="CODE", help='a node of kind "branch"')
    p.add_argument("--json", action="store_true", help="print {key, key_id, branch} as JSON")
    db(p)
    p = sub.add_parser("run", help="serve the API and the web (uvicorn)")
    db(p)
    p.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="the address to serve on (default 127.0.0.1:8080)")  # fmt: skip
    p.add_argument("--threads", type=int, default=16,
                   help="threads for requests (default 16; live streams need none)")  # fmt: skip
    p.add_argument(
        "--trusted-proxy",
        metavar="ADDR",
        help="a reverse proxy's address ('*': any) whose X-Forwarded-For/-Proto/"
        "-Host headers are believed",
    )
    p.add_argument("--allow-default-passwords", action="store_true",
                   help="start even while users still have the organisation file's initial "
                   "passwords (a demo, a test)")  # fmt: skip
    p = sub.add_parser(
        "rollups",
        help="check the rollups against the raw ratings (exit 1 if they differ), or rebuild them",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--check", action="store_true", help="rebuild in a transaction that is "
                      "rolled back, and compare (changes nothing)")  # fmt: skip
    what.add_argument("--rebuild", action="store_true", help="rebuild every rollup (after a "
                      "change of RATEPAD_TIME_ZONE, or as a repair)")  # fmt: skip
    db(p)
    db(sub.add_parser("partitions", help="create the monthly partitions (PostgreSQL) of every "
                      "accepted month and 3 ahead (the alert worker does it hourly)"))  # fmt: skip
    p = sub.add_parser("sendalerts", help="send the alerts' e-mails and webhook calls and run "
                       "the periodic maintenance until SIGTERM ('run' does it too)")  # fmt: skip
    p.add_argument("--once", action="store_true", help="one round with every periodic step "
                   "(silent agents, overdue cases, partitions ahead), then exit "
                   "(for cron)")  # fmt: skip
    db(p)
    p = sub.add_parser(
        "demo",
        help="a demo organisation, simulated keypads and agents uploading to a server on a "
        "temporary SQLite database; prints the web's URL",
    )
    p.add_argument(
        "--seconds", type=float, default=None, metavar="N",
        help="stop after N seconds (default: run until Ctrl-C)",
    )  # fmt: skip
    p.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="the address to serve on (default 127.0.0.1:8080)")  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="random seed of the customers")
    from .accounts import cli as accounts_cli

    accounts_cli.add_parsers(sub, db)  # users ..., keys ...
    from .ops import cli as ops_cli

    ops_cli.add_options(sub)  # --log-format, --db-replica
    from .loadtest import command as loadtest

    loadtest.add_parser(sub, db)
    from .casework import cli as casework_cli

    casework_cli.add_parsers(sub, db)  # holidays ...
    from . import backups

    backups.add_parsers(sub, db)  # backup, restore, pgbackrest-config
    return parser


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise Usage(f"--listen {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _check_url(db: str | None) -> None:
    from .dburl import DatabaseURLError, parse_db_url

    try:
        parse_db_url(db)
    except DatabaseURLError as exc:
        raise Usage(str(exc)) from None


def _secret_key() -> str:
    """The key of ./ratepad-server.secret, created (mode 0600) on first use."""
    path = Path("ratepad-server.secret")
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another instance was quicker
            return path.read_text(encoding="ascii").strip()
        except OSError:
            return key  # a read-only directory: sessions last as long as this process
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key + "\n")
        return key
    except OSError as exc:
        raise Usage(f"cannot read {path}: {exc.strerror or exc}") from None


def _setup(db: str | None) -> None:
    if not os.environ.get("RATEPAD_SECRET_KEY"):
        os.environ["RATEPAD_SECRET_KEY"] = _secret_key()
    if db:
        os.environ["RATEPAD_DB"] = db
    from .dburl import keep_sqlite_owner_only

    keep_sqlite_owner_only(os.environ.get("RATEPAD_DB"))  # 0600, narrowed if found wider
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratepad_server.settings")
    import django

    try:
        django.setup()
        # the modules that read RATEPAD_* settings when imported: a bad value is found now,
        # not at the first request
        from .alerts import engine, worker  # noqa: F401  (engine imports the reports')
    except ConfigError as exc:
        raise Usage(str(exc)) from None


def _check_database() -> None:
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        plan = MigrationExecutor(connection).migration_plan(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
    except DatabaseError as exc:
        raise Usage(f"cannot use the database: {_first_line(exc)}") from None
    if plan:
        raise Usage("the database schema is missing or old: run 'ratepad server init' first")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def cmd_init() -> int:
    from django.core.management import call_command
    from django.db import DatabaseError

    from .ingest.partitions import ensure_ahead

    try:
        call_command("migrate", interactive=False, verbosity=0)
        ensure_ahead()  # the accepted months and some ahead
    except DatabaseError as exc:
        raise Usage(f"cannot use the database: {_first_line(exc)}") from None
    print("ratepad server: schema up to date")
    return EXIT_OK


def cmd_partitions() -> int:
    from django.db import DatabaseError, connection

    from .ingest.partitions import ensure_ahead

    _check_database()
    try:
        months = ensure_ahead()
    except DatabaseError as exc:
        raise Usage(f"cannot use the database: {_first_line(exc)}") from None
    if connection.vendor != "postgresql":
        print("ratepad server: SQLite needs no partitions")
    else:
        print(f"ratepad server: partitions from {months[0]:%Y-%m} to {months[-1]:%Y-%m} present")
    return EXIT_OK


def read_org(path: Path) -> dict[str, list[dict[str, Any]]]:
    from .org.orgfile import OrgFileError, read_org_file

    try:
        return read_org_file(path)
    except OrgFileError as exc:
        raise Usage(str(exc)) from None


def cmd_load_org(path: Path, org: dict[str, list[dict[str, Any]]]) -> int:
    from .org.loader import OrgFileError, load_org

    _check_database()
    try:
        result = load_org(org)
    except OrgFileError as exc:
        raise Usage(str(exc)) from None
    if result.moved:
        from .rollups.service import rebuild_nodes

        rebuild_nodes()  # the old ratings of moved nodes now count for their new parents
    print(
        f"ratepad server: {path}: {result.nodes} nodes, {result.windows} windows, "
        f"{result.staff} staff, {result.users} users changed; {result.rebound} keypads bound"
    )
    return EXIT_OK


def cmd_rollups(*, check: bool) -> int:
    """``--check``: exit 0 if the incremental rollups equal a rebuild from the raw rows, else
    print the first differing rows per table and exit 1. ``--rebuild``: replace them."""
    from django.db import transaction

    from .rollups import service

    _check_database()
    if not check:
        service.rebuild()
        print("ratepad server: rollups rebuilt from the raw ratings")
        return EXIT_OK
    with transaction.atomic():
        before = service.snapshot()
        service.rebuild()
        after = service.snapshot()
        transaction.set_rollback(True)
    bad = 0
    for table, rows in before.items():
        extra, missing = set(rows) - set(after[table]), set(after[table]) - set(rows)
        if extra or missing:
            bad += 1
            example = sorted(extra or missing, key=str)[0]
            print(f"ratepad server: {table}: {len(extra)} rows differ from the rebuild, "
                  f"{len(missing)} missing; e.g. {example}")  # fmt: skip
        else:
            print(f"ratepad server: {table}: {len(rows)} rows agree with the raw ratings")
    return 1 if bad else EXIT_OK


def cmd_enroll(branch_code: str, as_json: bool) -> int:
    from .ingest.keys import enroll
    from .org.models import Node

    _check_database()
    branch = Node.objects.filter(code=branch_code).first()
    if branch is None:
        raise Usage(f"--branch {branch_code!r}: no such node (load the organisation file)")
    if branch.kind != Node.BRANCH:
        raise Usage(f'--branch {branch_code!r} is not a branch (kind = "branch")')
    row, key = enroll(branch)
    from .accounts.cli import actor
    from .audit.log import record

    record(None, "agent_key.enroll", row, username=actor(), node_path=branch.path,
           branch=branch.code)  # fmt: skip
    if as_json:
        print(json.dumps({"key": key, "key_id": row.key_id, "branch": branch.code}))
    else:
        print(key)
    return EXIT_OK


def _refuse_initial_passwords(allowed: bool) -> None:
    from .accounts.cli import refuse_initial_passwords

    refuse_initial_passwords(allowed)


def _answer_to_listen_address(host: str) -> None:
    """The address given to ``--listen`` is a name the server answers to (agents configured
    with ``http://10.1.2.3:8080/`` send that as Host); a wildcard address names no host, so
    without ``RATEPAD_ALLOWED_HOSTS`` only localhost would be answered: said once on stderr."""
    from django.conf import settings
    from django.http.request import validate_host

    if host in ("0.0.0.0", "::", ""):
        if not os.environ.get("RATEPAD_ALLOWED_HOSTS"):
            print("ratepad server: listening on every address, but answering only to "
                  f"{','.join(settings.ALLOWED_HOSTS)}: set RATEPAD_ALLOWED_HOSTS to the names "
                  "agents and browsers use", file=sys.stderr, flush=True)  # fmt: skip
        return
    name = f"[{host}]" if ":" in host else host
    if not validate_host(name, settings.ALLOWED_HOSTS):
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, name]


def cmd_run(args: argparse.Namespace) -> int:
    host, port = _listen(args.listen)
    if not 1 <= args.threads <= 1000:
        raise Usage("--threads: expected 1..1000")
    _check_database()
    _refuse_initial_passwords(args.allow_default_passwords)
    from . import asgi

    try:
        sock = asgi.bind(host, port)
    except OSError as exc:
        raise Usage(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    actual = int(sock.getsockname()[1])
    _answer_to_listen_address(host)
    from .alerts import worker

    def ready() -> None:
        print(f"ratepad server: serving on http://{host}:{actual}/api/v1/", flush=True)

    worker.start()  # e-mails and webhooks of the alerts (claimed atomically across instances)
    try:  # until SIGTERM or SIGINT: stop accepting, finish what is in flight (asgi.serve)
        asgi.serve(sock, args.threads, args.trusted_proxy, on_ready=ready)
    finally:
        worker.stop()
    return EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str = "ratepad server") -> int:
    try:
        args = build_parser(prog).parse_args(argv)
        if args.action == "demo":
            from .demo import run_demo

            _listen(args.listen)
            if args.seconds is not None and not 1 <= args.seconds <= 86_400:
                raise Usage("--seconds: expected 1..86400")
            return run_demo(args.listen, args.seconds, args.seed)
        # bad arguments and files fail before Django starts and the database is opened
        _check_url(args.db)
        from .ops import cli as ops_cli

        ops_cli.apply(args)  # --log-format, --db-replica: to the environment the settings read
        if args.action in ("backup", "restore", "pgbackrest-config"):  # before a database opens
            from . import backups

            return backups.run(args)
        if args.action == "run":
            _listen(args.listen)
        org = read_org(args.file) if args.action == "load-org" else {}
        if args.action == "run" and args.trusted_proxy:
            os.environ["RATEPAD_TRUSTED_PROXY"] = args.trusted_proxy  # read by the settings
        _setup(args.db)
        if args.action == "init":
            return cmd_init()
        if args.action == "load-org":
            return cmd_load_org(args.file, org)
        if args.action == "enroll-agent":
            return cmd_enroll(args.branch, args.json)
        if args.action == "rollups":
            return cmd_rollups(check=args.check)
        if args.action in ("users", "keys"):
            from .accounts import cli as accounts_cli

            return accounts_cli.run(args)
        if args.action == "holidays":
            from .casework import cli as casework_cli

            return casework_cli.run(args)
        if args.action == "partitions":
            return cmd_partitions()
        if args.action == "loadtest":
            from .loadtest import command as loadtest

            return loadtest.run(args)
        if args.action == "sendalerts":
            from django.core.management import call_command

            _check_database()
            call_command("sendalerts", once=args.once)
            return EXIT_OK
        return cmd_run(args)
    except (Usage, ConfigError) as exc:
        message = str(exc)
        print(message if message.startswith(prog) else f"{prog}: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C before serving began (once serving: a graceful stop)
        print(f"{prog}: stopped", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
