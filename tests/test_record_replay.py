"""`ratepad record URL` and `ratepad replay FILE`: a keypad link on file, and played back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ratepad
from ratepad.capture.pcapng import CaptureWriter, read_capture
from ratepad.capture.replay import ReplayTransport
from ratepad.cli.capture import RecordTap, replay_url
from ratepad.cli.main import main
from ratepad.errors import EndOfCapture
from ratepad.transports import open_transport, to_reports
from ratepad.wire import codec

FAST = {"debounce_ms": 5, "chord_ms": 20}


@pytest.fixture(autouse=True)
def fresh_sims() -> Iterator[None]:
    ratepad.sim.reset()
    yield
    ratepad.sim.reset()


class VirtualTime:
    """The replay player's clock on virtual time: ``sleep`` moves ``monotonic`` on (by at least
    a microsecond: the player's last stretch before a chunk is a loop of ``sleep(0)``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 1e-6)

    def __getattr__(self, name: str) -> Any:  # the rest of ``time``: the real one
        return getattr(time, name)


@pytest.fixture
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> VirtualTime:
    """The player (``capture/replay.py``) and ``ratepad replay`` on virtual time."""
    import ratepad.capture.replay
    import ratepad.cli.capture

    clock = VirtualTime()
    monkeypatch.setattr(ratepad.capture.replay, "time", clock)
    monkeypatch.setattr(ratepad.cli.capture, "time", clock)
    return clock


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def hello_frame(serial: str = "K9", seq: int = 1) -> bytes:
    return codec.encode(
        codec.Hello(
            protocol_version=codec.PROTOCOL_VERSION,
            schema_fingerprint=codec.SCHEMA_FINGERPRINT,
            key_count=5,
            capabilities=codec.Capabilities(0),
            journal_capacity=1000,
            journal_used=0,
            boot_count=1,
            uptime_ms=100,
            serial=serial,
            firmware_version="0.1.0",
            board="test",
            acked_seq=0,
        ),
        seq,
        codec.HeaderFlags.RESPONSE,
    )


def rating_frame(journal_seq: int, score: int = 3) -> bytes:
    return codec.encode(
        codec.Rating(
            journal_seq=journal_seq,
            boot_id=1,
            uptime_ms=1000 + journal_seq,
            epoch_ms=1_790_000_000_000 + journal_seq,
            score=score,
            key_count=5,
            prompt_id=0,
            flags=codec.RatingFlags.UNPROMPTED,
            staff_id="S001",
        ),
        (journal_seq + 1) & 0xFFFF,
    )


def write_timed_capture(path: Path, chunks: int = 50, gap_us: int = 20_000) -> None:
    """A hello, then one rating per 64-byte report, ``gap_us`` apart (plus one host frame)."""
    t0 = 1_790_000_000_000_000
    with CaptureWriter(path) as w:
        w.write("K9", "out", codec.encode(codec.Ack(0), 1), t0)
        w.write("K9", "in", to_reports(hello_frame())[0], t0)
        for i in range(1, chunks):
            w.write("K9", "in", to_reports(rating_frame(i))[0], t0 + i * gap_us)


# --- record -------------------------------------------------------------------------------------
def record_sim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """Record sim://R1 for ~1 s with one press of key 4; (capture, stdout)."""
    kp = ratepad.sim.get("R1", FAST)
    out = tmp_path / "rec.pcapng"
    presser = threading.Timer(0.4, kp.press, args=(4,))
    presser.start()
    try:
        rc = main(["record", "sim://R1", "--out", str(out), "--seconds", "1", "--json"])
    finally:
        presser.cancel()
    assert rc == 0
    return out, capsys.readouterr().out


