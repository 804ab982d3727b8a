"""The server's metrics, served at ``/metrics`` in the Prometheus text format (prometheus-client).

Counted where they happen (one call each): upload batches and their ratings by result
(``count_batch``), open live streams (``live_streams``), the alert worker's rounds
(``worker_round``), database errors (``database_error``, and every request that failed on one).
Read from the database when scraped (``DatabaseCollector``): agents and silent agents, the alert
deliveries waiting and how long, the replica's lag.

Several processes (``ratepad server run`` instances and ``sendalerts`` on one host): give them
all the same ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory when the host's services start;
set before the process starts). Each process then writes its counters into files there and
any one of them answers ``/metrics`` for all (prometheus-client's multiprocess mode): counters
and histograms are summed, open streams are summed over the processes alive, the worker's last
round is the latest of any. Without it, ``/metrics`` tells of the answering process only.

``EXPORTED`` lists every metric name (the docs' dashboard and alert rules are checked against
it in the tests).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

if TYPE_CHECKING:
    from ..ingest.schemas import BatchIn, BatchOut

log = logging.getLogger("ratepad.ops")
# no ``_created`` series beside every counter
disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> Path | None:
    """The directory shared by the host's processes, if set."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


BATCH_KINDS = ("data", "heartbeat")  # a heartbeat: an empty batch (the agent is alive)
BATCH_OUTCOMES = ("committed", "failed")
RESULTS = ("stored", "duplicate", "conflict", "quarantined")
ERROR_PLACES = ("request", "worker", "scrape", "readyz", "replica")

