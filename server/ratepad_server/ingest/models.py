"""What the agents upload: ratings (once each), prompts, staff sessions, device status.

``ingest_rating`` and ``ingest_devicestatus`` are partitioned by month on PostgreSQL (migration
0002); a partition's unique keys must contain the partition key, so exactly-once rests on the
small unpartitioned ``ingest_ratingkey`` (serial, journal_seq): a batch inserts its keys first,
``ON CONFLICT DO NOTHING RETURNING``, and only the keys that came back are new ratings.
Foreign keys of the fact tables are not enforced by the database (db_constraint=False): the
ingest path resolves them itself, and checking them per row would cost at 10 000 rows/s.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models

from ..org.models import Node, Window


def item_digest(item: dict[str, Any]) -> str:
    """SHA-256 of an uploaded item (its JSON, keys sorted): the same item gives the same."""
    text = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class AgentKey(models.Model):
    """An agent's upload key, enrolled at a branch; only its SHA-256 is stored."""

    key_id = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    branch = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="agent_keys")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_upload_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key_id}@{self.branch.code}"


class RatingKey(models.Model):
    """The dedupe key of every rating ever stored."""

    pk = models.CompositePrimaryKey("serial", "journal_seq")
    serial = models.CharField(max_length=64)
    journal_seq = models.BigIntegerField()


class Rating(models.Model):
    serial = models.CharField(max_length=64)
    journal_seq = models.BigIntegerField()
    boot_id = models.BigIntegerField()
    uptime_ms = models.BigIntegerField()
    time = models.DateTimeField()  # the keypad's (exact or reconstructed: time_exact)
    time_exact = models.BooleanField()
    score = models.SmallIntegerField()
    key_count = models.SmallIntegerField()
    level_value = models.SmallIntegerField(null=True)
    staff_id = models.CharField(max_length=64)
    prompt_id = models.BigIntegerField()
    flags = models.IntegerField()
    window = models.ForeignKey(
        Window, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )  # None: quarantined
    branch = models.ForeignKey(
        Node, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    agent = models.ForeignKey(
        AgentKey, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    received_at = models.DateTimeField()  # the server's


class Quarantine(models.Model):
    """An item an agent uploaded that is not stored: a rating, prompt, staff session or device
    state of a keypad not bound to a window of the uploading agent's branch at the item's time
    (bound to none, or to another branch's window), or with a time outside the accepted span
    (``bounds``). Kept whole (``item``: as received) in the uploading branch's quarantine; a
    quarantined rating takes no dedupe key, so the rightful branch's upload still stores it.
    An admin may assign a quarantined rating to a window: it is stored then (``outcome``)."""

    NO_BINDING = "no_binding"
    OTHER_BRANCH = "other_branch"
    TIME_OUT_OF_RANGE = "time_out_of_range"
    NO_PARTITION = "no_partition"  # PostgreSQL: the month's partition is missing (see partitions)
    KINDS = ("rating", "prompt", "session", "device")

    kind = models.CharField(max_length=8, default="rating")
    serial = models.CharField(max_length=64)
    journal_seq = models.BigIntegerField(null=True)  # ratings only
    time = models.DateTimeField()  # the item's (a rating's time, a prompt's issue, ...)
    reason = models.CharField(max_length=32)
    item = models.JSONField(default=dict)  # the item as uploaded (schemas.*In)
    # of ``item`` (of a device state: of its serial and reason, the latest state is kept)
    digest = models.CharField(max_length=64, default="")
    agent = models.ForeignKey(
        AgentKey, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    branch = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )  # the uploading agent's branch
    created_at = models.DateTimeField()
    assigned_at = models.DateTimeField(null=True)
    window = models.ForeignKey(
        Window, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    # after assignment: "stored", or "duplicate"/"conflict" when the key was taken by then
    outcome = models.CharField(max_length=16, default="", blank=True)

    class Meta:
        verbose_name_plural = "quarantine"
        # a resend is kept once; a different item under the same key is kept beside it
        constraints = [
            models.UniqueConstraint(
                fields=["branch", "kind", "serial", "digest"], name="quarantine_item_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.serial}/{self.journal_seq or '-'} ({self.reason})"


class Conflict(models.Model):
    """A rating resent under a stored (serial, journal_seq) with other content: the stored
    rating is left as it is and this version is kept beside it for an admin, with who sent it
    and when."""

    serial = models.CharField(max_length=64)
    journal_seq = models.BigIntegerField()
    item = models.JSONField()  # the differing rating as uploaded (schemas.RatingIn)
    digest = models.CharField(max_length=64)  # of ``item``: the same resend is kept once
    differs = models.CharField(max_length=200)  # the fields that differ, comma-separated
    agent = models.ForeignKey(
        AgentKey, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    branch = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )  # the uploading agent's branch
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["serial", "journal_seq", "digest"], name="conflict_key")
        ]

    def __str__(self) -> str:
        return f"{self.serial}/{self.journal_seq}: {self.differs}"


class Prompt(models.Model):
    STATES = ["issued", "answered", "timed_out", "cancelled"]

    serial = models.CharField(max_length=64)
    prompt_id = models.BigIntegerField()
    staff_id = models.CharField(max_length=64, default="")
    state = models.CharField(max_length=16)
    issued_at = models.DateTimeField(null=True)
    timeout_ms = models.BigIntegerField(null=True)
    closed_at = models.DateTimeField(null=True)
    rating_seq = models.BigIntegerField(null=True)
    window = models.ForeignKey(
        Window, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    branch = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["serial", "prompt_id"], name="prompt_key")]


class StaffSession(models.Model):
    """A staff member logged in at a keypad from ``started_at`` to ``ended_at``."""

    serial = models.CharField(max_length=64)
    staff_id = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True)
    window = models.ForeignKey(
        Window, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    branch = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["serial", "started_at"], name="session_key")]


class Device(models.Model):
    """The latest known state of a keypad."""

    serial = models.CharField(max_length=64, unique=True)
    branch = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    window = models.ForeignKey(
        Window, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    connected = models.BooleanField()
    firmware = models.CharField(max_length=64, null=True)
    state = models.CharField(max_length=32, null=True)
    faults = models.CharField(max_length=200, default="")
    unacked = models.IntegerField(null=True)
    staff_id = models.CharField(max_length=64, null=True)
    updated_at = models.DateTimeField()  # the agent's
    agent = models.ForeignKey(  # the agent that reported it last (silent agent: offline)
        AgentKey, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )


class DeviceStatus(models.Model):
    """History of device states (one row per uploaded change; partitioned by month)."""

    serial = models.CharField(max_length=64)
    at = models.DateTimeField()
    branch = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    connected = models.BooleanField()
    state = models.CharField(max_length=32, null=True)
    faults = models.CharField(max_length=200, default="")
    unacked = models.IntegerField(null=True)
    presses = models.IntegerField(null=True)
    staff_id = models.CharField(max_length=64, null=True)
