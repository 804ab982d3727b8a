"""Quarantine keeps whole items (ratings, prompts, sessions, device states) per uploading branch
and takes no dedupe key; resends with other content are kept as conflicts.

Ratings quarantined before this migration were stored without a window and held their key; an
unassigned one moves into its quarantine row (content in ``item``) and its rating row and key
are released, so that the rightful branch's upload stores it.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import django.db.models.deletion
from django.db import migrations, models

_CONTENT = ("boot_id", "uptime_ms", "time", "time_exact", "score", "key_count", "level_value",
            "staff_id", "prompt_id", "flags")  # fmt: skip


def move_quarantined_ratings(apps: Any, schema_editor: Any) -> None:
    quarantine = apps.get_model("ingest", "Quarantine")
    rating = apps.get_model("ingest", "Rating")
    epoch, ms = datetime(1970, 1, 1, tzinfo=UTC), timedelta(milliseconds=1)
    for q in quarantine.objects.all().iterator():
        r = (
            rating.objects.filter(serial=q.serial, journal_seq=q.journal_seq)
            .values(*_CONTENT)
            .first()
        )
        if r is None:
            continue
        item = {"serial": q.serial, "journal_seq": q.journal_seq,
                **{k: v for k, v in r.items() if k != "time"},
                "time_ms": (r["time"] - epoch) // ms}  # fmt: skip
        q.item = item
        q.digest = hashlib.sha256(
            json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
        if q.assigned_at is None:
            with schema_editor.connection.cursor() as cur:
                for table in ("ingest_rating", "ingest_ratingkey"):
                    cur.execute(
                        f"DELETE FROM {table} WHERE serial = %s AND journal_seq = %s"
                        + (" AND window_id IS NULL" if table == "ingest_rating" else ""),
                        [q.serial, q.journal_seq],
                    )
        else:
            q.outcome = "stored"
        q.save(update_fields=["item", "digest", "outcome"])


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0003_device_agent"),
        ("org", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Conflict",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("serial", models.CharField(max_length=64)),
                ("journal_seq", models.BigIntegerField()),
                ("item", models.JSONField()),
                ("digest", models.CharField(max_length=64)),
                ("differs", models.CharField(max_length=200)),
                ("received_at", models.DateTimeField()),
            ],
        ),
        migrations.AlterModelOptions(
            name="quarantine",
            options={"verbose_name_plural": "quarantine"},
        ),
        migrations.RemoveConstraint(
            model_name="quarantine",
            name="quarantine_key",
        ),
        migrations.AddField(
            model_name="quarantine",
            name="digest",
            field=models.CharField(default="", max_length=64),
        ),
        migrations.AddField(
            model_name="quarantine",
            name="item",
            field=models.JSONField(default=dict),
        ),
        migrations.AddField(
            model_name="quarantine",
            name="kind",
            field=models.CharField(default="rating", max_length=8),
        ),
        migrations.AddField(
            model_name="quarantine",
            name="outcome",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AlterField(
            model_name="quarantine",
            name="journal_seq",
            field=models.BigIntegerField(null=True),
        ),
        migrations.RunPython(move_quarantined_ratings, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="quarantine",
            constraint=models.UniqueConstraint(
                fields=("branch", "kind", "serial", "digest"), name="quarantine_item_key"
            ),
        ),
        migrations.AddField(
            model_name="conflict",
            name="agent",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="ingest.agentkey",
            ),
        ),
        migrations.AddField(
            model_name="conflict",
            name="branch",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="org.node",
            ),
        ),
        migrations.AddConstraint(
            model_name="conflict",
            constraint=models.UniqueConstraint(
                fields=("serial", "journal_seq", "digest"), name="conflict_key"
            ),
        ),
    ]
