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

* ``RATEPAD_ALERT_CAP`` (20): open live alerts per branch; past it, new ones fold into a
  digest rather than flooding the page.
* ``RATEPAD_OPENING_HOURS`` (``08:30-17:30``, local time) and ``RATEPAD_OPENING_DAYS``
  (``1-5``, ISO weekdays): when an offline keypad is worth an alert (``in_opening_hours``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone

from ratepad import metrics
from ratepad.flags import RatingFlags

from ..envconf import integer, parsed
from ..ingest.models import Rating
from ..live.feed import CHANNEL, feed
from ..org.models import Node, Role, Window
from ..reports.service import LEVEL_VALUES, TZ, share
from ..rollups.service import KPI_EXCLUDED
from .models import (
    ACKNOWLEDGED,
    LIFE,
    OPEN,
    RESOLVED,
    Alert,
    AlertEvent,
    AlertRating,
    Delivery,
    Notification,
    Rule,
    explain,
)
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


OPENING_DAYS = parsed("RATEPAD_OPENING_DAYS", "1-5", _days, "ISO weekdays such as 1-5 or 1,2,3")


class TransitionError(ValueError):
    """An action the alert's state does not allow."""


def add_working_days(start: date, days: int) -> date:
    """``days`` working days after ``start``, by the holiday calendar in the database (the
    statutory holidays and adjusted working weekends, ``casework.calendar``)."""
    from ..casework.calendar import add_working_days as by_calendar

    return by_calendar(start, days)


def in_opening_hours(when: datetime) -> bool:
    """Within ``RATEPAD_OPENING_HOURS`` on an opening day: one of ``RATEPAD_OPENING_DAYS``
    unless the holiday calendar (the one in the database, as for deadlines) makes it a
    holiday, or an adjusted working day (调休) the calendar lists."""
    from ..casework.calendar import exception_on

    local = when.astimezone(TZ)
    start, end = OPENING
    if not start <= local.time() < end:
        return False
    special = exception_on(local.date())
    return local.isoweekday() in OPENING_DAYS if special is None else special


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
    rules = Rule.objects.filter(active=True, deleted_at__isnull=True, node__path__in=prefixes)
    return _usable(rules.select_related("node"))


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


CAP = integer("RATEPAD_ALERT_CAP", 20, 1, 100_000)  # open live alerts per branch


@dataclass(frozen=True)
class Hit:
    """A rating an alert is about (folded into it, listed on it)."""

    serial: str
    journal_seq: int
    time: datetime
    score: int
    staff_id: str
    window_id: int | None


def _raise(
    rule: Rule,
    key: str,
    now: datetime,
    *,
    branch: Node,
    detail: dict[str, Any],
    hits: Sequence[Hit] = (),
    fold: bool = True,
    digest: bool = False,
    **fields: Any,
) -> Alert | None:
    """Create the alert, or fold into the one open under ``key`` (``fold``: its count grows by
    the hits, at least one, and its detail is the latest); notify only when it is created.
    A live alert beyond the branch's ``CAP`` open ones goes to the branch's over-cap digest
    for the rule instead. The new alert, or None."""
    weight = max(1, len(hits))
    if _fold(key, now, weight, detail, hits, fold):
        return None
    if not digest and _open_live(branch) >= CAP:
        over = {"what": "over_cap", "branch": branch.name, "cap": CAP}
        summary = f"{branch.code}: over the cap of {CAP}"
        return _raise(rule, f"c:{rule.pk}:{branch.pk}", now, branch=branch, detail=over,
                      hits=hits, digest=True, summary=summary)  # fmt: skip
    try:
        with transaction.atomic():  # a savepoint: a concurrent twin loses cleanly
            alert = Alert.objects.create(
                rule=rule,
                open_key=key,
                created_at=now,
                last_at=now,
                state=OPEN,
                branch=branch,
                digest=digest,
                count=weight,
                detail=detail,
                deadline=add_working_days(now.astimezone(TZ).date(), rule.deadline_days),
                **fields,
            )
    except IntegrityError:  # the twin's: fold into it
        _fold(key, now, weight, detail, hits, fold)
        return None
    _list(alert, hits)
    record_event(alert, "raised", None, count=weight, digest=digest)
    _notify_new(alert)
    return alert


def _open_live(branch: Node) -> int:
    return Alert.objects.filter(branch=branch, digest=False, state__in=(OPEN, ACKNOWLEDGED)).count()


def _fold(
    key: str, now: datetime, weight: int, detail: dict[str, Any], hits: Sequence[Hit], fold: bool
) -> bool:
    """Fold into the alert open under ``key``: True if there is one."""
    pk = Alert.objects.filter(open_key=key).values_list("pk", flat=True).first()
    if pk is None:
        return False
    if fold:
        Alert.objects.filter(pk=pk).update(count=F("count") + weight, last_at=now, detail=detail)
        _list(Alert(pk=pk), hits)
    return True


def _list(alert: Alert, hits: Sequence[Hit]) -> None:
    AlertRating.objects.bulk_create([
        AlertRating(alert=alert, serial=h.serial, journal_seq=h.journal_seq, time=h.time,
                    score=h.score, staff_id=h.staff_id, window_id=h.window_id)
        for h in hits
    ])  # fmt: skip


def record_event(
    alert: Alert, action: str, user: AbstractBaseUser | None, note: str = "", **data: Any
) -> None:
    """A line of the alert's history (shown on its page with the comments)."""
    actor = user.pk if user is not None else None
    AlertEvent.objects.create(alert=alert, at=timezone.now(), actor_id=actor, action=action,
                              note=note, data=data)  # fmt: skip


def _notify_new(alert: Alert) -> None:
    branch = alert.branch
    prefixes = [
        "/".join(branch.path.split("/")[: i + 1]) + "/" for i in range(1, branch.path.count("/"))
    ]
    users = list(Role.objects.filter(
        node__path__in=prefixes, role__in=[Role.ADMIN, Role.MANAGER]
    ).values_list("user_id", flat=True))  # fmt: skip
    Notification.objects.bulk_create(
        [Notification(user_id=u, alert=alert, text=alert.summary) for u in users]
    )
    body = alert_payload(alert)
    rule = alert.rule
    emails = [a.strip() for a in rule.emails.split(",") if a.strip()]
    for address in emails:
        _deliver(rule, Delivery.EMAIL, address, alert, body, f"[ratepad] {alert.summary}")
    if rule.webhook:
        _deliver(rule, Delivery.WEBHOOK, rule.webhook, alert, body, "")
    record_event(alert, "notified", None, users=len(users), emails=emails,
                 webhook=bool(rule.webhook), digest_minutes=rule.digest_minutes)  # fmt: skip
    event = {"kind": "alert", "rows": [{**body, "branch": branch.pk}]}
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:  # delivered at COMMIT to every instance
            cur.execute("SELECT pg_notify(%s, %s)", [CHANNEL, json.dumps(event)])
    else:
        transaction.on_commit(lambda: feed.publish_all([event]))


DIGEST_MARGIN = timedelta(seconds=10)  # a digest this close to its send time takes no more


def _deliver(
    rule: Rule, channel: str, target: str, alert: Alert, body: dict[str, Any], subject: str
) -> None:
    """One e-mail or webhook call per alert, or (the rule's ``digest_minutes``) the alert added
    to the rule's digest for that target, sent when its minutes are over."""
    now = timezone.now()
    if not rule.digest_minutes:
        Delivery.objects.create(channel=channel, target=target, alert=alert, subject=subject,
                                body=body, next_try_at=now)  # fmt: skip
        return
    pending = (
        Delivery.objects.select_for_update()
        .filter(
            channel=channel,
            target=target,
            digest=True,
            sent_at__isnull=True,
            claimed_until__isnull=True,
            attempts=0,
            next_try_at__gt=now + DIGEST_MARGIN,
            body__rule_id=rule.pk,
        )
        .order_by("next_try_at")
        .first()
    )
    if pending is not None:
        alerts = [*pending.body.get("alerts", []), body]
        pending.body = {**pending.body, "alerts": alerts}
        pending.subject = f"[ratepad] {rule.name}: {len(alerts)} alerts"
        pending.save(update_fields=["body", "subject"])
        return
    Delivery.objects.create(
        channel=channel, target=target, alert=alert, digest=True,
        subject=f"[ratepad] {rule.name}: 1 alert",
        body={"digest": True, "rule": rule.name, "rule_id": rule.pk, "alerts": [body]},
        next_try_at=now + timedelta(minutes=rule.digest_minutes),
    )  # fmt: skip


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
        "count": alert.count,
        "digest": alert.digest,
        "detail": alert.detail,
        "deadline": alert.deadline.isoformat(),
        "created_at": alert.created_at.isoformat(),
    }


