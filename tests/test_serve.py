"""``ratepad sim SCENARIO --serve``: a scenario's keypads on the wall clock, served over TCP.

The server runs as a subprocess at ``--speed 10`` (1 s of wall time = 10 000 ms of scenario
time); this process is the host, with the ordinary driver (``ratepad.open("tcp://...")``).
Scenario times leave at least 400 ms of wall time around every step the test waits for.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import ratepad
from ratepad.cli.main import main
from ratepad.events import Connected, Lost
from ratepad.scenario import parse
from ratepad.scenario.serve import ScenarioServer

SCENARIO: dict[str, Any] = {
    "seed": 3,
    "until_ms": 45_000,
    "devices": [
        {"id": "K1", "keys": 5, "config": {"debounce_ms": 5}},
        {"id": "K2", "keys": 5, "config": {"debounce_ms": 5}},
    ],
    "events": [
        {"at_ms": 0, "device": "K1", "do": "connect"},
        {"at_ms": 0, "device": "K2", "do": "connect"},
        {"at_ms": 100, "device": "K1", "do": "prompt", "staff": "S1"},  # the host's business
        {"at_ms": 200, "do": "host_restart"},  # no meaning here
        {"at_ms": 10_000, "device": "K1", "do": "press", "score": 4, "bounce_ms": 3},
        {"at_ms": 12_000, "device": "K2", "do": "disconnect"},
        {"at_ms": 18_000, "device": "K2", "do": "connect"},
        {"at_ms": 20_000, "device": "K1", "do": "power_cycle"},
        {"at_ms": 30_000, "device": "K1", "do": "press", "score": 2},
        {"at_ms": 34_000, "device": "K2", "do": "power_cut", "during": "journal_write"},
        {"at_ms": 35_000, "device": "K2", "do": "press", "score": 3},
    ],
}


SERVE = [sys.executable, "-m", "ratepad", "sim"]


def write_scenario(tmp_path: Path, scenario: dict[str, Any]) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    return path


def handshake(url: str) -> str:
    """The server's answer to a bare ``RATEPAD <ID>`` for ``url``."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"RATEPAD " + parts.path.strip("/").encode() + b"\n")
        return sock.makefile("rb").readline().decode()


def next_of(kp: ratepad.Keypad, kind: type, timeout: float = 5.0) -> Any:
    """The next event of ``kind`` (others are passed over)."""
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        event = kp.next_event(left)
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__} within {timeout} s")