def test_record_writes_both_directions_and_prints_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, stdout = record_sim(tmp_path, capsys)
    events = json_lines(stdout)
    assert events[0]["event"] == "connected" and events[0]["serial"] == "R1"
    ratings = [e for e in events if e["event"] == "rating"]
    # one rating (shown again if the keypad resent it: `record` does not ACK)
    assert {(r["score"], r["seq"]) for r in ratings} == {(4, 1)}

    chunks = read_capture(out)
    assert {c.direction for c in chunks} == {"in", "out"}
    assert {c.device for c in chunks} == {"R1"}  # the keypad's serial, from its hello
    stamps = [c.timestamp_us for c in chunks]
    assert stamps == sorted(stamps)
    assert abs(stamps[0] / 1e6 - time.time()) < 60  # wall-clock timestamps

    decoded = run("decode", str(out), "--json")
    assert decoded.returncode == 0, decoded.stderr
    frames = json_lines(decoded.stdout)
    assert any(f["type"] == "host_hello" and f["direction"] == "out" for f in frames)
    assert any(f["type"] == "hello" and f["direction"] == "in" for f in frames)
    rating = [f for f in frames if f["type"] == "rating"]
    assert rating and {(r["score"], r["direction"]) for r in rating} == {(4, "in")}
    assert not any(f["type"] == "ack" for f in frames)  # record never ACKs


def test_record_stops_on_ctrl_c_and_keeps_the_capture(tmp_path: Path) -> None:
    out = tmp_path / "ctrlc.pcapng"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ratepad", "record", "sim://C1", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a Ctrl-C as a terminal gives it, whatever this test process inherited (an ignored
        # SIGINT would be ignored by the child too)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out.exists() and read_capture(out)):
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "connected" in stdout and "Traceback" not in stderr
    assert f"# wrote {out}" in stderr
    assert {c.direction for c in read_capture(out)} == {"in", "out"}


def test_record_tap_names_the_device_late_or_falls_back(tmp_path: Path) -> None:
    tap = RecordTap(tmp_path / "a.pcapng", "sim://X")
    tap.record("ignored", "out", b"\x01\x00")
    tap.name_device("SN-1")
    tap.record("ignored", "in", b"\x02\x00")
    tap.close()
    assert [(c.device, c.direction) for c in read_capture(tmp_path / "a.pcapng")] == [
        ("SN-1", "out"),
        ("SN-1", "in"),
    ]
    tap = RecordTap(tmp_path / "b.pcapng", "sim://X")
    tap.record("ignored", "out", b"\x01\x00")
    tap.close()  # never said hello
    assert [c.device for c in read_capture(tmp_path / "b.pcapng")] == ["sim://X"]


def test_record_unreachable_keypad_is_one_line_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "none.pcapng"
    result = run("record", "tcp://127.0.0.1:1/K1", "--out", str(out))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not out.exists()  # nothing crossed the link: no empty capture left behind


# --- replay -------------------------------------------------------------------------------------
def test_replay_as_fast_as_possible_gives_the_same_rating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, stdout = record_sim(tmp_path, capsys)
    live = [e for e in json_lines(stdout) if e["event"] == "rating"]

    assert main(["replay", str(out), "--json"]) == 0
    lines = json_lines(capsys.readouterr().out)
    summary = lines[-1]["summary"]
    events = lines[:-1]
    replayed = [
        {k: v for k, v in e.items() if k != "timestamp_us"}
        for e in events
        if e["event"] == "rating"
    ]
    assert replayed == live
    assert events[0]["event"] == "connected" and events[0]["serial"] == "R1"
    assert summary["device"] == "R1" and summary["speed"] == 0
    # (a resend of the unACKed rating at the end of the recording may be replayed too)
    assert summary["events"] == len(events) and summary["by_kind"]["rating"] >= 1
    assert summary["frames"] >= summary["events"] and summary["bad_spans"] == 0
    assert "lateness_ms" not in summary  # only for timed replay (its speed: bench_replay.py)


