"""Reports from a replica: with ``--db-replica URL`` (``RATEPAD_DB_REPLICA``, a PostgreSQL hot
standby of the ``--db`` primary), the views marked ``reads_from_replica`` (report pages, the
API's summary, exports) read there; everything else, and every write, uses the primary.

The replica's connection is read-only twice over: a standby refuses writes, and its sessions
start with ``default_transaction_read_only`` (a URL naming a primary by mistake writes nothing
either). How far behind it is (``status``) is measured every ``CHECK_EVERY`` seconds per
process (``RATEPAD_REPLICA_CHECK_S``, 5): 0 when it has replayed everything the primary has
flushed, else the time since the last transaction it replayed. Over
``RATEPAD_REPLICA_LAG_WARN_S`` (60) seconds the report page says so; every answer read from
the replica carries ``Ratepad-Replica-Lag`` (seconds). A replica that does not answer, or
fails a view's query, is left aside (reads go to the primary) for ``RETRY_DOWN`` seconds,
then tried again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from .dburl import DatabaseURLError, parse_db_url
from .envconf import number

if TYPE_CHECKING:  # imported by the settings: no Django at import time
    from django.http import HttpRequest

REPLICA = "replica"  # its alias in DATABASES
# seconds between two measurements of the lag, per process
CHECK_EVERY = number("RATEPAD_REPLICA_CHECK_S", 5, 0.1, 3600)
RETRY_DOWN = max(CHECK_EVERY, 30.0)  # seconds before a replica away is tried again
LAG_WARN_S = number("RATEPAD_REPLICA_LAG_WARN_S", 60, 0, 86_400)
log = logging.getLogger("ratepad.replica")
_reading = ContextVar("ratepad_reads_from_replica", default=False)

P = ParamSpec("P")
R = TypeVar("R")


def replica_databases(url: str | None = None) -> dict[str, dict[str, Any]]:
    """The ``DATABASES`` entry of the replica (none without a URL); DatabaseURLError if the
    URL names no PostgreSQL database."""
    url = url if url is not None else os.environ.get("RATEPAD_DB_REPLICA")
    if not url:
        return {}
    db = parse_db_url(url, writes=False)
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise DatabaseURLError(f"--db-replica {url!r}: expected a PostgreSQL hot standby "
                               "(postgresql://user@host/db)")  # fmt: skip
    options = db["OPTIONS"]
    options["options"] += " -c default_transaction_read_only=on"
    options.setdefault("connect_timeout", "3")  # a replica away costs a report 3 s, once
    return {REPLICA: db}


class ReportsFromReplica:
    """Django's database router: the replica for reads inside ``reads_from_replica``."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return REPLICA if _reading.get() else None

    def db_for_write(self, model: type, **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: object, obj2: object, **hints: Any) -> bool:
        return True  # the same rows on both

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"  # the standby gets its schema by replication


@dataclass(frozen=True)
class ReplicaStatus:
    up: bool
    lag: float  # seconds behind the primary (0 when down: unknown)
    at: float  # time.monotonic() of the measurement


_lock = threading.Lock()
_last: ReplicaStatus | None = None


def configured() -> bool:
    from django.conf import settings

    return REPLICA in settings.DATABASES


def status() -> ReplicaStatus | None:
    """The replica's state, measured at most every ``CHECK_EVERY`` seconds (``RETRY_DOWN``
    when it did not answer); None without a replica."""
    global _last
    if not configured():
        return None
    with _lock:
        now = time.monotonic()
        if _last is None or now - _last.at >= (CHECK_EVERY if _last.up else RETRY_DOWN):
            was_up = _last is None or _last.up
            _last = _measure(now)
            if _last.up != was_up:
                log.warning("replica %s", "answers again" if _last.up else "is away: "
                            "reports read from the primary")  # fmt: skip
        return _last


def _measure(now: float) -> ReplicaStatus:
    from django.db import DatabaseError, connections

    from .ops import metrics

    try:
        with connections["default"].cursor() as cur:
            cur.execute("SELECT pg_current_wal_flush_lsn()")
            (flushed,) = cur.fetchone() or (None,)
        with connections[REPLICA].cursor() as cur:
            # pg_last_wal_replay_lsn() is NULL on a server that is not a standby (a URL
            # naming the primary itself): nothing to wait for
            cur.execute(
                "SELECT COALESCE(pg_wal_lsn_diff(%s, pg_last_wal_replay_lsn()), 0),"
                " EXTRACT(EPOCH FROM now() - COALESCE(pg_last_xact_replay_timestamp(),"
                " pg_postmaster_start_time()))",
                [flushed],
            )
            behind_bytes, since_replayed = cur.fetchone() or (0, 0)
    except DatabaseError as exc:
        metrics.database_error("replica", exc)
        log.info("replica: %s", (str(exc).strip().splitlines() or [type(exc).__name__])[0])
        connections[REPLICA].close()
        return ReplicaStatus(False, 0.0, now)
    lag = 0.0 if behind_bytes <= 0 else max(0.0, float(since_replayed))
    return ReplicaStatus(True, lag, now)


@contextlib.contextmanager
def replica_reads(request: HttpRequest) -> Iterator[ReplicaStatus | None]:
    """Inside: reads go to the replica when there is one that answers (its status, else
    None); ``request.replica_behind_s`` is set (the report page's notice) when it is over the
    warning lag."""
    state = status()
    if state is None or not state.up:
        yield None
        return
    if state.lag > LAG_WARN_S:
        request.replica_behind_s = round(state.lag)  # type: ignore[attr-defined]
    token = _reading.set(True)
    try:
        yield state
    except Exception:
        _forget_if_failed()
        raise
    finally:
        _reading.reset(token)


def _forget_if_failed() -> None:
    """The replica's connection failed inside a view: left aside until ``RETRY_DOWN``."""
    global _last
    from django.db import connections

    if connections[REPLICA].errors_occurred:
        connections[REPLICA].close()
        with _lock:
            _last = ReplicaStatus(False, 0.0, time.monotonic())
        log.warning("replica failed a query: reports read from the primary")


def reads_from_replica(
    view: Callable[Concatenate[HttpRequest, P], R],
) -> Callable[Concatenate[HttpRequest, P], R]:
    """A Django view whose reads go to the replica (``replica_reads``); its answer says how
    far behind the replica was (``Ratepad-Replica-Lag``, seconds). (Not for django-ninja's
    views: ninja reads the annotations in the wrapper's module; use ``replica_reads``.)"""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> R:
        from django.http import HttpResponseBase

        with replica_reads(request) as state:
            answer = view(request, *args, **kwargs)
        if state is not None and isinstance(answer, HttpResponseBase):
            answer["Ratepad-Replica-Lag"] = f"{state.lag:.1f}"
        return answer

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature
