"""What a notification says, in the reader's language at render time. A notification's
stored ``text`` is written once, in one fixed wording per kind (the functions below write it;
``casework.service`` writes the overdue cases' one); the bell's page reads the kind and its
values back from that wording and says it in the reader's words, so that older rows render
too. A text of no known wording is shown as stored."""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _

from ..alerts.models import Alert

ASSIGNED = "assigned: "
_APPEAL = re.compile(r"申诉 appeal by (?P<staff>.*): (?P<rating>\S+#\d+), score (?P<score>\d+)$")
_DECIDED = re.compile(r"申诉(?:成立|驳回) (?P<decision>upheld|rejected): (?P<rating>\S+#\d+)"
                      r"(?: — (?P<note>.*))?$", re.S)  # fmt: skip
_OVERDUE = re.compile(r"逾期未办结 overdue case (?P<pk>\d+): (?P<rating>\S+#\d+) "
                      r"\((?P<branch>[^)]*)\), deadline (?P<deadline>\S+)$")  # fmt: skip


def assigned(alert: Alert) -> str:
    """The stored text of "an alert was assigned to you"."""
    return f"{ASSIGNED}{alert.summary}"[:500]


def appeal_filed(staff_id: str, serial: str, seq: int, score: int) -> str:
    """The stored text of "a staff member appealed a rating" (to its reviewers)."""
    return f"申诉 appeal by {staff_id}: {serial}#{seq}, score {score}"[:500]


def appeal_decided(upheld: bool, serial: str, seq: int, note: str) -> str:
    """The stored text of "your appeal was decided" (to the staff member)."""
    word = "申诉成立 upheld" if upheld else "申诉驳回 rejected"
    return (f"{word}: {serial}#{seq}" + (f" — {note}" if note else ""))[:500]


def text(stored: str, alert: Alert | None) -> str:
    """What the notification says to the reader (``stored``: its text; ``alert``: the alert it
    is about, if any)."""
    if alert is not None:
        if stored.startswith(ASSIGNED):
            return _("assigned to you: %(alert)s") % {"alert": alert.title()}
        return alert.title()
    values: dict[str, Any]
    if m := _APPEAL.match(stored):
        values = m.groupdict()
        return _("appeal by %(staff)s on rating %(rating)s (score %(score)s)") % values
    if m := _DECIDED.match(stored):
        values = m.groupdict()
        said = (_("your appeal on rating %(rating)s was upheld") if values["decision"] == "upheld"
                else _("your appeal on rating %(rating)s was rejected")) % values  # fmt: skip
        return f"{said} — {values['note']}" if values["note"] else said
    if m := _OVERDUE.match(stored):
        return (_("case %(pk)s is overdue: rating %(rating)s at %(branch)s, deadline "
                  "%(deadline)s") % m.groupdict())  # fmt: skip
    return stored
