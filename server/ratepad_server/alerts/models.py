"""Alert rules, alerts and their closed loop, appeals, notifications and outgoing deliveries.

An alert's life: open → acknowledged → resolved (``LIFE`` below is the whole table; any other
move is refused). ``open_key`` is unique while the alert is not resolved, so that a rule raises
one alert per rating or per window however many server instances evaluate it at once.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..org.models import Node, Window

USER = settings.AUTH_USER_MODEL

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
# state → {action: next state}
LIFE: dict[str, dict[str, str]] = {
    OPEN: {"acknowledge": ACKNOWLEDGED, "resolve": RESOLVED},
    ACKNOWLEDGED: {"resolve": RESOLVED},
    RESOLVED: {},
}


# A rule's parameters are bounded: the form refuses a value outside (with the reason), the
# database's CHECK constraints too, and the engine switches off a row that has one anyway
# (``Rule.problems``), so that one bad rule never fails the uploads of its subtree.
LEVELS = (1, 5)  # the scale of the largest keypad
MIN_N = (1, 1_000_000)
MINUTES = (1, 7 * 24 * 60)  # up to a week
DEADLINE_DAYS = (1, 365)
DIGEST_MINUTES = (0, 24 * 60)
INDEX_MAX = 100.0  # the satisfaction index's scale (level values 0..100)
PARAMETERS = ("level", "threshold", "min_n", "minutes", "deadline_days", "digest_minutes")
SHARE_KINDS = ("bad_share", "unprompted")  # Rule.BAD_SHARE, Rule.UNPROMPTED: a share, 0..1
# the parameters each kind uses (the form shows and takes only these; the rest keep defaults)
_EVERY_KIND = ("minutes", "deadline_days", "digest_minutes")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "low_rating": ("level", *_EVERY_KIND),  # minutes: older ratings go to the digest
    "bad_share": ("level", "threshold", "min_n", *_EVERY_KIND),
    "low_index": ("threshold", "min_n", *_EVERY_KIND),
    "unprompted": ("threshold", "min_n", *_EVERY_KIND),
    "offline": _EVERY_KIND,
}


def finite_number(x: float) -> None:
    if not math.isfinite(x):
        raise ValidationError(_("must be a finite number"), code="finite")


def _between(lo: float, hi: float) -> list[MinValueValidator | MaxValueValidator]:
    return [MinValueValidator(lo), MaxValueValidator(hi)]


def _check_between(field: str, lo: float, hi: float) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": lo, f"{field}__lte": hi}), name=f"rule_{field}_bounded"
    )


class Rule(models.Model):
    LOW_RATING = "low_rating"  # a rating at or below ``level``
    BAD_SHARE = "bad_share"  # share of ratings ≤ level above ``threshold`` among ≥ min_n in T
    LOW_INDEX = "low_index"  # index below ``threshold`` among ≥ min_n ratings in T minutes
    UNPROMPTED = "unprompted"  # share of ratings without a prompt above ``threshold``
    OFFLINE = "offline"  # a keypad disconnected during opening hours
    KINDS = [
        (LOW_RATING, _("rating at or below a level")),
        (BAD_SHARE, _("share of bad ratings above a threshold")),
        (LOW_INDEX, _("index below a threshold")),
        (UNPROMPTED, _("ratings without prompts above a rate")),
        (OFFLINE, _("keypad offline during opening hours")),
    ]

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="alert_rules")
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, choices=KINDS)
    level = models.SmallIntegerField(_("level"), default=2, validators=_between(*LEVELS))
    # a share (0..1) or an index (0..100), see ``clean``
    threshold = models.FloatField(
        _("threshold"), default=0.3, validators=[finite_number, *_between(0, INDEX_MAX)]
    )
    min_n = models.IntegerField(_("minimum n"), default=10, validators=_between(*MIN_N))
    minutes = models.IntegerField(_("minutes"), default=60, validators=_between(*MINUTES))
    deadline_days = models.IntegerField(
        _("deadline (working days)"), default=3, validators=_between(*DEADLINE_DAYS)
    )
    emails = models.CharField(_("e-mail to"), max_length=1000, blank=True, default="")
    webhook = models.URLField(_("webhook"), blank=True, default="")
    # e-mails and webhook calls of this rule's alerts: 0 = one per alert at once, else one
    # digest per target every that many minutes
    digest_minutes = models.IntegerField(
        _("delivery digest (minutes, 0 = each alert at once)"), default=0, db_default=0,
        validators=_between(*DIGEST_MINUTES),
    )  # fmt: skip
    active = models.BooleanField(default=True)
    # deleted rules are kept (their alerts refer to them, the audit log names them), hidden
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            _check_between("level", *LEVELS),
            _check_between("min_n", *MIN_N),
            _check_between("minutes", *MINUTES),
            _check_between("deadline_days", *DEADLINE_DAYS),
            _check_between("digest_minutes", *DIGEST_MINUTES),
            # NaN fails both comparisons on PostgreSQL; SQLite stores NaN as NULL (refused)
            _check_between("threshold", 0, INDEX_MAX),
            models.CheckConstraint(
                condition=~Q(kind__in=SHARE_KINDS) | Q(threshold__lte=1),
                name="rule_share_threshold_at_most_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}@{self.node.code})"

    def clean(self) -> None:
        share = self.kind in SHARE_KINDS and isinstance(self.threshold, float)
        if share and self.threshold > 1:
            raise ValidationError(
                {"threshold": _("a share: at most 1 (0.3 is 30 %)")}, code="share"
            )

    def problems(self) -> list[str]:
        """What is wrong with the parameters (no database access): empty for a usable rule."""
        try:
            self.clean_fields(exclude=[f.name for f in self._meta.fields
                                       if f.name not in PARAMETERS])  # fmt: skip
            self.clean()
        except ValidationError as exc:
            return [f"{field}: {' '.join(str(m) for m in msgs)}"
                    for field, msgs in exc.message_dict.items()]  # fmt: skip
        return []


class Alert(models.Model):
    STATES = [(OPEN, _("open")), (ACKNOWLEDGED, _("acknowledged")), (RESOLVED, _("resolved"))]

    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="alerts")
    branch = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    window = models.ForeignKey(Window, null=True, on_delete=models.PROTECT, related_name="+")
    serial = models.CharField(max_length=64, default="")
    journal_seq = models.BigIntegerField(null=True)
    staff_id = models.CharField(max_length=64, default="")
    summary = models.CharField(max_length=500)
    value = models.FloatField(null=True)
    n = models.IntegerField(null=True)
    state = models.CharField(max_length=16, choices=STATES, default=OPEN)
    open_key = models.CharField(max_length=200, null=True, unique=True)
    assignee = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deadline = models.DateField()
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True)
    acknowledged_by = models.ForeignKey(
        USER, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True)
    resolved_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    resolution = models.TextField(default="")
    # not in the live queue: ratings older than the rule's minutes (a returning agent's
    # backlog) or past the branch's cap of open alerts, folded per rule and branch
    digest = models.BooleanField(default=False)
    count = models.IntegerField(default=1)  # the events folded into it (ratings, hits)
    last_at = models.DateTimeField(null=True)  # the latest fold
    detail = models.JSONField(default=dict)  # the engine's reason, see ``explanation``

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["branch", "state"]),
            models.Index(fields=["digest", "state", "created_at"]),
            models.Index(fields=["state", "deadline"]),
            models.Index(fields=["created_at", "id"]),  # the queue's order, read backwards
        ]

    @property
    def overdue(self) -> bool:
        from django.utils import timezone

        from ..reports.service import TZ

        return self.state != RESOLVED and self.deadline < timezone.now().astimezone(TZ).date()

    def explanation(self) -> str:
        """Why the engine raised it, in the reader's language (``detail``, see ``explain``);
        for the kinds that count ratings, the count is the alert's (every fold adds to it)."""
        if self.detail.get("what") in COUNTED:
            return explain({**self.detail, "k": self.count})
        return explain(self.detail)

    def title(self) -> str:
        """What the alert is about, in the reader's language, at render time: the engine's
        reason, or (an alert stored before reasons were kept: ``summary`` holds English text)
        its rule's kind and where."""
        said = self.explanation()
        if said:
            return said
        where = self.window.code if self.window_id and self.window else self.branch.code
        return _("%(kind)s at %(where)s") % {"kind": self.rule.get_kind_display(), "where": where}