@pytest.mark.timeout(60)
def test_serve_a_scenario_to_a_host(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, SCENARIO)
    proc = subprocess.Popen(
        [*SERVE, str(path), "--serve", "127.0.0.1:0", "--speed", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kps: list[ratepad.Keypad] = []
    try:
        assert proc.stdout is not None and proc.stderr is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert all(line.startswith("serving tcp://127.0.0.1:") for line in lines), lines
        urls = {line.split()[1].rsplit("/", 1)[1]: line.split()[1] for line in lines}
        assert sorted(urls) == ["K1", "K2"]
        assert ":0/" not in urls["K1"]  # port 0: a free port, printed

        k1 = ratepad.open(urls["K1"])
        kps.append(k1)
        k2 = ratepad.open(urls["K2"])
        kps.append(k2)
        assert k1.info is not None and k1.info.serial == "K1"
        assert handshake(urls["K1"]).startswith("ERR K1 is in use")  # one host per keypad
        assert handshake(urls["K1"][:-2] + "K9").startswith("ERR no keypad K9")

        # the press at 10 000 ms (1 s of wall time) answers the prompt armed now
        rating = k1.start_prompt("S1", timeout=30).wait(10)
        assert (rating.score, rating.journal_seq, rating.staff_id) == (4, 1, "S1")
        assert rating.prompted
        k1.confirm(rating)

        # 12 000 ms: K2's data link goes down: the host sees it gone, the server refuses it
        assert isinstance(next_of(k2, Lost), Lost)
        answer = handshake(urls["K2"])
        assert answer.startswith("ERR K2 is not connected"), answer

        # 20 000 ms: K1 loses power for a moment; the driver reconnects by itself
        assert isinstance(next_of(k1, Lost), Lost)
        hello = next_of(k1, Connected)
        assert hello.acked_seq == 1  # the confirmation reached the keypad's journal
        rating = k1.start_prompt("S2", timeout=30).wait(10)  # the press at 30 000 ms
        assert (rating.score, rating.journal_seq, rating.staff_id) == (2, 2, "S2")
        k1.confirm(rating)

        # 18 000 ms K2 came back; 35 000 ms its power fails in the middle of a journal write
        assert isinstance(next_of(k2, Connected), Connected)
        assert isinstance(next_of(k2, Lost), Lost)
        assert isinstance(next_of(k2, Connected), Connected)

        assert proc.wait(timeout=10) == 0  # until_ms 45 000: 4.5 s of wall time
        assert isinstance(next_of(k1, Lost), Lost)  # the server closed the connections
        err = proc.stderr.read()
        assert "skipping 1 'prompt' event" in err
        assert "skipping 1 'host_restart' event" in err
        assert proc.stdout.read() == ""
    finally:
        for kp in kps:
            kp.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_json_lists_the_keypads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_scenario(tmp_path, {**SCENARIO, "until_ms": 0})
    assert main(["sim", str(path), "--serve", "127.0.0.1:0", "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["device"] for o in out] == ["K1", "K2"]
    assert all(o["url"].startswith("tcp://127.0.0.1:") for o in out)
    assert all(o["url"].endswith("/" + o["device"]) for o in out)


def test_serve_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_scenario(tmp_path, SCENARIO)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["sim", str(path), "--serve", f"127.0.0.1:{port}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and f"cannot serve on 127.0.0.1:{port}" in lines[0], lines


@pytest.mark.parametrize(
    "options",
    [
        ["--serve", "no-port"],
        ["--serve", "127.0.0.1:99999"],
        ["--serve", "127.0.0.1:0", "--keys"],
        ["--speed", "10"],
    ],
)
def test_serve_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    path = write_scenario(tmp_path, SCENARIO)
    assert main(["sim", str(path), *options]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("ratepad sim: error:"), err


def test_serve_speed_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sim", "x.json", "--serve", "127.0.0.1:0", "--speed", "0"])
    assert exc.value.code == 2
    assert "expected a number more than 0" in capsys.readouterr().err


def serve_in_process(
    scenario: dict[str, Any], speed: float, engine: str = "cpython"
) -> dict[str, int]:
    """Serve ``scenario`` here; as host, answer two presses (at 5 000 and 15 000 ms) by prompts.
    The server's link fault counts."""
    server = ScenarioServer(parse(scenario), ("127.0.0.1", 0), speed, engine)
    try:
        server.start()
        with ratepad.open(server.urls()["K1"]) as kp:
            for seq, score in [(1, 3), (2, 5)]:
                rating = kp.start_prompt("S1", timeout=30).wait(10)
                assert (rating.journal_seq, rating.score, rating.prompted) == (seq, score, True)
                kp.confirm(rating)
            assert server.wait(10)
            assert isinstance(next_of(kp, Lost), Lost)
    finally:
        server.close()
    return dict(server.stats)


FAULTY: dict[str, Any] = {
    "seed": 5,
    "until_ms": 25_000,
    "devices": [{"id": "K1", "keys": 5, "config": {"debounce_ms": 5}}],
    "events": [
        {"at_ms": 0, "device": "K1", "do": "connect"},
        {"at_ms": 5_000, "device": "K1", "do": "press", "score": 3},
        {"at_ms": 15_000, "device": "K1", "do": "press", "score": 5},
    ],
}


@pytest.mark.timeout(60)
def test_link_faults_apply_to_served_reports() -> None:
    """Duplicated reports both ways (nothing lost, so nothing waits on a retry): the host's
    frames are cut into reports at frame ends, as the runner cuts them."""
    stats = serve_in_process({**FAULTY, "link": {"duplicate": 0.5}}, speed=10)
    assert stats["reports_duplicated"] > 5


@pytest.mark.micropython
@pytest.mark.timeout(120)
def test_serve_on_the_micropython_engine() -> None:
    assert serve_in_process(FAULTY, speed=10, engine="micropython") == {}


@pytest.mark.timeout(60)
def test_serve_honours_ticks_start_ms() -> None:
    """The served keypads start at their ``ticks_start_ms`` (one timeline with the runner):
    here the keypad's ticks_ms wraps between the press and its debounced edge."""
    wrap = {
        **FAULTY,
        "devices": [{"id": "K1", "keys": 5, "ticks_start_ms": (1 << 30) - 5_002, "config": {}}],
        "until_ms": 12_000,
        "events": [
            {"at_ms": 0, "device": "K1", "do": "connect"},
            {"at_ms": 5_000, "device": "K1", "do": "press", "score": 3, "bounce_ms": 3},
        ],
    }
    server = ScenarioServer(parse(wrap), ("127.0.0.1", 0), 10)
    try:
        assert server.devices["K1"].keypad.ticks(0) == (1 << 30) - 5_002
        server.start()
        with ratepad.open(server.urls()["K1"]) as kp:
            rating = kp.start_prompt("S1", timeout=30).wait(10)
            assert (rating.score, rating.time_exact) == (3, True)
    finally:
        server.close()
