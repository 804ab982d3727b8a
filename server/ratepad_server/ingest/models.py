"""What the agents upload: ratings (once each), prompts, staff sessions, device status.

``ingest_rating`` and ``ingest_devicestatus`` are partitioned by month on PostgreSQL (migration
0002); a partition's unique keys must contain the partition key, so exactly-once rests on the
small unpartitioned ``ingest_ratingkey`` (serial, journal_seq): a batch inserts its keys first,
``ON CONFLICT DO NOTHING RETURNING``, and only the keys that came back are new ratings.
Foreign keys of the fact tables are not enforced by the database (db_constraint=False): the
ingest path resolves them itself, and checking them per row would cost at 10 000 rows/s.
"""

from __future__ import annotations

from django.db import models

from ..org.models import Node, Window


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
    """A rating that could not be given a window (keypad bound to none, or to a window of
    another branch than the uploading agent's); kept for an admin to assign."""

    NO_BINDING = "no_binding"
    OTHER_BRANCH = "other_branch"

    serial = models.CharField(max_length=64)
    journal_seq = models.BigIntegerField()
    time = models.DateTimeField()
    reason = models.CharField(max_length=32)
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

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["serial", "journal_seq"], name="quarantine_key")
        ]


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