def on_batch(
    *,
    branch_id: int,
    ratings: Sequence[Sequence[Any]],
    devices: Sequence[tuple[Any, datetime]],
    **kwargs: Any,
) -> None:
    """The receiver of ``batch_stored`` (rows in ``ingest.service.RATING_COLUMNS`` order)."""
    branch = Node.objects.get(pk=branch_id)
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

    # the bad ratings of each rating rule, by where they fold: (rule, window) while live,
    # (rule, branch) for those older than the rule's minutes (a backlog arriving late)
    live: dict[tuple[int, int], list[Hit]] = {}
    late: dict[int, list[Hit]] = {}
    rating_rules = [rule for rule in rules if rule.kind == Rule.LOW_RATING]
    for r in ratings:
        serial, seq, when, score, flags, wid, staff = r[0], r[1], r[4], r[6], r[11], r[12], r[9]
        if wid is None:
            continue
        touched.add(int(wid))
        if int(flags) & KPI_EXCLUDED:
            continue
        for rule in rating_rules:
            if int(score) <= rule.level:
                hit = Hit(str(serial), int(seq), when, int(score), str(staff or ""), int(wid))
                if when < now - timedelta(minutes=rule.minutes):
                    late.setdefault(rule.pk, []).append(hit)
                else:
                    live.setdefault((rule.pk, int(wid)), []).append(hit)
    by_pk = {rule.pk: rule for rule in rules}
    for (rule_pk, wid), hits in live.items():
        rule, w, last = by_pk[rule_pk], window(wid), max(hits, key=lambda h: h.time)
        detail = {"what": "low_rating", "level": rule.level, "window": w.name,
                  "window_code": w.code, "score": last.score}  # fmt: skip
        _raise(rule, f"r:{rule.pk}:{wid}", now, branch=branch, detail=detail, hits=hits,
               window=w, serial=last.serial, journal_seq=last.journal_seq,
               staff_id=last.staff_id, value=float(last.score),
               summary=f"{w.code} {last.staff_id or '-'}: score {last.score} at "
                       f"{last.time.astimezone(TZ):%Y-%m-%d %H:%M}")  # fmt: skip
    for rule_pk, hits in late.items():
        rule = by_pk[rule_pk]
        detail = {"what": "backlog", "minutes": rule.minutes, "branch": branch.name,
                  "level": rule.level}  # fmt: skip
        oldest = min(h.time for h in hits)
        _raise(rule, f"b:{rule.pk}:{branch.pk}", now, branch=branch, detail=detail, hits=hits,
               digest=True, summary=f"{branch.code}: late ratings ≤ {rule.level} since "
                                    f"{oldest.astimezone(TZ):%Y-%m-%d %H:%M}")  # fmt: skip
    for rule in rules:
        if rule.kind in (Rule.BAD_SHARE, Rule.LOW_INDEX, Rule.UNPROMPTED):
            for wid in sorted(touched):
                _window_rule(rule, window(wid), branch, now)
    for d, at in devices:
        if d.connected or not in_opening_hours(at):
            continue
        for rule in rules:
            if rule.kind == Rule.OFFLINE:
                time_text = f"{at.astimezone(TZ):%H:%M}"
                _raise(rule, f"d:{rule.pk}:{d.serial}", now, branch=branch, serial=d.serial,
                       detail={"what": "offline", "serial": d.serial, "time": time_text},
                       summary=f"{d.serial}: keypad offline at {time_text}")  # fmt: skip


