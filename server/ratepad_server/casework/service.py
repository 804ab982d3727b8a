"""Cases: opened as bad ratings arrive (inside the ingest transaction, ``open_cases``), moved
step by step (``do_step``), escalated when overdue (``escalate_overdue``, a periodic step of
the alert worker), counted per month (``loop_report``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from ..alerts.engine import record_event
from ..alerts.models import ACKNOWLEDGED, OPEN, AlertRating, Notification
from ..audit.log import record
from ..org.models import Node, Role, Window
from ..reports.service import TZ
from ..rollups.service import KPI_EXCLUDED
from .calendar import add_working_days
from .models import ANSWER, CLOSE, CLOSED, LIFE, RECTIFY, VERIFY, Case, Step
from .policy import local_date, policy_for

ESCALATE = "escalate"
MAX_NOTE = 5000


class StepError(ValueError):
    """A step the case's state does not allow, or a step without what it must record."""


def open_cases(*, branch_id: int, ratings: Sequence[Sequence[Any]], **kwargs: Any) -> int:
    """The receiver of ``batch_stored`` (rows in ``ingest.service.RATING_COLUMNS`` order): a
    case for each newly stored rating at or below the branch's case level that counts in the
    KPIs (a repeat or a stuck key is no customer's verdict). Its deadline counts from today,
    the day the server learned of it (a backlog of old ratings gets the time it needs)."""
    branch = Node.objects.get(pk=branch_id)
    policy = policy_for(branch)
    bad = [r for r in ratings
           if r[12] is not None and not int(r[11]) & KPI_EXCLUDED
           and int(r[6]) <= policy.case_level]  # fmt: skip
    if not bad:
        return 0
    now = timezone.now()
    deadline = add_working_days(local_date(now), policy.case_days)
    # the alerts this batch raised or folded the ratings into (the alerts' receiver ran first):
    # among the branch's unresolved alerts, a bounded set (the alerts' cap per branch)
    alerts = {
        (s, q): pk
        for s, q, pk in AlertRating.objects.filter(
            alert__branch=branch, alert__state__in=(OPEN, ACKNOWLEDGED),
            serial__in={r[0] for r in bad}, journal_seq__in={r[1] for r in bad},
        ).values_list("serial", "journal_seq", "alert_id")
    }  # fmt: skip
    Case.objects.bulk_create(
        [Case(serial=r[0], journal_seq=r[1], rating_time=r[4], score=r[6], staff_id=r[9] or "",
              window_id=r[12], branch=branch, alert_id=alerts.get((r[0], r[1])),
              opened_at=now, deadline=deadline) for r in bad],
        ignore_conflicts=True,  # a rating has one case however often it is stored
    )  # fmt: skip
    return len(bad)


@dataclass
class StepInput:
    note: str = ""
    genuine: bool | None = None
    contacted: bool | None = None
    channel: str = ""


def do_step(case: Case, step: str, user: User, given: StepInput) -> Case:
    """Record ``step`` on ``case`` and move it on, atomically (two people doing the same step
    at once: one of them is told the case changed)."""
    note = given.note.strip()[:MAX_NOTE]
    if case.state != step:
        raise StepError(_("This case waits for another step: reload it."))
    fields: dict[str, Any] = {"state": LIFE[step]}
    row = Step(case=case, step=step, by=user, note=note)
    now = timezone.now()
    if step == VERIFY:
        if given.genuine is None:
            raise StepError(_("Say whether the rating is genuine."))
        row.genuine = fields["genuine"] = given.genuine
        if not given.genuine:
            fields["state"] = CLOSE  # nothing to rectify, nobody to answer
            if not note:
                raise StepError(_("Say why the rating is not genuine."))
    elif step == RECTIFY and not note:
        raise StepError(_("Say what was done."))
    elif step == ANSWER:
        if given.contacted is None:
            raise StepError(_("Say whether the customer was contacted."))
        row.contacted = given.contacted
        if given.contacted and given.channel not in dict(Step.CHANNELS):
            raise StepError(_("Say how the customer was contacted."))
        if not given.contacted and not note:
            raise StepError(_("Say why the customer was not contacted."))
        row.channel = given.channel if given.contacted else ""
    elif step == CLOSE:
        fields.update(closed_at=now, on_time=local_date(now) <= case.deadline)
    with transaction.atomic():
        if Case.objects.filter(pk=case.pk, state=case.state).update(**fields) != 1:
            raise StepError(_("The case was changed meanwhile: reload it."))
        row.at = now
        row.save()
        alert = case.alert
        if alert is not None:  # the step in the alert's history too
            record_event(alert, f"case.{step}", user, note, case=case.pk)
    case.refresh_from_db()
    return case


