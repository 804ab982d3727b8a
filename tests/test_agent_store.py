"""The agent's store: dedupe, batching, levels, prompts, status, schema; config; export."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from ratepad.agent import AgentConfig, ConfigError, LevelMapping, Store, StoreError, load_config
from ratepad.agent.config import parse_listen
from ratepad.agent.store import (
    SCHEMA_VERSION,
    DeviceSnapshot,
    PromptClosed,
    PromptIssued,
    StoreRowError,
)
from ratepad.agent.store import RatingItem as Item
from ratepad.agent.writer import Writer
from ratepad.cli.main import main
from ratepad.events import Connected, Rating, Status
from ratepad.wire import codec

F = codec.RatingFlags


def rating(seq: int, score: int = 5, serial: str = "K1", **kw: object) -> Rating:
    fields: dict[str, object] = {
        "serial": serial,
        "journal_seq": seq,
        "boot_id": 1,
        "uptime_ms": 1000 * seq,
        "time_ms": 1_800_000_000_000 + 1000 * seq,
        "time_exact": True,
        "score": score,
        "key_count": 5,
        "staff_id": "S001",
        "prompt_id": 0,
        "flags": F.UNPROMPTED,
    }
    fields.update(kw)
    return Rating(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "r.db")
    yield s  # type: ignore[misc]
    s.close()


def test_durability_settings(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.schema_version == SCHEMA_VERSION


def test_a_retransmitted_rating_is_stored_once(store: Store) -> None:
    first = store.apply([Item(rating(1)), Item(rating(2))])
    assert [r.journal_seq if r else None for r in first] == [1, 2]
    again = store.apply([Item(rating(2, retransmit=True)), Item(rating(3))])
    assert again[0] is None and again[1] is not None
    assert [r.journal_seq for r in store.ratings()] == [1, 2, 3]
    # the same seq on another keypad is another rating
    assert store.apply([Item(rating(1, serial="K2"))])[0] is not None
    assert store.count() == 4 and store.count("K2") == 1


def test_one_transaction_per_batch_and_rollback(store: Store) -> None:
    rows = store.apply([Item(rating(i, 1 + i % 5)) for i in range(1, 1001)])
    assert all(rows) and store.count() == 1000
    refuse_seq(store, 2000)  # the database refuses the second item of the batch
    with pytest.raises(StoreRowError) as refused:
        store.apply([Item(rating(1001)), Item(rating(2000))])
    assert refused.value.index == 1
    assert store.count() == 1000  # nothing of the failed batch


def refuse_seq(store: Store, seq: int) -> None:
    """A trigger that makes the database refuse the rating with journal seq ``seq``."""
    with sqlite3.connect(store.path) as conn:
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON ratings WHEN NEW.journal_seq = {seq}"
            " BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
        )


def test_levels_and_flags(store: Store) -> None:
    store.apply(
        [
            Item(rating(1, 5)),
            Item(rating(2, 1, flags=F.UNPROMPTED | F.NO_STAFF)),
            Item(rating(3, 4, key_count=4)),
            Item(rating(4, 2, key_count=3)),
            Item(rating(5, 0, flags=F.DAMAGED)),
        ]
    )
    got = [(r.level, r.level_value, r.flag_names) for r in store.ratings()]
    assert got == [
        ("very_satisfied", 100, ["unprompted"]),
        ("very_dissatisfied", 0, ["unprompted", "no_staff"]),
        ("very_satisfied", 100, ["unprompted"]),
        ("neutral", 60, ["unprompted"]),
        (None, None, ["damaged"]),
    ]
    m = LevelMapping.from_config({"5": [0, 25, 50, 75, 100]})
    level = m.level(2, 5)
    assert level is not None and (level.name, level.value) == ("dissatisfied", 25)
    with pytest.raises(ValueError, match="needs 4 values"):
        LevelMapping.from_config({"4": [0, 1, 2]})
    with pytest.raises(ValueError, match="3, 4 or 5"):
        LevelMapping.from_config({"7": [1] * 7})


def test_prompts_and_response_rate(store: Store) -> None:
    store.apply(
        [
            PromptIssued("K1", 11, "S001", 30_000, 1_000),
            PromptIssued("K1", 12, "S001", 30_000, 2_000),
            PromptIssued("K1", 13, "S001", 30_000, 3_000),
            PromptIssued("K1", 14, "S001", 30_000, 4_000),
        ]
    )
    store.apply([Item(rating(1, 4, prompt_id=11, flags=F(0)))])
    store.apply([PromptClosed("K1", 12, "cancelled", 5_000)])
    assert store.expire_prompts(now=38_500) == 1  # 13 is past 3 s + 30 s + 5 s grace; 14 not
    # a rating that answers a prompt after it timed out still counts
    store.apply([Item(rating(2, 5, prompt_id=13, flags=F(0)))])
    state = {p: store.prompt("K1", p)["state"] for p in (11, 12, 13, 14)}  # type: ignore[index]
    assert state == {11: "answered", 12: "cancelled", 13: "answered", 14: "issued"}
    (summary,) = store.summary()
    assert summary["prompts"] == 3 and summary["answered"] == 2
    assert summary["satisfaction_index"] == 90.0 and summary["response_rate"] == 0.667


def test_latest_device_snapshot(store: Store) -> None:
    hello = Connected("K1", "0.1.0", "sim", 5, 1, 0, True, 3, 10, 20000, 0, 0)
    status = Status(
        "K1", codec.DeviceState.IDLE, codec.Faults.STUCK_KEY, 1, 0, 2, 7, 1, 0, 0, 1, 0, "S001", 5
    )
    store.apply([DeviceSnapshot("K1", "sim://K1", True, hello=hello)])
    store.apply([DeviceSnapshot("K1", "sim://K1", True, status=status)])
    store.apply([DeviceSnapshot("K1", "sim://K1", False)])
    d = store.devices()["K1"]
    assert (d["connected"], d["firmware"], d["boot_id"], d["state"]) == (False, "0.1.0", 3, "idle")
    assert (d["faults"], d["unacked"], d["presses"]) == (["stuck_key"], 2, 7)


def test_schema_version_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    Store(path).close()
    Store(path).close()  # reopening migrates nothing
    conn = sqlite3.connect(path)
    versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="version 99"):
        Store(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(junk)
    with pytest.raises(StoreError, match="no store"):
        Store(tmp_path / "missing.db", read_only=True)


class FakeKeypad:
    """Records confirms; checks that each confirmed rating is already committed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.confirmed: list[int] = []
        self.lock = threading.Lock()

    def confirm(self, r: Rating) -> None:
        committed = self.store.rating_by_seq(r.serial, r.journal_seq)  # as a reader sees it
        assert committed is not None, "ACK before commit"
        with self.lock:
            self.confirmed.append(r.journal_seq)


