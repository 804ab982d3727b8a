"""The operations options of ``ratepad server``: ``--log-format`` (``run``, ``sendalerts``) and
``--db-replica`` (``run``). ``add_options`` adds them to the parsers; ``apply`` checks them
and hands them to the settings through the environment, before Django starts."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .config import LOG_FORMATS

LOGGING_COMMANDS = ("run", "sendalerts")


def add_options(sub: Any) -> None:
    """``sub``: the subparsers of ``ratepad server``."""
    for name in LOGGING_COMMANDS:
        sub.choices[name].add_argument(
            "--log-format", choices=LOG_FORMATS, default=None,
            help="warnings and errors on stderr as text (default) or as JSON lines "
            "(RATEPAD_LOG_FORMAT)",
        )  # fmt: skip
    sub.choices["run"].add_argument(
        "--db-replica", metavar="URL",
        help="a PostgreSQL hot standby of --db that report pages, the summary API and exports "
        "read from (RATEPAD_DB_REPLICA)",
    )  # fmt: skip


def apply(args: argparse.Namespace) -> None:
    """Check the options given and set their environment variables (a bad one: Usage)."""
    from ..cli import Usage
    from ..dbrouter import replica_databases
    from ..dburl import DatabaseURLError, parse_db_url

    if getattr(args, "log_format", None):
        os.environ["RATEPAD_LOG_FORMAT"] = args.log_format
    replica = getattr(args, "db_replica", None)
    if replica is None:
        return
    try:
        replica_databases(replica)
    except DatabaseURLError as exc:
        raise Usage(str(exc)) from None
    primary = parse_db_url(args.db or os.environ.get("RATEPAD_DB"))
    if primary["ENGINE"] != "django.db.backends.postgresql":
        raise Usage("--db-replica needs a PostgreSQL --db (its primary)")
    os.environ["RATEPAD_DB_REPLICA"] = replica
