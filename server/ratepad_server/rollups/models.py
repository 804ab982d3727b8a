"""Aggregates kept up to date by every ingest batch in the same transaction, so that reports and
summaries read these rows and never the raw ratings:

- ``HourRollup``: per (UTC hour, window, staff member): alerts, live figures, the edges of a
  period that does not start or end at a local midnight.
- ``DayRollup``: per (local day, window, staff member), with the ratings per local hour of the
  day (``h00`` … ``h23``): the windows and staff of a branch, a window's or a clerk's report.
- ``NodeDayRollup``: per (local day, node, shard) for every node above a rating's window, the
  branch included: the reports of HQ, regions and branches read a few rows per day whatever the
  number of windows below. ``shard`` (the branch id modulo ``SHARDS``) spreads the writers of a
  busy node over several rows, so that agents of different branches rarely wait for each other.

"Local" is the reports' time zone (``RATEPAD_TIME_ZONE``); after changing it, rebuild with
``ratepad server rollups --rebuild``.
"""

from __future__ import annotations

from django.db import models

from ..org.models import Node, Window

SHARDS = 8


class Counts(models.Model):
    """The counters every rollup has (``service.COLUMNS``)."""

    n_all = models.IntegerField(default=0)  # every rating
    n = models.IntegerField(default=0)  # ratings that count for KPIs (not excluded by flags)
    s1 = models.IntegerField(default=0)  # ... of them with score 1
    s2 = models.IntegerField(default=0)
    s3 = models.IntegerField(default=0)
    s4 = models.IntegerField(default=0)
    s5 = models.IntegerField(default=0)
    top2 = models.IntegerField(default=0)  # ... in the top two levels of their keypad's scale
    level_n = models.IntegerField(default=0)  # ... with a level value ...
    level_sum = models.BigIntegerField(default=0)  # ... and their sum
    prompts = models.IntegerField(default=0)  # prompts issued (by the time they were issued)
    answered = models.IntegerField(default=0)  # ... and answered by a rating
    unprompted = models.IntegerField(default=0)  # ratings with each flag (counted in n_all)
    repeat = models.IntegerField(default=0)
    multi_key = models.IntegerField(default=0)
    stuck_key = models.IntegerField(default=0)
    no_staff = models.IntegerField(default=0)
    appeal_upheld = models.IntegerField(default=0)  # taken out of the KPIs by an appeal

    class Meta:
        abstract = True


class Hours(Counts):
    """... and the ratings (``n_all``) per local hour of the day: heatmap, customer flow."""

    h00 = models.IntegerField(default=0)
    h01 = models.IntegerField(default=0)
    h02 = models.IntegerField(default=0)
    h03 = models.IntegerField(default=0)
    h04 = models.IntegerField(default=0)
    h05 = models.IntegerField(default=0)
    h06 = models.IntegerField(default=0)
    h07 = models.IntegerField(default=0)
    h08 = models.IntegerField(default=0)
    h09 = models.IntegerField(default=0)
    h10 = models.IntegerField(default=0)
    h11 = models.IntegerField(default=0)
    h12 = models.IntegerField(default=0)
    h13 = models.IntegerField(default=0)
    h14 = models.IntegerField(default=0)
    h15 = models.IntegerField(default=0)
    h16 = models.IntegerField(default=0)
    h17 = models.IntegerField(default=0)
    h18 = models.IntegerField(default=0)
    h19 = models.IntegerField(default=0)
    h20 = models.IntegerField(default=0)
    h21 = models.IntegerField(default=0)
    h22 = models.IntegerField(default=0)
    h23 = models.IntegerField(default=0)

    class Meta:
        abstract = True


class WindowStaff(models.Model):
    """The unit of the window rollups: a window, a staff member, and the window's node (no
    index of their own: each table's composite indexes lead with them, and every index costs
    every upload)."""

    window = models.ForeignKey(
        Window, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )  # fmt: skip
    staff_id = models.CharField(max_length=64)
    branch = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )

    class Meta:
        abstract = True


class HourRollup(Counts, WindowStaff):
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "window", "staff_id"], name="rollup_key")
        ]
        indexes = [
            models.Index(fields=["branch", "hour"]),
            models.Index(fields=["window", "hour"]),
        ]


class DayRollup(Hours, WindowStaff):
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "window", "staff_id"], name="dayrollup_key")
        ]
        indexes = [
            models.Index(fields=["branch", "day"]),
            models.Index(fields=["window", "day"]),
        ]


class NodeDayRollup(Hours):
    day = models.DateField()
    node = models.ForeignKey(  # indexed by the unique key, which leads with it
        Node, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    shard = models.SmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "day", "shard"], name="nodedayrollup_key")
        ]