def test_replay_text_output_and_summary_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.pcapng"
    write_timed_capture(path, chunks=5, gap_us=1000)
    assert main(["replay", str(path)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[1] == "connected"
    assert sum(" rating " in line and "score=3/5" in line for line in lines) == 4
    assert captured.err.startswith("# replayed K9: 5 chunks")
    assert "4 frames" not in captured.err and "5 frames" in captured.err


def test_timed_replay_is_on_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], virtual_time: VirtualTime
) -> None:
    path = tmp_path / "timed.pcapng"
    write_timed_capture(path, chunks=50, gap_us=20_000)  # 0.98 s from first to last
    started = virtual_time.now
    assert main(["replay", str(path), "--speed", "1", "--json"]) == 0
    took = virtual_time.now - started
    lines = json_lines(capsys.readouterr().out)
    summary = lines[-1]["summary"]
    assert summary["chunks"] == 50 and summary["frames"] == 50
    assert summary["by_kind"] == {"connected": 1, "rating": 49}
    late = summary["lateness_ms"]
    assert set(late) >= {"median", "max"} and 0 <= late["median"] <= late["max"] <= 0.01, late
    # on virtual time: the capture's own 0.98 s (a real machine's lateness: bench_replay.py)
    assert 0.98 <= took < 0.99, took
    assert 0.98 <= summary["duration_s"] < 0.99
    stamps = [e["timestamp_us"] for e in lines[:-1]]
    assert stamps == sorted(stamps)


def test_timed_replay_speed_scales_the_timing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], virtual_time: VirtualTime
) -> None:
    path = tmp_path / "fast.pcapng"
    write_timed_capture(path, chunks=21, gap_us=20_000)  # 0.4 s at speed 1
    started = virtual_time.now
    assert main(["replay", str(path), "--speed", "4", "--json"]) == 0
    took = virtual_time.now - started
    summary = json_lines(capsys.readouterr().out)[-1]["summary"]
    assert 0.1 <= took < 0.11, took  # 0.4 s of capture at 4x
    assert summary["speed"] == 4 and "median" in summary["lateness_ms"]


def test_replay_transport_lateness_directly(tmp_path: Path, virtual_time: VirtualTime) -> None:
    path = tmp_path / "direct.pcapng"
    write_timed_capture(path, chunks=50, gap_us=20_000)
    transport = open_transport(replay_url(path, speed=1.0))
    assert isinstance(transport, ReplayTransport)
    transport.open()
    got = 0
    try:
        while True:
            if transport.read(0.2):
                got += 1
    except EndOfCapture:
        pass
    assert got == 50 and len(transport.lateness) == 50
    assert max(transport.lateness) <= 0.00001  # due, then handed out (on virtual time)
    assert transport.device == "K9"


