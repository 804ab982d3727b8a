"""The loop's tables: the holiday calendar, the loop's rules per node, cases and their steps.

A case's ``state`` names the step it waits for (``LIFE`` is the whole table): verify → rectify
→ answer → close → closed. A rating verified as not genuine (a mistaken press, a test) skips
rectify and answer. Every step is a ``Step`` row (who, when, what) and an audit entry.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..alerts.models import Alert
from ..org.models import Node, Window

USER = settings.AUTH_USER_MODEL

VERIFY, RECTIFY, ANSWER, CLOSE, CLOSED = "verify", "rectify", "answer", "close", "closed"
# state → the step it waits for → the next state (``not_genuine``: verify's other outcome)
LIFE: dict[str, str] = {VERIFY: RECTIFY, RECTIFY: ANSWER, ANSWER: CLOSE, CLOSE: CLOSED}
STEPS = (VERIFY, RECTIFY, ANSWER, CLOSE)

LEVELS = (0, 5)  # 0: no rating opens a case / may be appealed
DAYS = (1, 60)  # working days


class CalendarDay(models.Model):
    """A day that is not what its weekday says: a holiday on a weekday (``working`` False), or
    an adjusted working day on a weekend (调休, ``working`` True). Every other day: Monday to
    Friday work, Saturday and Sunday not."""

    day = models.DateField(_("date"), unique=True)
    working = models.BooleanField(_("working day"))
    name = models.CharField(_("name"), max_length=100, blank=True, default="")

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day} {'work' if self.working else 'off'} {self.name}"


def _between(lo: int, hi: int) -> list[MinValueValidator | MaxValueValidator]:
    return [MinValueValidator(lo), MaxValueValidator(hi)]


class Policy(models.Model):
    """The loop's rules for a node's subtree (the nearest node above a branch that has one
    wins; the top node's is the global one; none at all: the defaults below)."""

    node = models.OneToOneField(Node, on_delete=models.CASCADE, related_name="loop_policy")
    case_level = models.SmallIntegerField(
        _("a case for ratings at or below"), default=2, validators=_between(*LEVELS)
    )
    case_days = models.SmallIntegerField(
        _("case deadline (working days)"), default=5, validators=_between(*DAYS)
    )
    appeal_level = models.SmallIntegerField(
        _("appeals for ratings at or below"), default=3, validators=_between(*LEVELS)
    )
    appeal_days = models.SmallIntegerField(
        _("appeal deadline (working days)"), default=5, validators=_between(*DAYS)
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    case_level__gte=LEVELS[0],
                    case_level__lte=LEVELS[1],
                    appeal_level__gte=LEVELS[0],
                    appeal_level__lte=LEVELS[1],
                    case_days__gte=DAYS[0],
                    case_days__lte=DAYS[1],
                    appeal_days__gte=DAYS[0],
                    appeal_days__lte=DAYS[1],
                ),
                name="loop_policy_bounded",
            )
        ]


class Case(models.Model):
    STATES = [
        (VERIFY, _("to verify")),
        (RECTIFY, _("to rectify")),
        (ANSWER, _("to answer")),
        (CLOSE, _("to close")),
        (CLOSED, _("closed")),
    ]

    serial = models.CharField(max_length=64)
    journal_seq = models.BigIntegerField()
    rating_time = models.DateTimeField()
    score = models.SmallIntegerField()
    staff_id = models.CharField(max_length=64, default="")
    window = models.ForeignKey(Window, on_delete=models.PROTECT, related_name="+")
    branch = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    alert = models.ForeignKey(Alert, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=STATES, default=VERIFY)
    genuine = models.BooleanField(null=True)  # the verify step's outcome
    opened_at = models.DateTimeField()
    deadline = models.DateField()  # the last working day to close it
    closed_at = models.DateTimeField(null=True)
    on_time = models.BooleanField(null=True)  # closed by the deadline (set at closing)
    escalated_at = models.DateTimeField(null=True)
    escalated_to = models.ForeignKey(Node, null=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["serial", "journal_seq"], name="one_case_per_rating")
        ]
        indexes = [
            models.Index(fields=["branch", "state"]),
            models.Index(fields=["state", "deadline"]),
            models.Index(fields=["opened_at"]),
        ]

    def __str__(self) -> str:
        return f"case {self.pk} {self.serial}#{self.journal_seq}"


class Step(models.Model):
    """One step done on a case, by whom and when."""

    STEPS = [
        (VERIFY, _("verify")),
        (RECTIFY, _("rectify")),
        (ANSWER, _("answer")),
        (CLOSE, _("close")),
        ("escalate", _("escalate")),
    ]
    PHONE, IN_PERSON, MESSAGE, OTHER = "phone", "in_person", "message", "other"
    CHANNELS = [
        (PHONE, _("by phone")),
        (IN_PERSON, _("in person")),
        (MESSAGE, _("by message")),
        (OTHER, _("otherwise")),
    ]

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="steps")
    step = models.CharField(max_length=16, choices=STEPS)
    by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField()
    note = models.TextField(default="")
    genuine = models.BooleanField(null=True)  # verify
    contacted = models.BooleanField(null=True)  # answer: the customer was reached
    channel = models.CharField(max_length=16, choices=CHANNELS, default="", blank=True)

    class Meta:
        ordering = ["at", "id"]
