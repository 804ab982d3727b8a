"""Poison frames: no value a keypad can send stops the agent from storing.

Every numeric field of a rating frame at its limits goes through the real host session (the
frame decoded as the agent decodes it), the real writer and a real SQLite store: each rating is
either stored as a rating or kept raw in the quarantine table, ACKed only after its commit, and
the writer goes on storing what comes next. End to end, a keypad served over TCP sends a rating
with ``epoch_ms`` = 2**63 (legal on the wire, beyond SQLite's INTEGER) to a running agent.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ratepad.agent import Agent, AgentConfig, Store
from ratepad.agent.store import DeviceSnapshot, RatingItem, StoreRowError
from ratepad.agent.writer import Writer
from ratepad.cli.main import main
from ratepad.events import Rating
from ratepad.wire import codec
from ratepad.wire.session import Session
from ratepad.wire.stream import StreamDecoder

U8, U32, U64 = 0xFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF
F = codec.RatingFlags

GOOD: dict[str, Any] = {
    "journal_seq": 1,
    "boot_id": 7,
    "uptime_ms": 5_000,
    "epoch_ms": 1_800_000_000_000,
    "score": 4,
    "key_count": 5,
    "prompt_id": 0,
    "flags": F.UNPROMPTED,
    "staff_id": "S001",
}

# (field, value, stored as a rating?) for every numeric field of the rating message at its
# limits; epoch_ms's all-ones value means "none" on the wire and cannot be sent as a time.
LIMITS: list[tuple[str, int | None, bool]] = [
    ("journal_seq", 1, True),
    ("journal_seq", U32, True),
    ("boot_id", 0, True),
    ("boot_id", U32, True),
    ("uptime_ms", 0, True),
    ("uptime_ms", U32, True),
    ("epoch_ms", None, True),
    ("epoch_ms", 0, True),
    ("epoch_ms", 2**63 - 1, False),
    ("epoch_ms", 2**63, False),
    ("epoch_ms", U64 - 1, False),
    ("score", 0, True),
    ("score", U8, False),
    ("key_count", 0, False),
    ("key_count", U8, True),
    ("prompt_id", U32, True),
    ("flags", U8, True),
]


def hello_frame(serial: str = "P1", acked_seq: int = 0) -> bytes:
    fields = {
        "protocol_version": codec.PROTOCOL_VERSION,
        "schema_fingerprint": codec.SCHEMA_FINGERPRINT,
        "key_count": 5,
        "capabilities": [],
        "journal_capacity": 20_000,
        "journal_used": 0,
        "boot_count": 7,
        "uptime_ms": 4_000,
        "serial": serial,
        "firmware_version": "1.0.0",
        "board": "pico",
        "acked_seq": acked_seq,
    }
    return codec.encode_frame("hello", fields, seq=1, flags=codec.HeaderFlags.RESPONSE)


def rating_frame(seq: int, **changes: Any) -> bytes:
    values = {**GOOD, "journal_seq": seq, **changes}
    return codec.encode(codec.Rating(**values), seq & 0xFFFF)


def ratings_from(session: Session, data: bytes) -> list[Rating]:
    session.receive_data(data)
    out = []
    while (event := session.next_event()) is not None:
        if isinstance(event, Rating):
            out.append(event)
    return out


class RecordingKeypad:
    """Stands for ratepad.Keypad.confirm (ratepad/keypad.py): records each ACK and checks that
    what it ACKs is committed (as a rating or in quarantine) before."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.acked: list[int] = []

    def confirm(self, rating: Rating) -> None:
        committed = {r.journal_seq for r in self.store.ratings(limit=None)}
        committed |= {q["journal_seq"] for q in self.store.quarantined()}
        assert rating.journal_seq in committed, "ACK before commit"
        self.acked.append(rating.journal_seq)


def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "r.db")
    yield s
    s.close()


def test_every_numeric_field_at_its_limits(store: Store) -> None:
    session = Session(clock=lambda: 1_800_000_000_000)
    session.open()
    ratings_from(session, hello_frame())
    keypad = RecordingKeypad(store)
    writer = Writer(store, batch_ms=1)
    writer.start()
    expected_rows, expected_quarantine = [], []
    for n, (name, value, storable) in enumerate(LIMITS, start=10):
        seq = value if name == "journal_seq" and isinstance(value, int) else n
        (rating,) = ratings_from(session, rating_frame(seq, **{name: value}))
        writer.submit(RatingItem(rating, keypad))
        (expected_rows if storable else expected_quarantine).append(seq)
    # and the writer goes on storing
    (after,) = ratings_from(session, rating_frame(999))
    writer.submit(RatingItem(after, keypad))
    until(lambda: len(keypad.acked) == len(LIMITS) + 1, what="every rating ACKed")
    writer.stop()
    assert writer.alive is False and writer.failure is None  # stopped, not died
    assert sorted(keypad.acked) == sorted([*expected_rows, *expected_quarantine, 999])
    assert sorted(r.journal_seq for r in store.ratings(limit=None)) == sorted([*expected_rows, 999])
    quarantined = store.quarantined()
    assert sorted(q["journal_seq"] for q in quarantined) == sorted(expected_quarantine)
    for q in quarantined:
        assert q["reason"]
        # the frame as received: it decodes to the very message the keypad sent
        _, message = codec.decode_frame(bytes.fromhex(q["frame"]))
        assert message.journal_seq == q["journal_seq"]
        assert json.loads(q["message"])["journal_seq"] == q["journal_seq"]
    reasons = {json.loads(q["message"])["epoch_ms"]: q["reason"] for q in quarantined}
    assert reasons[2**63].startswith("time_ms 9223372036854775808 outside")