INGEST_BATCHES = Counter(
    "ratepad_ingest_batches",
    "Agent upload batches by kind (data, heartbeat) and outcome (committed, failed)",
    ["kind", "outcome"],
)
INGEST_RATINGS = Counter(
    "ratepad_ingest_ratings",
    "Uploaded ratings by result (stored, duplicate, conflict, quarantined)",
    ["result"],
)
INGEST_SECONDS = Histogram(
    "ratepad_ingest_batch_seconds",
    "Seconds to store and commit one upload batch, by kind (data, heartbeat)",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LIVE_STREAMS = Gauge(
    "ratepad_live_streams_open",
    "Open live streams (the API's and the wall's), over the processes alive",
    multiprocess_mode="livesum",
)
WORKER_ROUND = Gauge(
    "ratepad_alert_worker_last_round_timestamp_seconds",
    "Unix time at which an alert worker last finished a round (the latest of any process)",
    multiprocess_mode="max",
)
DATABASE_ERRORS = Counter(
    "ratepad_database_errors",
    "Database errors by where they happened (request, worker, scrape, readyz, replica)",
    ["where"],
)
for _kind in BATCH_KINDS:  # every series present from the start, at 0
    for _outcome in BATCH_OUTCOMES:
        INGEST_BATCHES.labels(_kind, _outcome)
    INGEST_SECONDS.labels(_kind)
for _result in RESULTS:
    INGEST_RATINGS.labels(_result)
for _where in ERROR_PLACES:
    DATABASE_ERRORS.labels(_where)

# read from the database at each scrape (DatabaseCollector)
SCRAPED = {
    "ratepad_database_up": "1 if this scrape's database queries succeeded, else 0",
    "ratepad_agents": "Agent keys not revoked that have uploaded at least once",
    "ratepad_agents_silent": "Of those, agents with no upload or heartbeat for the silent "
    "time (3 minutes: three missed heartbeats, as the live wall counts a keypad offline)",
    "ratepad_alert_deliveries_due": "Alert e-mails and webhook calls due and not yet sent",
    "ratepad_alert_delivery_lag_seconds": "Seconds the oldest due alert delivery has waited "
    "(0 when none waits)",
    "ratepad_replica_up": "1 if the reports' replica answers (only with --db-replica)",
    "ratepad_replica_lag_seconds": "Seconds the reports' replica is behind the primary "
    "(only with --db-replica)",
}
EXPORTED = frozenset({
    "ratepad_ingest_batches_total", "ratepad_ingest_ratings_total",
    "ratepad_ingest_batch_seconds_bucket", "ratepad_ingest_batch_seconds_count",
    "ratepad_ingest_batch_seconds_sum", "ratepad_live_streams_open",
    "ratepad_alert_worker_last_round_timestamp_seconds", "ratepad_database_errors_total",
    *SCRAPED,
})  # fmt: skip


# -- counted where they happen -------------------------------------------------------------------
def count_batch(
    batch: BatchIn,
    commit: Callable[[], BatchOut],
    refused: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> BatchOut:
    """``commit()``'s answer, its time and its ratings' results counted; a ``refused``
    exception (the key was revoked meanwhile) is not a failed batch: it goes up uncounted."""
    kind = (
        "data"
        if batch.ratings or batch.prompts or batch.sessions or batch.devices
        else ("heartbeat")
    )
    started = time.perf_counter()
    try:
        answer = commit()
    except refused:
        raise
    except BaseException:
        INGEST_BATCHES.labels(kind, "failed").inc()
        raise
    INGEST_SECONDS.labels(kind).observe(time.perf_counter() - started)
    INGEST_BATCHES.labels(kind, "committed").inc()
    counts = {"stored": answer.stored, "duplicate": answer.duplicates,
              "conflict": answer.conflicts, "quarantined": answer.quarantined}  # fmt: skip
    for result, n in counts.items():
        if n:
            INGEST_RATINGS.labels(result).inc(n)
    return answer


def live_streams(open_now: int) -> None:
    """This process's open live streams, after one opened or closed."""
    LIVE_STREAMS.set(open_now)


def worker_round() -> None:
    WORKER_ROUND.set(time.time())


def database_error(where: str, exc: BaseException) -> None:
    """Count ``exc`` if it is a database error."""
    from django.db import DatabaseError

    if isinstance(exc, DatabaseError):
        DATABASE_ERRORS.labels(where).inc()


def request_failed(sender: object, **kwargs: Any) -> None:
    """Django's ``got_request_exception``: sent while the request's exception is handled."""
    exc = sys.exc_info()[1]
    if exc is not None:
        database_error("request", exc)


# -- read when scraped ---------------------------------------------------------------------------
class DatabaseCollector:
    """Gauges read from the database at each scrape: a few indexed counts."""

    def collect(self) -> Iterator[Metric]:
        from django.db import DatabaseError

        try:
            values = _database_values()
        except DatabaseError as exc:
            DATABASE_ERRORS.labels("scrape").inc()
            log.warning("metrics: cannot read the database: %s", exc)
            values = {}
        yield _gauge("ratepad_database_up", 1.0 if values else 0.0)
        for name, value in values.items():
            yield _gauge(name, value)
        yield from _replica()


def _gauge(name: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, SCRAPED[name], value=value)


def _database_values() -> dict[str, float]:
    from django.db.models import Count, Min, Q
    from django.utils import timezone

    from ..alerts.models import Delivery
    from ..ingest.models import AgentKey
    from ..web.views import SILENT

    now = timezone.now()
    agents = AgentKey.objects.filter(revoked_at__isnull=True, last_upload_at__isnull=False)
    quiet = Q(last_upload_at__lt=now - SILENT)
    heard = agents.aggregate(n=Count("pk"), silent=Count("pk", filter=quiet))
    due = Delivery.objects.filter(sent_at__isnull=True, attempts__lt=20, next_try_at__lte=now)
    waiting = due.aggregate(n=Count("pk"), oldest=Min("next_try_at"))
    oldest = waiting["oldest"]
    return {
        "ratepad_agents": float(heard["n"]),
        "ratepad_agents_silent": float(heard["silent"]),
        "ratepad_alert_deliveries_due": float(waiting["n"]),
        "ratepad_alert_delivery_lag_seconds": (now - oldest).total_seconds() if oldest else 0.0,
    }


def _replica() -> Iterator[Metric]:
    from .. import dbrouter

    state = dbrouter.status()
    if state is None:
        return
    yield _gauge("ratepad_replica_up", 1.0 if state.up else 0.0)
    if state.up:
        yield _gauge("ratepad_replica_lag_seconds", state.lag)


def exposition() -> tuple[bytes, str]:
    """The text of ``/metrics`` and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())  # first: the errors it counts show in this scrape
    path = multiprocess_dir()
    if path is not None:
        MultiProcessCollector(registry, str(path))  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    return generate_latest(registry), CONTENT_TYPE_LATEST


# -- the process ---------------------------------------------------------------------------------
_LIVE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db")


def start_process() -> None:
    """Multiprocess mode: forget the open streams of processes that died without saying so
    (SIGKILL), and this process's when it exits."""
    path = multiprocess_dir()
    if path is None:
        return
    dead: set[int] = set()
    with contextlib.suppress(OSError):
        for file in path.iterdir():
            if (m := _LIVE_FILE.fullmatch(file.name)) and not _alive(int(m[1])):
                dead.add(int(m[1]))
    for pid in dead:
        mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    atexit.register(mark_process_dead, os.getpid(), str(path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
