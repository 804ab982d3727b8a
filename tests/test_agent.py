"""The agent end to end over simulated keypads (sim://, in this process)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

import ratepad
from ratepad.agent import Agent, AgentConfig, Store
from ratepad.agent.store import Item, RatingItem, StoredRating
from ratepad.capture.pcapng import read_capture
from ratepad.cli.main import main
from ratepad.events import Rating

FAST = "debounce_ms=5&chord_ms=20&repeat_guard_ms=0&thanks_ms=200&status_ms=1000"


@pytest.fixture(autouse=True)
def fresh_keypads() -> Iterator[None]:
    ratepad.sim.reset()
    yield
    ratepad.sim.reset()


def until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def config(tmp_path: Path, *ids: str, **kw: object) -> AgentConfig:
    fields: dict[str, object] = {
        "devices": tuple(f"sim://{i}?{FAST}" for i in ids),
        "db": tmp_path / "r.db",
        "listen": None,
        "hello_check_s": 0.5,
    }
    fields.update(kw)
    return AgentConfig(**fields)  # type: ignore[arg-type]


def unacked(device: str) -> int:
    return int(ratepad.sim.get(device).keypad.core.journal.unacked())


def stored(agent: Agent) -> list[tuple[str, int, int]]:
    return sorted((r.serial, r.journal_seq, r.score) for r in agent.store.ratings(limit=None))


def connected(agent: Agent, n: int) -> None:
    until(lambda: sum(w.connected for w in agent.workers) == n, what="keypads connected")


class GatedStore(Store):
    """A store whose commits wait for the test to open the gate."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def apply(
        self, batch: Sequence[Item], received_at_ms: int | None = None
    ) -> list[StoredRating | None]:
        if any(isinstance(i, RatingItem) for i in batch):
            self.waiting.set()
            self.gate.wait()
        return super().apply(batch, received_at_ms)


def test_ratings_are_acked_only_after_commit(tmp_path: Path) -> None:
    gated = GatedStore(tmp_path / "r.db")
    with Agent(config(tmp_path, "G1"), store=gated) as agent:
        connected(agent, 1)
        ratepad.sim.get("G1").press(4)
        until(gated.waiting.is_set, what="a rating at the writer")
        time.sleep(0.3)  # the keypad got it, the writer holds it: nothing stored, nothing ACKed
        assert unacked("G1") == 1 and agent.store.count() == 0
        gated.gate.set()
        until(lambda: unacked("G1") == 0, what="the ACK after the commit")
        assert stored(agent) == [("G1", 1, 4)]


def test_ratings_from_several_keypads_land_exactly_once(tmp_path: Path) -> None:
    ids = ("M1", "M2", "M3")
    with Agent(config(tmp_path, *ids)) as agent:
        connected(agent, 3)
        for round_ in range(4):
            for n, i in enumerate(ids):
                ratepad.sim.get(i).press(1 + (round_ + n) % 5)
            time.sleep(0.25)
        until(lambda: agent.store.count() == 12, what="12 ratings")
        until(lambda: all(unacked(i) == 0 for i in ids), what="all ACKed")
        expected = [(i, r + 1, 1 + (r + n) % 5) for n, i in enumerate(ids) for r in range(4)]
        assert stored(agent) == sorted(expected)
        row = agent.store.ratings(limit=1)[0]
        assert row.time_exact and row.level_value is not None
        assert row.flag_names == ["unprompted", "no_staff"]


def test_lost_acks_mean_retransmissions_stored_once(tmp_path: Path) -> None:
    cfg = config(tmp_path, "R1", devices=(f"sim://R1?{FAST}&ack_timeout_ms=200",))
    with Agent(cfg) as agent:
        connected(agent, 1)
        worker = agent.workers[0]
        assert worker.keypad is not None
        real_confirm = worker.keypad.confirm
        dropped: list[int] = []

        def lossy(r: Rating) -> None:  # the first ACK of each rating is lost on the way
            if r.journal_seq not in dropped:
                dropped.append(r.journal_seq)
                return
            real_confirm(r)

        worker.keypad.confirm = lossy  # type: ignore[method-assign]
        for key in (2, 3, 5):
            ratepad.sim.get("R1").press(key)
            time.sleep(0.25)
        until(lambda: unacked("R1") == 0, what="ACKs after retransmission")
        assert stored(agent) == [("R1", 1, 2), ("R1", 2, 3), ("R1", 3, 5)]
        assert agent.writer.duplicates >= 3 and dropped == [1, 2, 3]