def test_replay_picks_the_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.pcapng"
    with CaptureWriter(path) as w:
        w.write("A", "in", hello_frame("A"), 1)
        w.write("B", "in", hello_frame("B") + rating_frame(7, 5), 2)
    assert main(["replay", str(path), "--device", "B", "--json"]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [e["serial"] for e in lines[:-1]] == ["B", "B"]
    assert lines[1]["score"] == 5 and lines[-1]["summary"]["device"] == "B"


def test_replay_url_survives_odd_file_names(tmp_path: Path) -> None:
    path = tmp_path / "a b?c#d%20.pcapng"
    write_timed_capture(path, chunks=2, gap_us=1)
    transport = open_transport(replay_url(path, device="K9", speed=0))
    assert isinstance(transport, ReplayTransport)
    transport.open()
    assert transport.read(0.1).startswith(hello_frame()[:10])


@pytest.mark.parametrize(
    ("make", "args", "says"),
    [
        (None, (), "no such file"),
        (b"\x0a\x0d\x0d\x0a" + b"\xff" * 40, (), "pcapng"),
        (b"hello, not a capture", (), "pcapng"),
        ("timed", ("--device", "NOPE"), "devices: K9"),
        ("timed", ("--speed", "-1"), "--speed"),
        ("timed", ("--speed", "fast"), "--speed"),
    ],
)
def test_replay_bad_input_is_one_line_exit_2(
    tmp_path: Path, make: bytes | str | None, args: tuple[str, ...], says: str
) -> None:
    path = tmp_path / "x.pcapng"
    if make == "timed":
        write_timed_capture(path, chunks=3)
    elif isinstance(make, bytes):
        path.write_bytes(make)
    result = run("replay", str(path), *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and says in result.stderr


def test_replay_of_a_capture_without_keypad_traffic_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "out-only.pcapng"
    with CaptureWriter(path) as w:
        w.write("K1", "out", codec.encode(codec.Ack(0), 1), 1)
    result = run("replay", str(path))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"ratepad replay: error: {path}: no keypad-to-host traffic to replay"
    )


def test_help() -> None:
    for cmd in ("record", "replay"):
        result = run(cmd, "--help")
        assert result.returncode == 0 and f"usage: ratepad {cmd}" in result.stdout
    assert "replay" in run("--help").stdout


# --- the end of a capture, and the player's options ---------------------------------------------
def test_open_replay_ends_with_one_lost_event_at_the_end_of_the_capture(tmp_path: Path) -> None:
    """``ratepad.open("replay://...")`` plays the capture once: then one Lost that says so, and
    nothing more (it used to reconnect and replay the capture again, forever)."""
    path = tmp_path / "once.pcapng"
    write_timed_capture(path, chunks=3, gap_us=1000)
    with ratepad.open(replay_url(path, speed=0)) as kp:
        events = []
        while (event := kp.next_event(1.5)) is not None:
            events.append(event)
            assert len(events) < 10, events
        kinds = [type(e).__name__ for e in events]
        assert kinds == ["Connected", "Rating", "Rating", "Lost"], kinds
        assert "end of capture" in events[-1].reason
        kp._thread.join(10)  # the reader ends after it delivered the Lost
        assert not kp._thread.is_alive()


def test_loop_plays_the_capture_n_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "loop.pcapng"
    write_timed_capture(path, chunks=4, gap_us=1000)
    assert main(["replay", str(path), "--loop", "3", "--json"]) == 0
    summary = json_lines(capsys.readouterr().out)[-1]["summary"]
    assert summary["chunks"] == 12 and summary["passes"] == 3
    assert summary["by_kind"]["rating"] == 9  # 3 ratings, shown again on every pass


def test_skip_and_gap_shape_the_timing(tmp_path: Path, virtual_time: VirtualTime) -> None:
    path = tmp_path / "gaps.pcapng"
    write_timed_capture(path, chunks=6, gap_us=2_000_000)  # 10 s at speed 1
    transport = open_transport(replay_url(path, speed=1.0, skip=0.02))
    assert isinstance(transport, ReplayTransport)
    transport.open()
    started = virtual_time.now
    with pytest.raises(EndOfCapture):
        while True:
            transport.read(0.5)
    assert 0.1 <= virtual_time.now - started < 0.11  # every 2 s pause shortened to 20 ms
    transport = open_transport(replay_url(path, speed=0, gap=0.05))
    assert isinstance(transport, ReplayTransport)
    transport.open()
    started = virtual_time.now
    with pytest.raises(EndOfCapture):
        while True:
            transport.read(0.5)
    assert 0.25 <= virtual_time.now - started < 0.26  # 5 gaps of 50 ms, even at full speed


@pytest.mark.timeout(60)
def test_replay_serve_gives_the_recorded_keypad_to_another_process(tmp_path: Path) -> None:
    path = tmp_path / "served.pcapng"
    write_timed_capture(path, chunks=5, gap_us=100_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ratepad", "replay", str(path), "--serve", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving tcp://127.0.0.1:") and line.rstrip().endswith("/K9"), line
        with ratepad.open(line.split()[1]) as kp:
            assert kp.info is not None and kp.info.serial == "K9"
            ratings = []
            while (event := kp.next_event(3)) is not None and len(ratings) < 4:
                if isinstance(event, ratepad.Rating):
                    ratings.append(event.journal_seq)
            assert ratings == [1, 2, 3, 4]
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