def test_the_same_poison_frame_again_is_kept_once(store: Store) -> None:
    session = Session(clock=lambda: 1_800_000_000_000)
    session.open()
    ratings_from(session, hello_frame())
    poison = rating_frame(5, epoch_ms=2**63)
    for _ in range(3):  # the keypad resends it after every reconnect until ACKed
        (rating,) = ratings_from(session, poison)
        store.apply([RatingItem(rating)])
    assert len(store.quarantined()) == 1 and store.count() == 0


def test_a_batch_the_database_refuses_is_retried_item_by_item(store: Store) -> None:
    with sqlite3.connect(store.path) as conn:  # a row the database refuses, whatever the cause
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON ratings WHEN NEW.journal_seq = 3"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    session = Session(clock=lambda: 1_800_000_000_000)
    session.open()
    ratings_from(session, hello_frame())
    keypad = RecordingKeypad(store)
    writer = Writer(store, batch_ms=200)
    batch = [RatingItem(ratings_from(session, rating_frame(s))[0], keypad) for s in range(1, 6)]
    with pytest.raises(StoreRowError):
        store.apply(batch)
    lines: list[str] = []
    writer.log = lines.append
    writer.commit([*batch, DeviceSnapshot("P1", "tcp://x:1/P1", True)])
    assert [r.journal_seq for r in store.ratings()] == [1, 2, 4, 5]
    assert [q["journal_seq"] for q in store.quarantined()] == [3]
    assert "refused" in store.quarantined()[0]["reason"]
    assert sorted(keypad.acked) == [1, 2, 3, 4, 5]
    assert any("one by one" in line for line in lines)


def test_a_writer_that_dies_is_reported_and_ends_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    go = threading.Event()

    def broken(self: Writer) -> None:  # a bug in the writer loop, whatever it may be
        go.wait(10)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Writer, "_loop", broken)
    config = AgentConfig(devices=("sim://WD1",), db=tmp_path / "r.db", listen=None)
    with Agent(config) as agent:
        sub = agent.hub.subscribe()
        assert agent.health()["ok"] is True
        go.set()
        until(lambda: not agent.writer.alive, what="the writer to stop")
        health = agent.health()
        assert health["ok"] is False and "disk on fire" in str(health["writer"])
        kinds = []
        while (event := sub.get(1.0)) is not None and event.kind != "health":
            kinds.append(event.kind)
        assert event is not None and event.data["ok"] is False, kinds
    go.set()
    code = main(
        ["agent", "--db", str(tmp_path / "s.db"), "--device", "sim://WD2", "--listen", "off"]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "writer stopped (RuntimeError: disk on fire): exiting" in out


class PoisonKeypad:
    """A keypad served over TCP the way ``ratepad sim --serve`` serves one (handshake
    ``RATEPAD <ID>``, ``OK``; ratepad/transports/tcp.py), that sends a hello and then, on the
    host's host_hello, one rating with epoch_ms = 2**63 and one good rating; records ACKs."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.acks: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        buf = b""
        while b"\n" not in buf:
            buf += conn.recv(100)
        conn.sendall(b"OK\n")
        decoder = StreamDecoder()
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            if not data:
                return
            for item in decoder.feed(data):
                message = getattr(item, "message", None)
                if isinstance(message, codec.HostHello):
                    acked = max(self.acks, default=0)
                    conn.sendall(
                        hello_frame("TP1", acked)
                        + rating_frame(1, epoch_ms=2**63)
                        + rating_frame(2)
                    )
                elif isinstance(message, codec.Ack):
                    self.acks.append(message.journal_seq)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


def test_a_running_agent_quarantines_a_poison_rating_and_goes_on(tmp_path: Path) -> None:
    keypad = PoisonKeypad()
    try:
        url = f"tcp://127.0.0.1:{keypad.port}/TP1"
        config = AgentConfig(devices=(url,), db=tmp_path / "r.db", listen=None)
        with Agent(config) as agent:
            until(lambda: 2 in keypad.acks, what="both ratings ACKed")
            assert agent.writer.alive and agent.health()["ok"] is True
            assert [r.journal_seq for r in agent.store.ratings()] == [2]
            (q,) = agent.store.quarantined()
            assert q["serial"] == "TP1" and q["journal_seq"] == 1
            assert "time_ms" in q["reason"]
            sent = codec.decode_frame(rating_frame(1, epoch_ms=2**63))[1]
            assert codec.decode_frame(bytes.fromhex(q["frame"]))[1] == sent
    finally:
        keypad.close()