def test_replug_and_power_cycle_lose_nothing(tmp_path: Path) -> None:
    with Agent(config(tmp_path, "P1")) as agent:
        connected(agent, 1)
        kp = ratepad.sim.get("P1")
        kp.press(5)
        until(lambda: agent.store.count() == 1, what="first rating")
        time.sleep(0.3)  # past the thank-you (a press during it is a repeat)
        kp.disconnect()  # cable pulled: the customer still rates, the journal keeps it
        kp.press(1)
        time.sleep(0.3)
        assert agent.store.count() == 1 and unacked("P1") == 1
        kp.connect()
        until(lambda: agent.store.count() == 2, what="the rating made while unplugged")
        kp.power_cycle()
        time.sleep(0.05)
        kp.press(3)
        until(lambda: agent.store.count() == 3, what="the rating after a power cycle")
        until(lambda: unacked("P1") == 0, what="all ACKed")
        assert stored(agent) == [("P1", 1, 5), ("P1", 2, 1), ("P1", 3, 3)]
        rows = agent.store.ratings()
        assert rows[1].boot_id == rows[0].boot_id and rows[2].boot_id == rows[0].boot_id + 1


def test_prompt_through_the_agent(tmp_path: Path) -> None:
    with Agent(config(tmp_path, "Q1")) as agent:
        connected(agent, 1)
        agent.login("Q1", "S042", "Chen Jie")
        handle = agent.prompt("Q1", "S007", timeout=5)
        threading.Timer(0.1, lambda: ratepad.sim.get("Q1").press(4)).start()
        answer = agent.wait_answer("Q1", handle.prompt_id, 5)
        assert answer is not None
        assert (answer["score"], answer["staff_id"], answer["prompted"]) == (4, "S007", True)
        assert answer["level"] == "satisfied" and answer["flag_names"] == []
        until(lambda: (agent.store.prompt("Q1", handle.prompt_id) or {}).get("state") == "answered")
        time.sleep(0.3)  # past the thank-you
        ratepad.sim.get("Q1").press(2)  # unprompted: the logged-in staff member
        until(lambda: agent.store.count() == 2)
        assert agent.store.ratings()[1].staff_id == "S042"
        (summary,) = agent.store.summary()
        assert summary["prompts"] == 1 and summary["response_rate"] == 1.0
        with pytest.raises(ratepad.UnknownDeviceError):
            agent.prompt("NOPE")


def test_capture_records_every_link(tmp_path: Path) -> None:
    capture = tmp_path / "agent.pcapng"
    with Agent(config(tmp_path, "C1", "C2", capture=capture)) as agent:
        connected(agent, 2)
        ratepad.sim.get("C1").press(2)
        ratepad.sim.get("C2").press(3)
        until(lambda: unacked("C1") == 0 == unacked("C2") and agent.store.count() == 2)
    chunks = read_capture(capture)
    assert {(c.device, c.direction) for c in chunks} == {
        ("C1", "in"),
        ("C1", "out"),
        ("C2", "in"),
        ("C2", "out"),
    }


def test_capture_decodes_with_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "agent.pcapng"
    with Agent(config(tmp_path, "D1", capture=capture)) as agent:
        connected(agent, 1)
        ratepad.sim.get("D1").press(5)
        until(lambda: agent.store.count() == 1 and unacked("D1") == 0)
    main(["decode", str(capture), "--json"])
    frames = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    kinds = {(f.get("direction"), f.get("type")) for f in frames}
    assert {("in", "hello"), ("in", "rating"), ("out", "host_hello"), ("out", "ack")} <= kinds


def test_agent_keeps_trying_an_absent_keypad(tmp_path: Path) -> None:
    logs: list[str] = []
    cfg = config(tmp_path, "A1", devices=(f"sim://A1?{FAST}", "tcp://127.0.0.1:9/NOPE"))
    with Agent(cfg, log=logs.append) as agent:
        connected(agent, 1)
        until(lambda: any("cannot connect" in line for line in logs), what="a log line")
        absent = agent.workers[1]
        assert not absent.connected and absent.last_error
        ratepad.sim.get("A1").press(3)
        until(lambda: agent.store.count() == 1)


def test_demo_runs_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.db"
    assert main(["demo", "--seconds", "4", "--seed", "5", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "device     ratings  index" in out and "K1" in out and "K3" in out
    n = sum(1 for line in out.splitlines() if "/5 [" in line)
    assert n >= 1
    assert main(["export", "--db", str(db), "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == n
