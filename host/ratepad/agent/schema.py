"""The store's SQL: tables (as numbered migrations) and the statements the writer runs.

``schema_version`` records which migrations a store has; a migration is never edited once
released, only new ones appended.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE ratings (
            id             INTEGER PRIMARY KEY,
            serial         TEXT    NOT NULL,
            journal_seq    INTEGER NOT NULL,
            boot_id        INTEGER NOT NULL,
            uptime_ms      INTEGER NOT NULL,
            time_ms        INTEGER NOT NULL,
            time_exact     INTEGER NOT NULL,
            score          INTEGER NOT NULL,
            key_count      INTEGER NOT NULL,
            level          TEXT,
            level_value    INTEGER,
            staff_id       TEXT    NOT NULL,
            prompt_id      INTEGER NOT NULL,
            flags          INTEGER NOT NULL,
            flag_names     TEXT    NOT NULL,
            received_at_ms INTEGER NOT NULL,
            UNIQUE (serial, journal_seq)
        );
        CREATE TABLE rating_conflicts (
            id             INTEGER PRIMARY KEY,
            existing_id    INTEGER NOT NULL REFERENCES ratings (id),
            serial         TEXT    NOT NULL,
            journal_seq    INTEGER NOT NULL,
            boot_id        INTEGER NOT NULL,
            uptime_ms      INTEGER NOT NULL,
            time_ms        INTEGER NOT NULL,
            time_exact     INTEGER NOT NULL,
            score          INTEGER NOT NULL,
            key_count      INTEGER NOT NULL,
            level          TEXT,
            level_value    INTEGER,
            staff_id       TEXT    NOT NULL,
            prompt_id      INTEGER NOT NULL,
            flags          INTEGER NOT NULL,
            flag_names     TEXT    NOT NULL,
            received_at_ms INTEGER NOT NULL,
            UNIQUE (serial, journal_seq, boot_id, uptime_ms)
        );
        CREATE INDEX ratings_by_time ON ratings (time_ms);
        CREATE INDEX ratings_by_staff ON ratings (staff_id, time_ms);
        CREATE TABLE prompts (
            serial        TEXT    NOT NULL,
            prompt_id     INTEGER NOT NULL,
            staff_id      TEXT    NOT NULL DEFAULT '',
            issued_at_ms  INTEGER,
            timeout_ms    INTEGER,
            state         TEXT    NOT NULL
                CHECK (state IN ('issued', 'answered', 'timed_out', 'cancelled')),
            closed_at_ms  INTEGER,
            rating_seq    INTEGER,
            PRIMARY KEY (serial, prompt_id)
        );
        CREATE INDEX prompts_by_state ON prompts (state, issued_at_ms);
        CREATE TABLE devices (
            serial        TEXT PRIMARY KEY,
            url           TEXT    NOT NULL,
            connected     INTEGER NOT NULL,
            firmware      TEXT,
            board         TEXT,
            key_count     INTEGER,
            boot_id       INTEGER,
            state         TEXT,
            faults        TEXT,
            unacked       INTEGER,
            presses       INTEGER,
            unprompted    INTEGER,
            repeats       INTEGER,
            multi_key     INTEGER,
            stuck_keys    INTEGER,
            staff_id      TEXT,
            acked_seq     INTEGER,
            updated_at_ms INTEGER NOT NULL
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE quarantine (
            id             INTEGER PRIMARY KEY,
            serial         TEXT    NOT NULL,
            journal_seq    INTEGER NOT NULL,
            reason         TEXT    NOT NULL,
            frame          BLOB    NOT NULL,
            message        TEXT    NOT NULL,
            received_at_ms INTEGER NOT NULL,
            UNIQUE (serial, journal_seq, frame)
        );
        """,
    ),
    (
        # the upload outbox (ratepad.agent.upload): ratings go by id after a cursor; prompts,
        # staff sessions and devices are queued by triggers, one outbox row per changed key
        # (a later change bumps its seq), and leave the outbox only once the server committed
        # the version that was sent. A device is queued when its state, faults, link, staff
        # or firmware change, not for every heartbeat (70 000 keypads would send thousands of
        # identical rows a second)
        3,
        """
        CREATE TABLE upload_cursor (
            stream  TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL
        );
        CREATE TABLE outbox (
            kind TEXT    NOT NULL CHECK (kind IN ('prompt', 'session', 'device')),
            key  TEXT    NOT NULL,
            seq  INTEGER NOT NULL,
            PRIMARY KEY (kind, key)
        );
        CREATE INDEX outbox_by_seq ON outbox (seq);
        CREATE TABLE staff_sessions (
            id            INTEGER PRIMARY KEY,
            serial        TEXT    NOT NULL,
            staff_id      TEXT    NOT NULL,
            started_at_ms INTEGER NOT NULL,
            ended_at_ms   INTEGER
        );
        CREATE TRIGGER outbox_prompt_new AFTER INSERT ON prompts BEGIN
            INSERT INTO outbox VALUES ('prompt', NEW.serial || ' ' || NEW.prompt_id,
                (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))
            ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq;
        END;
        CREATE TRIGGER outbox_prompt_changed AFTER UPDATE ON prompts BEGIN
            INSERT INTO outbox VALUES ('prompt', NEW.serial || ' ' || NEW.prompt_id,
                (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))
            ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq;
        END;
        CREATE TRIGGER outbox_device_new AFTER INSERT ON devices BEGIN
            INSERT INTO outbox VALUES ('device', NEW.serial,
                (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))
            ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq;
        END;
        CREATE TRIGGER outbox_device_changed AFTER UPDATE ON devices
        WHEN NEW.connected IS NOT OLD.connected OR NEW.state IS NOT OLD.state
            OR NEW.faults IS NOT OLD.faults OR NEW.staff_id IS NOT OLD.staff_id
            OR NEW.firmware IS NOT OLD.firmware BEGIN
            INSERT INTO outbox VALUES ('device', NEW.serial,
                (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))
            ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq;
        END;
        CREATE TRIGGER staff_session_change AFTER UPDATE OF staff_id ON devices
        WHEN NEW.staff_id IS NOT OLD.staff_id BEGIN
            UPDATE staff_sessions SET ended_at_ms = NEW.updated_at_ms
                WHERE serial = NEW.serial AND ended_at_ms IS NULL;
            INSERT INTO staff_sessions (serial, staff_id, started_at_ms)
                SELECT NEW.serial, NEW.staff_id, NEW.updated_at_ms
                WHERE COALESCE(NEW.staff_id, '') != '';
        END;
        CREATE TRIGGER outbox_session_new AFTER INSERT ON staff_sessions BEGIN
            INSERT INTO outbox VALUES ('session', NEW.id,
                (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))
            ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq;
        END;
        CREATE TRIGGER outbox_session_changed AFTER UPDATE ON staff_sessions BEGIN
            INSERT INTO outbox VALUES ('session', NEW.id,
                (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))
            ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq;
        END;
        """,
    ),
    (
        # items the server refused for good (422: it cannot take them, e.g. a newer agent's
        # field an older server rejects): kept here, whole, so that the rest of the outbox
        # moves on and nothing is lost (``ratepad export --rejected``)
        4,
        """
        CREATE TABLE upload_rejected (
            id             INTEGER PRIMARY KEY,
            kind           TEXT    NOT NULL,
            item           TEXT    NOT NULL,
            error          TEXT    NOT NULL,
            rejected_at_ms INTEGER NOT NULL
        );
        """,
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

RATING_COLUMNS = (
    "id",
    "serial",
    "journal_seq",
    "boot_id",
    "uptime_ms",
    "time_ms",
    "time_exact",
    "score",
    "key_count",
    "level",
    "level_value",
    "staff_id",
    "prompt_id",
    "flags",
    "flag_names",
    "received_at_ms",
)

# Dedupe on the key only: "ON CONFLICT (serial, journal_seq) DO NOTHING" ignores a stored
# rating sent again, like INSERT OR IGNORE, but unlike it does not also silently skip a row
# that breaks another constraint (NOT NULL, CHECK): such a row fails the batch, which then is
# not ACKed, instead of being dropped and ACKed.
INSERT_RATING = (
    "INSERT INTO ratings (serial, journal_seq, boot_id, uptime_ms, time_ms, time_exact,"
    " score, key_count, level, level_value, staff_id, prompt_id, flags, flag_names,"
    " received_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (serial, journal_seq) DO NOTHING"
)
ANSWER_PROMPT = (
    "INSERT INTO prompts (serial, prompt_id, staff_id, state, closed_at_ms, rating_seq)"
    " VALUES (?, ?, ?, 'answered', ?, ?)"
    " ON CONFLICT (serial, prompt_id) DO UPDATE SET state = 'answered',"
    " closed_at_ms = excluded.closed_at_ms, rating_seq = excluded.rating_seq"
)
ISSUE_PROMPT = (
    "INSERT INTO prompts (serial, prompt_id, staff_id, issued_at_ms, timeout_ms, state)"
    " VALUES (?, ?, ?, ?, ?, 'issued')"
    " ON CONFLICT (serial, prompt_id) DO UPDATE SET issued_at_ms = excluded.issued_at_ms,"
    " timeout_ms = excluded.timeout_ms, staff_id = excluded.staff_id, state = 'issued',"
    " closed_at_ms = NULL, rating_seq = NULL"  # issued again: the old answer is not this one's
)
# A rating that cannot be stored as a rating (a value out of range, a row the database refuses):
# kept raw with the reason, so that it can be ACKed and nothing is lost. The same frame sent
# again (the keypad resends until ACKed) is kept once.
QUARANTINE_RATING = (
    "INSERT INTO quarantine (serial, journal_seq, reason, frame, message, received_at_ms)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial, journal_seq, frame) DO NOTHING"
)
QUARANTINE_COLUMNS = ("id", "serial", "journal_seq", "reason", "frame", "message", "received_at_ms")
CLOSE_PROMPT = (
    "UPDATE prompts SET state = ?, closed_at_ms = ?"
    " WHERE serial = ? AND prompt_id = ? AND state = 'issued'"
)
EXPIRE_PROMPTS = (
    "UPDATE prompts SET state = 'timed_out', closed_at_ms = issued_at_ms + timeout_ms"
    " WHERE state = 'issued' AND issued_at_ms + timeout_ms + ? < ?"
)

# ratings after the upload cursor and outbox rows: what the server has not committed yet
UPLOAD_PENDING = (
    "SELECT (SELECT COUNT(*) FROM ratings WHERE id > COALESCE((SELECT last_id FROM"
    " upload_cursor WHERE stream = 'ratings'), 0)) + (SELECT COUNT(*) FROM outbox)"
)