COUNTED = ("low_rating", "backlog", "over_cap")


def explain(detail: dict[str, object]) -> str:
    """The engine's decision as a sentence ("3 of 4 ratings ≤ 2 in 15 min at 2号窗口")."""
    what = detail.get("what")
    template = _EXPLAIN.get(str(what))
    if template is None:
        return ""
    values = dict(detail)
    if "share" in values and isinstance(values["share"], int | float):
        values["percent"] = round(100 * float(values["share"]))
    try:
        return str(template) % values
    except (KeyError, TypeError, ValueError):
        return ""


_EXPLAIN = {
    "low_rating": _("%(k)d rating(s) ≤ %(level)d at %(window)s, the last a %(score)d"),
    "bad_share": _("%(k)d of %(n)d ratings ≤ %(level)d in %(minutes)d min at %(window)s"),
    "low_index": _("index %(index).1f < %(threshold)g over %(n)d ratings in %(minutes)d min "
                   "at %(window)s"),
    "unprompted": _("%(k)d of %(n)d ratings without a prompt (%(percent)d %%) in %(minutes)d "
                    "min at %(window)s"),
    "offline": _("keypad %(serial)s offline at %(time)s"),
    "silent": _("keypad %(serial)s: no word from its agent since %(time)s"),
    "backlog": _("%(k)d rating(s) older than %(minutes)d min at %(branch)s arrived late: "
                 "kept out of the live queue"),
    "over_cap": _("%(k)d more alert(s) at %(branch)s beyond the %(cap)d open ones: kept out "
                  "of the live queue"),
}  # fmt: skip