def test_writer_batches_commits_then_confirms(store: Store) -> None:
    kp = FakeKeypad(store)
    writer = Writer(store, batch_max=100)
    for seq in range(1, 501):
        writer.submit(Item(rating(seq), kp))
    writer.submit(Item(rating(7, retransmit=True), kp))  # duplicate: confirmed again
    writer.start()
    writer.stop()
    assert store.count() == 500
    assert sorted(kp.confirmed) == sorted([*range(1, 501), 7])
    assert writer.batches >= 5 and writer.duplicates == 1 and writer.stored == 500


def test_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        'devices = ["sim://K1", "tcp://127.0.0.1:7000/K2"]\ndb = "data/r.db"\n'
        'listen = "127.0.0.1:9000"\ntoken = "0123456789abcdef0123"\ncapture = "c.pcapng"\n'
        "[mapping]\n3 = [0, 50, 100]\n[batch]\nmax_ratings = 50\nmax_ms = 5\n"
        "[link]\nstall_s = 3\n"
    )
    c = load_config(cfg)
    assert c.devices == ("sim://K1", "tcp://127.0.0.1:7000/K2")
    assert c.db == tmp_path / "data" / "r.db" and c.capture == tmp_path / "c.pcapng"
    assert c.listen == ("127.0.0.1", 9000) and c.batch_max == 50 and c.stall_s == 3
    assert c.mapping.values[3] == (0, 50, 100) and c.mapping.values[5] == (0, 40, 60, 80, 100)
    assert c.token_file == tmp_path / "data" / "r.db.token"
    for text, error in [
        ("devices = 3", "list of keypad URLs"),
        ("colour = 1", "unknown setting 'colour'"),
        ('listen = "0.0.0.0:80"', "loopback"),
        ('token = "short"', "16..256"),
        (
            "[batch]\nmax_ratings = 0",
            r"\[batch\]: max_ratings must be a whole number from 1 to 100000",
        ),
        (
            "[batch]\nmax_rating = 5",
            r"\[batch\]: unknown setting 'max_rating' \(known: max_ms, max_ratings\)",
        ),
        ("[link]\nstall_s = true", r"\[link\]: stall_s must be a number from 0.5 to 86400"),
        ("link = 3", "link must be a table"),
        ("[mapping]\n5 = [1, 2]", "needs 5 values"),
        ("devices = [", "not valid TOML"),
    ]:
        cfg.write_text(text)
        with pytest.raises(ConfigError, match=error):
            load_config(cfg)
    assert parse_listen("off") is None and parse_listen("[::1]:80") == ("::1", 80)
    assert parse_listen("localhost:0") == ("127.0.0.1", 0)
    assert AgentConfig().listen == ("127.0.0.1", 8765)


