"""PostgreSQL: ratings and device status partitioned by month, and the LISTEN/NOTIFY triggers of
the live fan-out. Both databases: the indexes the API reads by.

On SQLite (one instance, a small site) the tables stay plain and the live fan-out is in-process
(``ratepad_server.live``); the rest of the schema is the same on both.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

PARTITIONED = (("ingest_rating", "time"), ("ingest_devicestatus", "at"))  # see __init__

ENSURE_MONTH = """
CREATE FUNCTION ratepad_ensure_month(tbl text, month_start timestamptz) RETURNS void AS $$
DECLARE
    part text := tbl || '_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
    -- several server instances may want the same month at once
    PERFORM pg_advisory_xact_lock(hashtext(part));
    IF to_regclass(part) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       part, tbl, month_start, month_start + interval '1 month');
    END IF;
END $$ LANGUAGE plpgsql
"""

# One NOTIFY per 40 new ratings of a statement (a payload must stay under 8000 bytes); the
# notifications go out when the batch commits, and never for a batch that rolls back.
NOTIFY_RATINGS = """
CREATE FUNCTION ratepad_notify_ratings() RETURNS trigger AS $$
DECLARE
    chunk text;
BEGIN
    FOR chunk IN
        SELECT json_build_object('kind', 'ratings', 'rows', json_agg(json_build_object(
                   'serial', serial, 'journal_seq', journal_seq, 'window', window_id,
                   'branch', branch_id, 'score', score, 'level_value', level_value,
                   'staff_id', staff_id, 'time', time, 'flags', flags)))::text
        FROM (SELECT *, (row_number() OVER () - 1) / 40 AS grp FROM new_rows) AS r
        GROUP BY grp
    LOOP
        PERFORM pg_notify('ratepad_live', chunk);
    END LOOP;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER ratepad_live_ratings AFTER INSERT ON ingest_rating
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION ratepad_notify_ratings();
CREATE FUNCTION ratepad_notify_device() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ratepad_live', json_build_object('kind', 'device', 'rows', json_build_array(
        json_build_object('serial', NEW.serial, 'branch', NEW.branch_id, 'window', NEW.window_id,
                          'connected', NEW.connected, 'state', NEW.state, 'faults', NEW.faults,
                          'staff_id', NEW.staff_id, 'time', NEW.updated_at)))::text);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER ratepad_live_device AFTER INSERT OR UPDATE ON ingest_device
    FOR EACH ROW EXECUTE FUNCTION ratepad_notify_device();
"""

INDEXES = [
    "CREATE INDEX ingest_rating_branch_time ON ingest_rating (branch_id, time)",
    "CREATE INDEX ingest_rating_window_time ON ingest_rating (window_id, time)",
    "CREATE INDEX ingest_rating_key ON ingest_rating (serial, journal_seq)",
    "CREATE INDEX ingest_devicestatus_serial_at ON ingest_devicestatus (serial, at)",
]


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for table, column in PARTITIONED:
            # the tables are empty here: rebuild them partitioned, same columns and identity
            schema_editor.execute(
                f"CREATE TABLE {table}_p (LIKE {table} INCLUDING DEFAULTS INCLUDING IDENTITY)"
                f" PARTITION BY RANGE ({column})"
            )
            schema_editor.execute(f"DROP TABLE {table}")
            schema_editor.execute(f"ALTER TABLE {table}_p RENAME TO {table}")
            schema_editor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id, {column})")
        schema_editor.execute(ENSURE_MONTH, None)  # None: no % placeholders to fill
        schema_editor.execute(NOTIFY_RATINGS, None)
    for sql in INDEXES:
        schema_editor.execute(sql)


def backwards(apps: Any, schema_editor: Any) -> None:
    for sql in INDEXES:
        schema_editor.execute("DROP INDEX " + sql.split()[2])
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER ratepad_live_device ON ingest_device")
        schema_editor.execute("DROP TRIGGER ratepad_live_ratings ON ingest_rating")
        for fn in (
            "ratepad_notify_device()",
            "ratepad_notify_ratings()",
            "ratepad_ensure_month(text, timestamptz)",
        ):
            schema_editor.execute(f"DROP FUNCTION {fn}")


class Migration(migrations.Migration):
    dependencies = [("ingest", "0001_initial")]
    # a failure in the middle leaves nothing half-built (PostgreSQL has transactional DDL)
    atomic = True
    operations = [migrations.RunPython(forwards, backwards)]