class AlertRating(models.Model):
    """A rating folded into an alert (the first one and every repeat while it is open)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="ratings")
    serial = models.CharField(max_length=64)
    journal_seq = models.BigIntegerField()
    time = models.DateTimeField()
    score = models.SmallIntegerField()
    staff_id = models.CharField(max_length=64, default="")
    window = models.ForeignKey(Window, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-time", "-id"]


class AlertEvent(models.Model):
    """One line of an alert's history: raised, acknowledged, assigned, commented, resolved,
    notified (``data``: what else belongs to it, e.g. the assignee, the users notified)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    actor = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=32)
    note = models.TextField(default="")
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["at", "id"]


class Comment(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]


class Appeal(models.Model):
    """A staff member disputes a rating; a reviewer upholds (the rating leaves the KPIs, kept
    and flagged) or rejects it."""

    PENDING, UPHELD, REJECTED = "pending", "upheld", "rejected"
    STATES = [(PENDING, _("pending")), (UPHELD, _("upheld")), (REJECTED, _("rejected"))]

    serial = models.CharField(max_length=64)
    journal_seq = models.BigIntegerField()
    rating_time = models.DateTimeField()
    staff_id = models.CharField(max_length=64)
    branch = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    state = models.CharField(max_length=16, choices=STATES, default=PENDING)
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    reviewer = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True)
    decision_note = models.TextField(default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["serial", "journal_seq"], name="one_appeal_per_rating")
        ]


class Notification(models.Model):
    """A message in the web (the bell), for one user."""

    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    alert = models.ForeignKey(Alert, null=True, on_delete=models.CASCADE, related_name="+")
    appeal = models.ForeignKey(Appeal, null=True, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=500)
    # where it leads when it is about neither an alert nor an appeal (a case of the loop)
    link = models.CharField(max_length=500, default="", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class Delivery(models.Model):
    """An e-mail or webhook call to send; workers claim rows atomically (``worker.py``)."""

    EMAIL, WEBHOOK = "email", "webhook"

    channel = models.CharField(max_length=16)
    target = models.CharField(max_length=1000)
    subject = models.CharField(max_length=500, default="")
    body = models.JSONField(default=dict)
    alert = models.ForeignKey(Alert, null=True, on_delete=models.CASCADE, related_name="+")
    # a digest: ``body["alerts"]`` gathers the alerts of its rule until ``next_try_at``
    digest = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    next_try_at = models.DateTimeField(db_index=True)
    claimed_until = models.DateTimeField(null=True)
    attempts = models.IntegerField(default=0)
    sent_at = models.DateTimeField(null=True)
    last_error = models.CharField(max_length=500, default="")
