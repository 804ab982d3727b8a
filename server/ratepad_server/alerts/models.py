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
INDEX_MAX = 100.0  # the satisfaction index's scale (level values 0..100)
PARAMETERS = ("level", "threshold", "min_n", "minutes", "deadline_days")
SHARE_KINDS = ("bad_share", "unprompted")  # Rule.BAD_SHARE, Rule.UNPROMPTED: a share, 0..1


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
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            _check_between("level", *LEVELS),
            _check_between("min_n", *MIN_N),
            _check_between("minutes", *MINUTES),
            _check_between("deadline_days", *DEADLINE_DAYS),
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

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["branch", "state"])]


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
    created_at = models.DateTimeField(auto_now_add=True)
    next_try_at = models.DateTimeField(db_index=True)
    claimed_until = models.DateTimeField(null=True)
    attempts = models.IntegerField(default=0)
    sent_at = models.DateTimeField(null=True)
    last_error = models.CharField(max_length=500, default="")