def _escalation_target(branch: Node) -> tuple[Node | None, list[int]]:
    """The nearest node above ``branch`` that has managers, and their user ids (no manager
    anywhere above: its parent, nobody to tell)."""
    node = branch.parent
    while node is not None:
        managers = list(Role.objects.filter(node=node, role=Role.MANAGER)
                        .values_list("user_id", flat=True))  # fmt: skip
        if managers:
            return node, managers
        node = node.parent
    return branch.parent, []


def escalate_overdue(now: datetime | None = None, limit: int = 1000) -> int:
    """Hand every case past its deadline and not closed to the managers of the node above its
    branch (once per case; a notification each, a step and an audit entry); how many."""
    now = now or timezone.now()
    due = (Case.objects.filter(escalated_at__isnull=True, deadline__lt=local_date(now))
           .exclude(state=CLOSED).select_related("branch")[:limit])  # fmt: skip
    done = 0
    for case in due:
        target, managers = _escalation_target(case.branch)
        with transaction.atomic():
            if (
                Case.objects.filter(pk=case.pk, escalated_at__isnull=True).update(
                    escalated_at=now, escalated_to=target
                )
                != 1
            ):
                continue  # another instance's worker was quicker
            where = target.code if target else "-"
            Step.objects.create(case=case, step=ESCALATE, at=now,
                                note=f"overdue since {case.deadline}: to {where}")  # fmt: skip
            text = (f"逾期未办结 overdue case {case.pk}: {case.serial}#{case.journal_seq} "
                    f"({case.branch.code}), deadline {case.deadline}")  # fmt: skip
            link = reverse("web:case", args=[case.pk])
            Notification.objects.bulk_create(
                [Notification(user_id=u, text=text, link=link) for u in managers]
            )
            record(None, "case.escalate", case, username="(worker)", node_path=case.branch.path,
                   to=where, deadline=case.deadline.isoformat())  # fmt: skip
        done += 1
    return done


# -- the monthly loop report ----------------------------------------------------------------------
COUNTS = ("opened", "closed", "on_time", "overdue", "escalated", "not_genuine")


@dataclass
class LoopRow:
    code: str
    name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))

    @property
    def on_time_rate(self) -> float | None:
        """Of the cases whose outcome is known (closed, or open past their deadline), the
        share closed by the deadline."""
        known = self.counts["closed"] + self.counts["overdue"]
        return self.counts["on_time"] / known if known else None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, **self.counts,
                "on_time_rate": self.on_time_rate}  # fmt: skip


def month_bounds(first: date) -> tuple[datetime, datetime]:
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime.combine(first, time(), TZ), datetime.combine(nxt, time(), TZ)


def loop_report(node: Node, first: date, today: date | None = None) -> dict[str, Any]:
    """The cases opened in the month starting ``first`` in ``node``'s subtree: the counts in
    all and per child node (a branch: per window)."""
    today = today or local_date(timezone.now())
    since, until = month_bounds(first)
    by = "window_id" if not node.children.exists() else "branch_id"
    rows = (Case.objects.filter(branch__path__startswith=node.path, opened_at__gte=since,
                                opened_at__lt=until)
            .values(by).annotate(
                opened=Count("id"),
                closed=Count("id", filter=Q(state=CLOSED)),
                on_time=Count("id", filter=Q(on_time=True)),
                overdue=Count("id", filter=~Q(state=CLOSED) & Q(deadline__lt=today)),
                escalated=Count("id", filter=Q(escalated_at__isnull=False)),
                not_genuine=Count("id", filter=Q(genuine=False)),
            ).order_by(by))  # fmt: skip
    total = LoopRow(node.code, node.name)
    groups: dict[str, LoopRow] = {}
    if by == "window_id":
        for w in Window.objects.filter(branch=node).order_by("code"):
            groups[str(w.pk)] = LoopRow(w.code, w.name)
        key_of = {k: k for k in groups}
    else:
        for child in node.children.order_by("code"):
            groups[child.path] = LoopRow(child.code, child.name)
        depth = node.path.count("/")
        paths = dict(Node.objects.filter(pk__in=[r[by] for r in rows]).values_list("pk", "path"))
        key_of = {str(pk): "/".join(p.split("/")[: depth + 1]) + "/" for pk, p in paths.items()}
    for r in rows:
        group = groups.get(key_of.get(str(r[by]), ""))
        for name in COUNTS:
            total.counts[name] += r[name]
            if group is not None:
                group.counts[name] += r[name]
    return {"node": node.code, "name": node.name, "month": f"{first:%Y-%m}",
            "total": total.as_dict(), "rows": [g.as_dict() for g in groups.values()]}  # fmt: skip