def check_silent(now: datetime | None = None) -> int:
    """Raise ``offline`` alerts for bound keypads whose agent has not been heard from for the
    rule's ``minutes``, during opening hours; the number of alerts raised."""
    from ..ingest.models import Device

    now = now or timezone.now()
    if not in_opening_hours(now):
        return 0
    raised = 0
    rules = Rule.objects.filter(kind=Rule.OFFLINE, active=True, deleted_at__isnull=True)
    for rule in _usable(rules.select_related("node")):
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
                fold=False,  # looked at every few seconds: the same silence, not a repeat
                detail={"what": "silent", "serial": d.serial, "time": when},
                summary=f"{d.serial}: no word from its agent since {when}",
            )
            raised += alert is not None
    return raised


def window_verdict(
    rule: Rule, rows: Sequence[tuple[int, int]]
) -> tuple[bool, float, int, dict[str, Any]] | None:
    """A window rule over ``rows`` ((score, flags) of the window's last ``minutes``): None
    below ``min_n``, else (hit, value, n, detail). Also the rules page's preview."""
    counted = [(s, f) for s, f in rows if not f & KPI_EXCLUDED]
    n = len(counted)
    detail: dict[str, Any] = {"what": rule.kind, "minutes": rule.minutes}
    if rule.kind == Rule.UNPROMPTED:
        n = len(rows)
        if n < rule.min_n:
            return None
        k = sum(1 for _, f in rows if f & RatingFlags.UNPROMPTED)
        value = share(k, n)
        detail.update(k=k, n=n, share=value, threshold=rule.threshold)
        return value > rule.threshold, value, n, detail
    if n < rule.min_n:
        return None
    if rule.kind == Rule.BAD_SHARE:
        k = sum(1 for s, _ in counted if s <= rule.level)
        value = share(k, n)
        detail.update(k=k, n=n, level=rule.level, share=value, threshold=rule.threshold)
        return value > rule.threshold, value, n, detail
    counts: dict[int, int] = {}
    for s, _ in counted:
        counts[s] = counts.get(s, 0) + 1
    value = metrics.level_index(counts, LEVEL_VALUES)
    detail.update(n=n, index=value, threshold=rule.threshold)
    return value < rule.threshold, value, n, detail


def _window_rule(rule: Rule, window: Window, branch: Node, now: datetime) -> None:
    since = now - timedelta(minutes=rule.minutes)
    rows = list(
        Rating.objects.filter(window_id=window.pk, time__gte=since).values_list("score", "flags")
    )
    verdict = window_verdict(rule, rows)
    if verdict is None or not verdict[0]:
        return
    _, value, n, detail = verdict
    detail.update(window=window.name, window_code=window.code)
    what = explain(detail)
    _raise(rule, f"w:{rule.pk}:{window.pk}", now, branch=branch, window=window, value=value,
           n=n, detail=detail, summary=f"{window.code}: {what}"[:500])  # fmt: skip


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
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, state=alert.state).update(**fields)
        if changed != 1:
            raise TransitionError("the alert was changed meanwhile: reload it")
        record_event(alert, action, user, note, state=nxt)
    alert.refresh_from_db()
    return alert
