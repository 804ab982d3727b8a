"""Survey definitions, imports of responses (with the report computed at import: a page reads
it, never the responses) and return visits.

A return visit belongs to one node (the branch of its rating or alert) and to the rating
(``serial``, ``journal_seq``) or the alert it follows up. It holds no customer data beyond the
staff member's note.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..alerts.models import Alert
from ..org.models import Node

USER = settings.AUTH_USER_MODEL

RETURN_VISIT_DUE = timedelta(hours=48)
"""A return visit is on time when made within this long after the rating or the alert."""
BAD_SCORE = 2
"""Ratings at or below this score offer a return visit on the ratings page."""


class SurveyDefinition(models.Model):
    name = models.CharField(_("name"), max_length=200)
    spec = models.JSONField()  # the definition as read (ratepad.survey.parse_definition's input)
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class SurveyImport(models.Model):
    """One file of responses to a definition, for one node and period."""

    definition = models.ForeignKey(
        SurveyDefinition, on_delete=models.PROTECT, related_name="imports"
    )
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    first = models.DateField(_("first day"))
    last = models.DateField(_("last day"))
    file_name = models.CharField(max_length=255, default="")
    respondents = models.IntegerField()
    report = models.JSONField()  # ratepad.survey.analyse's result
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["node", "last"])]
        ordering = ["-last", "-pk"]


class SurveyResponse(models.Model):
    """A block of up to ``BLOCK`` respondents' answers, in file order: one list per respondent,
    its id then its answers in the definition's question order (null: not answered). Blocks,
    not a row per respondent: 10,000 respondents are 10 inserts, not 10,000."""

    BLOCK = 1000

    survey = models.ForeignKey(SurveyImport, on_delete=models.CASCADE, related_name="responses")
    first_row = models.IntegerField()  # the block's first respondent, counted from 1
    rows = models.JSONField()

    class Meta:
        ordering = ["survey", "first_row"]


class ReturnVisit(models.Model):
    PHONE, SMS, MESSAGE, VISIT, EMAIL, OTHER = "phone", "sms", "message", "visit", "email", "other"
    CHANNELS = [
        (PHONE, _("phone")),
        (SMS, _("text message")),
        (MESSAGE, _("instant message")),
        (VISIT, _("in person")),
        (EMAIL, _("e-mail")),
        (OTHER, _("other")),
    ]
    REACHED, RESOLVED, NO_ANSWER, DECLINED = "reached", "resolved", "no_answer", "declined"
    OUTCOMES = [
        (REACHED, _("reached")),
        (RESOLVED, _("resolved")),
        (NO_ANSWER, _("no answer")),
        (DECLINED, _("declined to talk")),
    ]

    branch = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    serial = models.CharField(max_length=64, default="", blank=True)
    journal_seq = models.BigIntegerField(null=True, blank=True)
    score = models.SmallIntegerField(null=True, blank=True)  # the rating's
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")  # fmt: skip
    since = models.DateTimeField()  # the rating's time, or the alert's creation
    due_at = models.DateTimeField()
    contacted_at = models.DateTimeField(_("contacted at"))
    contacted_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(_("channel"), max_length=16, choices=CHANNELS)
    outcome = models.CharField(_("outcome"), max_length=16, choices=OUTCOMES)
    satisfaction_after = models.SmallIntegerField(
        _("satisfaction after"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )  # fmt: skip
    note = models.TextField(_("staff note"), max_length=1000, default="", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["branch", "contacted_at"])]
        ordering = ["-contacted_at", "-pk"]

    @property
    def on_time(self) -> bool:
        return self.contacted_at <= self.due_at
