"""Evaluating the rules as ratings and device states arrive, inside the ingest transaction
(``ingest.service.batch_stored``), and the alert's closed loop.

Rules of the table:
* ``low_rating``: one alert per rating at or below ``level`` (ratings kept out of the KPIs,
  repeats, several keys, stuck keys, do not alert).
* ``bad_share`` / ``low_index`` / ``unprompted``: over the last ``minutes`` of the window's
  ratings, at least ``min_n`` of them; one open alert per (rule, window) at a time.
* ``offline``: during opening hours, a keypad reported disconnected, or its agent silent for
  ``minutes`` (agents send a heartbeat every minute; ``check_silent`` runs in every server
  instance's worker); one open alert per keypad.
An alert is created at most once: ``open_key`` is unique while it is open, and a second
instance evaluating the same batch (a replay) finds it there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone

from ratepad import metrics
from ratepad.flags import RatingFlags

from ..envconf import parsed
from ..ingest.models import Rating
from ..live.feed import CHANNEL, feed
from ..org.models import Node, Role, Window
from ..reports.service import LEVEL_VALUES, TZ, share
from ..rollups.service import KPI_EXCLUDED
from .models import ACKNOWLEDGED, LIFE, OPEN, RESOLVED, Alert, Delivery, Notification, Rule
from .webhooks import check_url


def _hours(text: str) -> tuple[time, time]:
    lo, _, hi = text.partition("-")
    start, end = time.fromisoformat(lo.strip()), time.fromisoformat(hi.strip())
    if not start < end:
        raise ValueError(text)
    return start, end


OPENING = parsed("RATEPAD_OPENING_HOURS", "08:30-17:30", _hours, "HH:MM-HH:MM")  # local time
log = logging.getLogger(__name__)


def _days(text: str) -> frozenset[int]:
    """``1-5`` (Monday to Friday, the default), ``1-6`` or ``1,2,3,4,5,7``: ISO weekdays."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    if not out or not out <= set(range(1, 8)):
        raise ValueError(text)
    return frozenset(out)


def _dates(text: str) -> frozenset[date]:
    return frozenset(date.fromisoformat(d.strip()) for d in text.split(",") if d.strip())


OPENING_DAYS = parsed("RATEPAD_OPENING_DAYS", "1-5", _days, "ISO weekdays such as 1-5 or 1,2,3")
HOLIDAYS = parsed("RATEPAD_HOLIDAYS", "", _dates, "dates YYYY-MM-DD, comma-separated")


class TransitionError(ValueError):
    """An action the alert's state does not allow."""


def add_working_days(start: date, days: int) -> date:
    """``days`` working days after ``start``, by the holiday calendar in the database (the
    statutory holidays and adjusted working weekends, ``casework.calendar``)."""
    from ..casework.calendar import add_working_days as by_calendar

    return by_calendar(start, days)


def in_opening_hours(when: datetime) -> bool:
    local = when.astimezone(TZ)
    start, end = OPENING
    return (
        local.isoweekday() in OPENING_DAYS
        and local.date() not in HOLIDAYS
        and start <= local.time() < end
    )


@receiver(pre_save, sender=Rule, dispatch_uid="ratepad-rule-webhook")
def _check_webhook(sender: type[Rule], instance: Rule, **kwargs: Any) -> None:
    """A rule is saved only with a webhook the allowlist admits (``WebhookRefused``, a
    ValueError, says why); the worker checks again at every send."""
    if instance.webhook:
        check_url(instance.webhook)


def _rules_for(branch: Node) -> list[Rule]:
    prefixes = [
        "/".join(branch.path.split("/")[: i + 1]) + "/" for i in range(1, branch.path.count("/"))
    ]
    rules = Rule.objects.filter(active=True, node__path__in=prefixes).select_related("node")
    return _usable(rules)


def _usable(rules: Iterable[Rule]) -> list[Rule]:
    """The rules whose parameters are within their bounds; any other (a row written past the
    form and the database's constraints) is switched off, with the reason in the log, rather
    than failing every upload of its subtree."""
    out = []
    for rule in rules:
        problems = rule.problems()
        if not problems:
            out.append(rule)
            continue
        log.error("alert rule %s (%s) switched off: %s", rule.pk, rule.name, "; ".join(problems))
        Rule.objects.filter(pk=rule.pk).update(active=False)
    return out


