"""Hourly aggregates per (window, staff member), kept up to date by every ingest batch in the
same transaction, so that summaries read these rows and never the raw ratings."""

from __future__ import annotations

from django.db import models

from ..org.models import Node, Window


class HourRollup(models.Model):
    hour = models.DateTimeField()
    window = models.ForeignKey(
        Window, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    staff_id = models.CharField(max_length=64)
    branch = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    n_all = models.IntegerField(default=0)  # every rating
    n = models.IntegerField(default=0)  # ratings that count for KPIs (not suspicious)
    s1 = models.IntegerField(default=0)  # ... of them with score 1
    s2 = models.IntegerField(default=0)
    s3 = models.IntegerField(default=0)
    s4 = models.IntegerField(default=0)
    s5 = models.IntegerField(default=0)
    top2 = models.IntegerField(default=0)  # in the top two levels of their keypad's scale
    level_n = models.IntegerField(default=0)  # with a level value ...
    level_sum = models.BigIntegerField(default=0)  # ... and their sum
    prompts = models.IntegerField(default=0)  # prompts issued (by the hour they were issued)
    answered = models.IntegerField(default=0)  # ... and answered by a rating

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "window", "staff_id"], name="rollup_key")
        ]
        indexes = [models.Index(fields=["branch", "hour"])]
