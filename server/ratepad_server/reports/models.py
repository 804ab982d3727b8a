"""Hourly counts of flagged ratings per (window, staff member), kept beside the server's
``HourRollup`` in the same ingest transaction: the misuse and anomaly rates of the reports read
these rows, never the raw ratings."""

from __future__ import annotations

from django.db import models

from ..org.models import Node, Window


class FlagRollup(models.Model):
    hour = models.DateTimeField()
    window = models.ForeignKey(
        Window, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    staff_id = models.CharField(max_length=64)
    branch = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    unprompted = models.IntegerField(default=0)
    repeat = models.IntegerField(default=0)
    multi_key = models.IntegerField(default=0)
    stuck_key = models.IntegerField(default=0)
    no_staff = models.IntegerField(default=0)
    appeal_upheld = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "window", "staff_id"], name="flagrollup_key")
        ]
        indexes = [models.Index(fields=["branch", "hour"])]