def test_export_json_csv_text(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store.apply([Item(rating(1, 4)), Item(rating(2, 2, staff_id='S,2"x'))])
    db = str(store.path)
    assert main(["export", "--db", db, "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["journal_seq"], x["score"], x["level_value"]) for x in lines] == [
        (1, 4, 80),
        (2, 2, 40),
    ]
    assert lines[0]["flag_names"] == ["unprompted"] and lines[0]["time"].endswith("Z")
    assert main(["export", "--db", db, "--csv"]) == 0
    import csv

    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(rows) == 2 and rows[1]["staff_id"] == 'S,2"x' and rows[0]["level"] == "satisfied"
    assert main(["export", "--db", db]) == 0
    assert "satisfied" in capsys.readouterr().out
    assert main(["export", "--db", db, "--serial", "NOPE", "--json"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "--db", "/nonexistent/r.db"], "no store"),
        (["export", "--json", "--csv"], "not allowed with"),
        (["agent", "--db", "DB"], "no keypads"),
        (["agent", "--device", "sim://K1", "--listen", "0.0.0.0:1", "--db", "DB"], "loopback"),
        (["agent", "--device", "bogus://x", "--db", "DB", "--listen", "off"], "unknown transport"),
        (["agent", "--config", "/nonexistent.toml"], "cannot read"),
        (["demo", "--seconds", "0"], "1 to 86400"),
    ],
)
def test_cli_bad_input_exits_2(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(tmp_path / "r.db") if a == "DB" else a for a in argv]
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse errors
        status = int(exc.code or 0)
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_different_rating_under_a_stored_key_is_kept_apart(store: Store) -> None:
    store.apply([Item(rating(1, 5)), Item(rating(2, 4))])
    # the keypad's journal was wiped: seq 1 again, but another press (other boot, other score)
    again = store.apply([Item(rating(1, 2, boot_id=9)), Item(rating(2, 4, retransmit=True))])
    assert again == [None, None] and store.count() == 2
    (conflict,) = store.conflicting()
    assert (conflict["journal_seq"], conflict["score"], conflict["boot_id"]) == (1, 2, 9)
    assert conflict["existing_id"] == store.ratings()[0].id
    store.apply([Item(rating(1, 2, boot_id=9))])  # sent again: kept once
    assert len(store.conflicting()) == 1 and store.conflicts == 1


