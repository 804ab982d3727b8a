"""What a person reads for each audit action and each detail field, translated: the one place
the server maps an action's identifier (``alert.acknowledge``, stored in the log and matched
by the login throttle) to words. The audit page shows ``label``; the identifiers stay in the
database and in the page's markup (``data-action``) for scripts and searches."""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

ACTIONS: dict[str, Promise] = {
    "login": pgettext_lazy("audit action", "logged in"),
    "logout": pgettext_lazy("audit action", "logged out"),
    "login.failed": pgettext_lazy("audit action", "login failed"),
    "login.throttled": pgettext_lazy("audit action", "login refused: too many failures"),
    "password.change": pgettext_lazy("audit action", "password changed"),
    "password.reset": pgettext_lazy("audit action", "password reset"),
    "token.revoke": pgettext_lazy("audit action", "API token revoked"),
    "agent_key.enroll": pgettext_lazy("audit action", "agent key issued"),
    "agent_key.revoke": pgettext_lazy("audit action", "agent key revoked"),
    "agent_key.rotate": pgettext_lazy("audit action", "agent key replaced"),
    "alert.acknowledge": pgettext_lazy("audit action", "alert acknowledged"),
    "alert.assign": pgettext_lazy("audit action", "alert assigned"),
    "alert.resolve": pgettext_lazy("audit action", "alert resolved"),
    "alert.comment": pgettext_lazy("audit action", "alert commented"),
    "rule.create": pgettext_lazy("audit action", "alert rule created"),
    "rule.edit": pgettext_lazy("audit action", "alert rule changed"),
    "rule.toggle": pgettext_lazy("audit action", "alert rule switched on or off"),
    "rule.delete": pgettext_lazy("audit action", "alert rule deleted"),
    "appeal.create": pgettext_lazy("audit action", "appeal filed"),
    "appeal.upheld": pgettext_lazy("audit action", "appeal upheld"),
    "appeal.rejected": pgettext_lazy("audit action", "appeal rejected"),
    "case.verify": pgettext_lazy("audit action", "case verified"),
    "case.rectify": pgettext_lazy("audit action", "case rectified"),
    "case.answer": pgettext_lazy("audit action", "customer answered"),
    "case.close": pgettext_lazy("audit action", "case closed"),
    "case.escalate": pgettext_lazy("audit action", "case escalated"),
    "holidays.load": pgettext_lazy("audit action", "holiday calendar loaded"),
    "holidays.set": pgettext_lazy("audit action", "calendar day set"),
    "holidays.remove": pgettext_lazy("audit action", "calendar day removed"),
    "loop_policy.set": pgettext_lazy("audit action", "loop rules set"),
    "loop_policy.remove": pgettext_lazy("audit action", "loop rules removed"),
    "export.report": pgettext_lazy("audit action", "report exported"),
    "export.ratings": pgettext_lazy("audit action", "ratings exported"),
    "export.monthly_pdf": pgettext_lazy("audit action", "monthly report downloaded"),
    "export.survey": pgettext_lazy("audit action", "survey results exported"),
    "export.returnvisits": pgettext_lazy("audit action", "return visits exported"),
    "survey.analyse": pgettext_lazy("audit action", "survey file checked"),
    "survey.import": pgettext_lazy("audit action", "survey imported"),
    "returnvisit.create": pgettext_lazy("audit action", "return visit recorded"),
}

# the names of the details ``record`` keeps with an entry (``record(..., note=...)``)
FIELDS: dict[str, Promise] = {
    "note": pgettext_lazy("audit detail", "note"),
    "assignee": pgettext_lazy("audit detail", "assignee"),
    "serial": pgettext_lazy("audit detail", "keypad"),
    "seq": pgettext_lazy("audit detail", "rating no."),
    "code": pgettext_lazy("audit detail", "node"),
    "node": pgettext_lazy("audit detail", "node"),
    "branch": pgettext_lazy("audit detail", "branch"),
    "format": pgettext_lazy("audit detail", "format"),
    "month": pgettext_lazy("audit detail", "month"),
    "kind": pgettext_lazy("audit detail", "kind"),
    "rule": pgettext_lazy("audit detail", "rule"),
    "changed": pgettext_lazy("audit detail", "changed"),
    "active": pgettext_lazy("audit detail", "on"),
    "name": pgettext_lazy("audit detail", "name"),
    "file": pgettext_lazy("audit detail", "file"),
    "added": pgettext_lazy("audit detail", "added"),
    "day": pgettext_lazy("audit detail", "day"),
    "working": pgettext_lazy("audit detail", "working day"),
    "target": pgettext_lazy("audit detail", "user"),
    "owner": pgettext_lazy("audit detail", "owner"),
    "why": pgettext_lazy("audit detail", "reason"),
    "to": pgettext_lazy("audit detail", "to"),
    "deadline": pgettext_lazy("audit detail", "deadline"),
    "genuine": pgettext_lazy("audit detail", "genuine"),
    "contacted": pgettext_lazy("audit detail", "customer reached"),
    "channel": pgettext_lazy("audit detail", "channel"),
    "outcome": pgettext_lazy("audit detail", "outcome"),
    "respondents": pgettext_lazy("audit detail", "respondents"),
    "new_key_id": pgettext_lazy("audit detail", "new key"),
    "revoked_at": pgettext_lazy("audit detail", "revoked at"),
    # a rule's fields (``rule.edit``'s ``changed``, ``rule.delete``'s ``rule``)
    "node_id": pgettext_lazy("audit detail", "node no."),
    "emails": pgettext_lazy("audit detail", "e-mail to"),
    "webhook": pgettext_lazy("audit detail", "webhook"),
    "level": pgettext_lazy("audit detail", "level"),
    "threshold": pgettext_lazy("audit detail", "threshold"),
    "min_n": pgettext_lazy("audit detail", "minimum n"),
    "minutes": pgettext_lazy("audit detail", "minutes"),
    "deadline_days": pgettext_lazy("audit detail", "deadline (working days)"),
    "digest_minutes": pgettext_lazy("audit detail", "digest minutes"),
}


def label(action: str) -> str:
    """The translated words of ``action`` (the identifier itself if it has none)."""
    lazy = ACTIONS.get(action)
    return str(lazy) if lazy is not None else action


def details(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """An entry's details as (translated name, value) pairs, in the order they were kept;
    yes/no for booleans, a dash for nothing."""
    return [(field(key), _value(value)) for key, value in detail.items()]


def field(name: str) -> str:
    """The translated name of a detail (the name itself if it has none)."""
    lazy = FIELDS.get(name)
    return str(lazy) if lazy is not None else name


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value is None or value == "":
        return "–"
    if isinstance(value, dict):  # a rule's fields, or what an edit changed (before, after)
        return "; ".join(f"{field(k)} {_value(v)}" for k, v in value.items())
    if isinstance(value, list) and len(value) == 2:
        return f"{_value(value[0])} → {_value(value[1])}"
    return str(value)