def _raise(rule: Rule, key: str, now: datetime, **fields: Any) -> Alert | None:
    """Create the alert unless one is open under ``key``; notify in the same transaction."""
    if Alert.objects.filter(open_key=key).exists():
        return None
    try:
        with transaction.atomic():  # a savepoint: a concurrent twin loses cleanly
            alert = Alert.objects.create(
                rule=rule,
                open_key=key,
                created_at=now,
                state=OPEN,
                deadline=add_working_days(now.astimezone(TZ).date(), rule.deadline_days),
                **fields,
            )
    except IntegrityError:
        return None
    _notify_new(alert)
    return alert


def _notify_new(alert: Alert) -> None:
    branch = alert.branch
    prefixes = [
        "/".join(branch.path.split("/")[: i + 1]) + "/" for i in range(1, branch.path.count("/"))
    ]
    users = Role.objects.filter(
        node__path__in=prefixes, role__in=[Role.ADMIN, Role.MANAGER]
    ).values_list("user_id", flat=True)
    Notification.objects.bulk_create(
        [Notification(user_id=u, alert=alert, text=alert.summary) for u in users]
    )
    now = timezone.now()
    body = alert_payload(alert)
    for address in [a.strip() for a in alert.rule.emails.split(",") if a.strip()]:
        Delivery.objects.create(
            channel=Delivery.EMAIL,
            target=address,
            alert=alert,
            subject=f"[ratepad] {alert.summary}",
            body=body,
            next_try_at=now,
        )
    if alert.rule.webhook:
        Delivery.objects.create(
            channel=Delivery.WEBHOOK,
            target=alert.rule.webhook,
            alert=alert,
            body=body,
            next_try_at=now,
        )
    event = {"kind": "alert", "rows": [{**body, "branch": branch.pk}]}
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:  # delivered at COMMIT to every instance
            cur.execute("SELECT pg_notify(%s, %s)", [CHANNEL, json.dumps(event)])
    else:
        transaction.on_commit(lambda: feed.publish_all([event]))


def alert_payload(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "rule": alert.rule.name,
        "kind": alert.rule.kind,
        "state": alert.state,
        "summary": alert.summary,
        "branch_code": alert.branch.code,
        "window": alert.window.code if alert.window_id and alert.window else None,
        "staff_id": alert.staff_id,
        "serial": alert.serial,
        "journal_seq": alert.journal_seq,
        "value": alert.value,
        "n": alert.n,
        "deadline": alert.deadline.isoformat(),
        "created_at": alert.created_at.isoformat(),
    }


def on_batch(
    *,
    agent: Any,
    ratings: Sequence[Sequence[Any]],
    devices: Sequence[tuple[Any, datetime]],
    **kwargs: Any,
) -> None:
    """The receiver of ``batch_stored`` (rows in ``ingest.service.RATING_COLUMNS`` order)."""
    branch = Node.objects.get(pk=agent.branch_id)
    rules = _rules_for(branch)
    if not rules:
        return
    now = timezone.now()
    windows: dict[int, Window] = {}
    touched: set[int] = set()

    def window(wid: int) -> Window:
        if wid not in windows:
            windows[wid] = Window.objects.get(pk=wid)
        return windows[wid]

    for r in ratings:
        serial, seq, when, score, flags, wid, staff = r[0], r[1], r[4], r[6], r[11], r[12], r[9]
        if wid is None:
            continue
        touched.add(int(wid))
        if int(flags) & KPI_EXCLUDED:
            continue
        for rule in rules:
            if rule.kind == Rule.LOW_RATING and int(score) <= rule.level:
                w = window(int(wid))
                _raise(
                    rule,
                    f"r:{rule.pk}:{serial}:{seq}",
                    now,
                    branch=branch,
                    window=w,
                    serial=serial,
                    journal_seq=seq,
                    staff_id=staff,
                    value=float(score),
                    summary=f"{w.code} {staff or '-'}: score {score} at "
                    f"{when.astimezone(TZ):%Y-%m-%d %H:%M}",
                )
    for rule in rules:
        if rule.kind in (Rule.BAD_SHARE, Rule.LOW_INDEX, Rule.UNPROMPTED):
            for wid in sorted(touched):
                _window_rule(rule, window(wid), branch, now)
    for d, at in devices:
        if d.connected or not in_opening_hours(at):
            continue
        for rule in rules:
            if rule.kind == Rule.OFFLINE:
                _raise(
                    rule,
                    f"d:{rule.pk}:{d.serial}",
                    now,
                    branch=branch,
                    serial=d.serial,
                    summary=f"{d.serial}: keypad offline at {at.astimezone(TZ):%H:%M}",
                )


