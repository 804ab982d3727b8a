"""Sending e-mails (SMTP) and webhook calls from ``Delivery`` rows, the periodic look for
silent agents (``engine.check_silent``) and other periodic maintenance (``PERIODIC``).

``ratepad server run`` runs the worker in a thread (``start``/``stop``); ``ratepad server
sendalerts`` (the ``sendalerts`` management command) runs it on its own, ``--once`` for one
round. Every instance's worker claims rows; they never send a row twice: a worker
picks a candidate, then ``UPDATE … SET claimed_until = now + lease WHERE id = … AND sent_at IS
NULL AND (claimed_until IS NULL OR claimed_until < now)`` and sends only if exactly one row
changed. A failure pushes the row's next try forward (doubling, at most an hour), so one bad
address cannot crash-loop the worker. ``stop`` ends it between two rows.

* ``RATEPAD_SILENT_CHECK_S`` (30): seconds between two looks for silent agents.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from ..envconf import number
from ..ops import metrics
from .models import Delivery
from .webhooks import post_json

LEASE = timedelta(minutes=2)
log = logging.getLogger("ratepad.alerts")
_stop = threading.Event()
_thread: threading.Thread | None = None


def claim_one() -> Delivery | None:
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    for candidate in Delivery.objects.filter(
        free, sent_at__isnull=True, next_try_at__lte=now, attempts__lt=20
    ).order_by("next_try_at")[:5]:
        changed = Delivery.objects.filter(free, pk=candidate.pk, sent_at__isnull=True).update(
            claimed_until=now + LEASE
        )
        if changed == 1:
            candidate.refresh_from_db()
            return candidate
    return None


def send(d: Delivery) -> None:
    if d.channel == Delivery.EMAIL:
        alerts = d.body.get("alerts") if d.digest else [d.body]  # a digest: one block each
        text = "\n\n".join("\n".join(f"{k}: {v}" for k, v in a.items()) for a in alerts or [])
        send_mail(d.subject, text, settings.DEFAULT_FROM_EMAIL, [d.target])
    else:  # checked against the allowlist again, on the addresses of now
        post_json(d.target, d.body, timeout=10)


def deliver_once() -> int:
    """Send what is due; the number of rows handled (sent or postponed)."""
    done = 0
    while not _stop.is_set():
        d = claim_one()
        if d is None:
            return done
        done += 1
        try:
            send(d)
        except Exception as exc:  # any failure of SMTP or HTTP: try again later
            wait = min(timedelta(hours=1), timedelta(seconds=5 * 2**d.attempts))
            Delivery.objects.filter(pk=d.pk).update(
                attempts=d.attempts + 1,
                next_try_at=timezone.now() + wait,
                claimed_until=None,
                last_error=f"{type(exc).__name__}: {exc}"[:500],
            )
            log.warning("delivery %s to %s failed: %s", d.pk, d.target, exc)
        else:
            Delivery.objects.filter(pk=d.pk).update(sent_at=timezone.now(), attempts=d.attempts + 1)
    return done


SILENT_EVERY = number("RATEPAD_SILENT_CHECK_S", 30, 0.1, 86_400)  # between two looks


@dataclass
class Periodic:
    """A maintenance step the worker runs every ``every`` seconds (the first one at once)."""

    name: str
    every: float
    run: Callable[[], object]
    due: float = 0.0  # time.monotonic() of the next run


def _check_silent() -> None:
    from .engine import check_silent

    check_silent()


# the periodic steps of every worker, in order; a step that fails is logged and tried again
# at its next turn
def _partitions_ahead() -> None:
    from ..ingest.partitions import ensure_ahead

    ensure_ahead()  # PostgreSQL: next month's partitions exist long before its first upload


def _escalate_cases() -> None:
    from ..casework.service import escalate_overdue

    escalate_overdue()  # overdue cases of the loop to the parent node's managers


PERIODIC: list[Periodic] = [
    Periodic("silent agents", SILENT_EVERY, _check_silent),
    Periodic("overdue cases", 300.0, _escalate_cases),
    # first after 5 minutes: ``init`` made three months ahead, and a server that starts does
    # not wait on DDL
    Periodic("partitions ahead", 3600.0, _partitions_ahead, due=time.monotonic() + 300.0),
]


def run_once(*, every_step: bool = False) -> int:
    """One round: what is due is sent, the periodic steps that are due run (``every_step``:
    all of them, as ``sendalerts --once`` from cron does). The number of deliveries handled."""
    try:
        done = deliver_once()
        for step in PERIODIC:
            if (every_step or time.monotonic() >= step.due) and not _stop.is_set():
                step.due = time.monotonic() + step.every
                try:
                    step.run()
                except Exception as exc:
                    metrics.database_error("worker", exc)
                    log.warning("worker: %s: %s", step.name, exc)
        metrics.worker_round()
        return done
    finally:
        close_old_connections()


def run(interval: float = 1.0) -> None:
    """Rounds every ``interval`` seconds until ``stop`` (or ``request_stop``)."""
    while not _stop.wait(interval):
        try:
            run_once()
        except Exception as exc:  # the database away: the next round tries again
            metrics.database_error("worker", exc)
            log.warning("delivery worker: %s", exc)


def request_stop() -> None:
    """End ``run`` after the row it is sending (from a signal handler, any thread)."""
    _stop.set()


def start(interval: float = 1.0) -> None:
    global _thread
    if _thread is None:
        _stop.clear()
        _thread = threading.Thread(
            target=run, args=(interval,), name="ratepad-deliver", daemon=True
        )
        _thread.start()


def stop() -> None:
    global _thread
    _stop.set()
    if _thread is not None:
        _thread.join(10)
        _thread = None