def test_a_store_written_by_an_earlier_agent_opens_without_loss(tmp_path: Path) -> None:
    """An agent upgraded in place opens the store its earlier version wrote (schema 4, written
    by ratepad before the store became a package: ratings, a conflict, a quarantined rating,
    prompts, a keypad with its staff session, an upload cursor, the outbox, a rejected upload),
    reads everything back as it was, uploads the rest in the same wire format and stores on."""
    import gzip

    from ratepad.agent.store import Outbox, StoredRating

    db = tmp_path / "old.db"
    db.write_bytes(
        gzip.decompress((Path(__file__).parent / "data/agent-store-schema4.db.gz").read_bytes())
    )
    with Store(db) as s:
        assert s.schema_version == 4
        got = [(r.id, r.serial, r.journal_seq, r.score, r.level, r.flag_names) for r in s.ratings()]
        assert got == [
            (1, "K1", 1, 5, "very_satisfied", ["unprompted"]),
            (2, "K1", 2, 3, "neutral", []),
            (3, "K1", 3, 1, "very_dissatisfied", ["unprompted", "multi_key"]),
            (4, "K2", 5, 2, "dissatisfied", ["unprompted"]),
        ]
        second = s.rating(2)
        assert second is not None and second.as_json()["time"] == "2027-01-15T08:00:02.000Z"
        assert not second.time_exact and second.prompted
        assert s.prompt("K1", 7)["state"] == "answered"  # type: ignore[index]
        assert s.devices()["K1"]["staff_id"] == "S001"
        assert [q["reason"] for q in s.quarantined()] == ["score 9 outside 0..5"]
        assert [c["existing_id"] for c in s.conflicting()] == [2]
        [rejected] = s.rejected()
        assert s.upload_pending() == 3  # rating 4 and two outbox rows
        # the upload wire format is the earlier agent's, to the key
        outbox = Outbox(db)
        assert [r.id for r in outbox.next_ratings(10)] == [4]
        items = outbox.next_items(10)
        assert [(kind, key) for kind, key, _, _ in items] == [
            ("prompt", "K1 7"),
            ("prompt", "K1 8"),
        ]
        assert items[0][3] == {
            "serial": "K1",
            "prompt_id": 7,
            "staff_id": "S001",
            "state": "answered",
            "issued_at_ms": 1_800_000_001_000,
            "timeout_ms": 30_000,
            "closed_at_ms": 1_800_000_003_000,
            "rating_seq": 2,
        }
        outbox.close()
        third = s.rating(3)
        assert third is not None and third.upload_json() == rejected["item"]
        # the same tables, columns, indexes and triggers as a store created today
        assert _shape(db) == _shape(tmp_path / "new.db")
        # and it stores on, after what it had
        [row] = s.apply([Item(rating(6, serial="K2"))])
        assert isinstance(row, StoredRating) and row.id == 5
        assert s.count() == 5 and s.upload_pending() == 4


def _shape(db: Path) -> dict[str, object]:
    """Every table's columns (name, type, not null, default, key) and the index and trigger
    names of the store at ``db`` (created if missing)."""
    Store(db).close()
    conn = sqlite3.connect(db)
    try:
        names = conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
        return {
            f"{kind} {name}": conn.execute(f"PRAGMA table_info({name})").fetchall()
            if kind == "table"
            else kind
            for kind, name in names
        }
    finally:
        conn.close()


def test_the_rating_record_places_each_field_once() -> None:
    from ratepad.agent.store import RATING_FIELDS, UPLOAD_FIELDS

    assert [f.shown for f in RATING_FIELDS] == list(range(1, len(RATING_FIELDS) + 1))
    # what the server's ingest takes: every field but the store's own
    local = {"id", "level", "flag_names", "received_at_ms", "time", "prompted"}
    assert set(UPLOAD_FIELDS) == {f.name for f in RATING_FIELDS} - local