def check_silent(now: datetime | None = None) -> int:
    """Raise ``offline`` alerts for bound keypads whose agent has not been heard from for the
    rule's ``minutes``, during opening hours; the number of alerts raised."""
    from ..ingest.models import Device

    now = now or timezone.now()
    if not in_opening_hours(now):
        return 0
    raised = 0
    for rule in _usable(Rule.objects.filter(kind=Rule.OFFLINE, active=True).select_related("node")):
        quiet = Device.objects.filter(
            branch__path__startswith=rule.node.path,
            window__isnull=False,
            agent__last_upload_at__lt=now - timedelta(minutes=rule.minutes),
        ).select_related("branch", "agent", "window")
        for d in quiet:
            seen = d.agent.last_upload_at if d.agent else None
            when = f"{seen.astimezone(TZ):%Y-%m-%d %H:%M}" if seen else "-"
            alert = _raise(
                rule,
                f"d:{rule.pk}:{d.serial}",
                now,
                branch=d.branch,
                window=d.window,
                serial=d.serial,
                summary=f"{d.serial}: no word from its agent since {when}",
            )
            raised += alert is not None
    return raised


def _window_rule(rule: Rule, window: Window, branch: Node, now: datetime) -> None:
    since = now - timedelta(minutes=rule.minutes)
    rows = list(
        Rating.objects.filter(window_id=window.pk, time__gte=since).values_list("score", "flags")
    )
    counted = [(s, f) for s, f in rows if not f & KPI_EXCLUDED]
    n = len(counted)
    if rule.kind == Rule.UNPROMPTED:
        n = len(rows)
        if n < rule.min_n:
            return
        k = sum(1 for _, f in rows if f & RatingFlags.UNPROMPTED)
        value = share(k, n)
        hit = value > rule.threshold
        what = f"{value:.0%} of {n} ratings without a prompt"
    elif n < rule.min_n:
        return
    elif rule.kind == Rule.BAD_SHARE:
        value = share(sum(1 for s, _ in counted if s <= rule.level), n)
        hit = value > rule.threshold
        what = f"{value:.0%} of {n} ratings at or below {rule.level}"
    else:
        counts: dict[int, int] = {}
        for s, _ in counted:
            counts[s] = counts.get(s, 0) + 1
        value = metrics.level_index(counts, LEVEL_VALUES)
        hit = value < rule.threshold
        what = f"index {value:.1f} over {n} ratings"
    if hit:
        _raise(
            rule,
            f"w:{rule.pk}:{window.pk}",
            now,
            branch=branch,
            window=window,
            value=value,
            n=n,
            summary=f"{window.code}: {what} in {rule.minutes} min",
        )


# -- the closed loop -----------------------------------------------------------------------------
def transition(alert: Alert, action: str, user: AbstractBaseUser, note: str = "") -> Alert:
    """Move ``alert`` by ``action`` (acknowledge, resolve), atomically: two managers clicking
    at once move it once."""
    nxt = LIFE.get(alert.state, {}).get(action)
    if nxt is None:
        raise TransitionError(f"an alert that is {alert.state} cannot be {action}d")
    now = timezone.now()
    fields: dict[str, Any] = {"state": nxt}
    if nxt == ACKNOWLEDGED:
        fields.update(acknowledged_at=now, acknowledged_by=user)
    if nxt == RESOLVED:
        fields.update(resolved_at=now, resolved_by=user, resolution=note, open_key=None)
        if alert.acknowledged_at is None:
            fields.update(acknowledged_at=now, acknowledged_by=user)
    changed = Alert.objects.filter(pk=alert.pk, state=alert.state).update(**fields)
    if changed != 1:
        raise TransitionError("the alert was changed meanwhile: reload it")
    alert.refresh_from_db()
    return alert
