"""The ``rp2040`` engine: scenarios on the real MicroPython Pico image in an emulated RP2040 give
the ratings the other engines give (architecture.md, "Scenario files": seq, score, staff,
prompted and flags equal, at_ms within 2 ms), run to run the same; what it needs and lacks is one
line and exit 2.

The image and the boot ROM are the ones in ``../shared/micropython-rp2`` beside the checkout
(``$RATEPAD_MICROPYTHON_IMAGE`` if set); without them, or Node.js, or rp2040js, the tests that
need them skip with the reason.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ratepad.scenario import Runner, load, parse
from ratepad.sim.mpkeypad import vm_missing
from ratepad.sim.rp2040 import IMAGE_ENV, missing
from ratepad.sim.rp2040.engine import LEAD_MS, Rp2040Engine
from ratepad.sim.rp2040.pico import MS

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "micropython-rp2"
SCENARIOS = ROOT / "tests" / "scenarios"
AT_MS_TOLERANCE = 2

# prompted and bouncy, unprompted, a repeat inside the guard, a chord, a key held past stuck_ms
KEYS = {
    "seed": 11,
    "until_ms": 21000,
    "devices": [
        {
            "id": "K1",
            "config": {
                "debounce_ms": 5,
                "chord_ms": 20,
                "repeat_guard_ms": 3000,
                "stuck_ms": 5000,
            },
        }
    ],
    "events": [
        {"at_ms": 0, "device": "K1", "do": "connect"},
        {"at_ms": 50, "device": "K1", "do": "login", "staff": "S002", "name": "Bo"},
        {"at_ms": 100, "device": "K1", "do": "prompt", "staff": "S002", "timeout_ms": 30000},
        {"at_ms": 1000, "device": "K1", "do": "press", "score": 4, "bounce_ms": 5},
        {"at_ms": 2000, "device": "K1", "do": "press", "score": 4},
        {"at_ms": 6000, "device": "K1", "do": "press", "score": 2},
        {"at_ms": 9000, "device": "K1", "do": "raw", "key": 1, "edges": [[0, 1], [150, 0]]},
        {"at_ms": 9005, "device": "K1", "do": "raw", "key": 3, "edges": [[0, 1], [150, 0]]},
        {"at_ms": 12000, "device": "K1", "do": "raw", "key": 5, "edges": [[0, 1], [8000, 0]]},
    ],
}


def use_shared_image(mp: pytest.MonkeyPatch) -> None:
    """Point the engine at ../shared/micropython-rp2 unless the environment names an image."""
    if not os.environ.get(IMAGE_ENV):
        mp.setenv(IMAGE_ENV, str(SHARED / "micropython-v1.28.0-RPI_PICO.bin"))


@pytest.fixture(scope="module")
def pico_image() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        use_shared_image(mp)
        reason = missing()
        if reason is not None:
            pytest.skip(reason)
        yield


def _comparable(rating: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rating.items() if k != "at_ms"}


def _agree(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], what: str) -> None:
    assert [_comparable(r) for r in ours] == [_comparable(r) for r in theirs], what
    for a, b in zip(ours, theirs, strict=True):
        assert abs(a["at_ms"] - b["at_ms"]) <= AT_MS_TOLERANCE, (what, a, b)


@pytest.mark.usefixtures("pico_image")
@pytest.mark.parametrize(
    "source",
    ["contract_example.json", "suite/power_cut.json", "keys"],
)
def test_the_same_scenario_gives_the_same_ratings_on_every_engine(source: str) -> None:
    scenario = parse(KEYS) if source == "keys" else load(SCENARIOS / source)
    real = Runner(scenario, engine="rp2040").run()
    assert real.ratings, "the scenario stores ratings"
    engines = ["cpython"] + ([] if vm_missing() else ["micropython"])
    for engine in engines:
        other = Runner(scenario, engine=engine).run()
        _agree(real.ratings, other.ratings, f"rp2040 against {engine} on {source}")
        assert real.stats.get("power_cuts", 0) == other.stats.get("power_cuts", 0)
    if source == "keys":  # what the keys did, as the firmware rated them
        flags = [(r["score"], r["prompted"], r["flags"]) for r in real.ratings]
        assert flags == [(4, True, []), (2, False, ["unprompted"]), (5, False, ["unprompted"])]


def _busy_windows(device: dict[str, Any], until_ms: int) -> list[int]:
    """Scenario times at which the keypad's idle device loop, connected at 0, kept the emulated
    CPU busy for 15 ms or more after the first second (its heap checks), found by running the
    chip from wake-up to wake-up."""
    engine = Rp2040Engine()
    try:
        kp = engine.keypad(device["id"], device["config"], 0, device["ticks_start_ms"])
        kp.connect(0)
        kp.advance_to(1000)  # booted and enumerated
        pico, end, busy_from, starts = kp.pico, (until_ms + LEAD_MS) * MS, -1, []
        for _ in range(100_000):
            if pico.now >= end:
                break
            due = pico.next_due
            if due is not None and due <= pico.now:  # running: through it 1 ms at a time
                busy_from = pico.now if busy_from < 0 else busy_from
                pico.run_to(pico.now + MS)
                continue
            if busy_from >= 0 and pico.now - busy_from >= 15 * MS:
                starts.append(math.ceil(busy_from / MS) - LEAD_MS)
            busy_from = -1
            pico.run_to(max(pico.now + 1, min(end, end if due is None else due)))
        return starts
    finally:
        engine.close()


@pytest.mark.usefixtures("pico_image")
def test_presses_while_the_loop_is_busy_are_dated_when_they_happened() -> None:
    """The device loop checks the free heap every 10 s, which keeps the chip's CPU busy for
    ~25 ms; presses (bouncing) that land in those windows, on a keypad whose ticks_ms wraps
    5 s in, are rated at the times the other engines give: in defer mode, then in asym."""
    keypad: dict[str, Any] = {
        "id": "K1",
        "ticks_start_ms": (1 << 30) - 5000,
        "config": {"debounce_ms": 5, "chord_ms": 20},
    }
    until = 21000
    windows = _busy_windows(keypad, until)
    assert len(windows) >= 2, windows  # the heap checks are there to press into
    events: list[dict[str, Any]] = [
        {"at_ms": 0, "device": "K1", "do": "connect"},
        {"at_ms": 100, "device": "K1", "do": "prompt", "staff": "S1", "timeout_ms": 30000},
        {"at_ms": windows[0] + 3, "device": "K1", "do": "press", "score": 2, "bounce_ms": 3},
        {
            "at_ms": windows[0] + 2000,
            "device": "K1",
            "do": "set_config",
            "config": {"debounce": "asym"},
        },
        {"at_ms": windows[1] + 3, "device": "K1", "do": "press", "score": 4, "bounce_ms": 3},
    ]
    scenario = parse({"seed": 3, "until_ms": until, "devices": [keypad], "events": events})
    real = Runner(scenario, engine="rp2040").run()
    assert [(r["score"], r["prompted"]) for r in real.ratings] == [(2, True), (4, False)]
    for engine in ["cpython"] + ([] if vm_missing() else ["micropython"]):
        other = Runner(scenario, engine=engine).run()
        _agree(real.ratings, other.ratings, f"rp2040 against {engine}")


@pytest.mark.usefixtures("pico_image")
@pytest.mark.rp2040_engine
def test_the_rp2040_engine_is_deterministic(ratepad_scenario: Any) -> None:
    """Twice the same run: once through the pytest plugin's marker, once through the runner."""
    path = SCENARIOS / "suite" / "prompted_press.json"
    first = ratepad_scenario(path)
    second = Runner(load(path), engine="rp2040").run()
    assert first.ratings and first.ratings[0]["prompted"]
    assert (first.ratings, first.stats, first.latency_ms, first.confirmed) == (
        second.ratings,
        second.stats,
        second.latency_ms,
        second.confirmed,
    )


@pytest.mark.usefixtures("pico_image")
def test_serve_plays_the_real_firmware_to_a_host() -> None:
    """``ratepad sim --serve --engine rp2040``: a host on TCP prompts, the keypad rates."""
    import ratepad
    from ratepad.scenario.serve import ScenarioServer

    scenario = {
        "seed": 5,
        "until_ms": 6000,
        "devices": [{"id": "K1", "keys": 5, "config": {"debounce_ms": 5}}],
        "events": [
            {"at_ms": 0, "device": "K1", "do": "connect"},
            {"at_ms": 3000, "device": "K1", "do": "press", "score": 3},
        ],
    }
    server = ScenarioServer(parse(scenario), ("127.0.0.1", 0), 2, "rp2040")
    try:
        server.start()
        with ratepad.open(server.urls()["K1"]) as kp:
            rating = kp.start_prompt("S1", timeout=30).wait(20)
            assert (rating.journal_seq, rating.score, rating.prompted) == (1, 3, True)
    finally:
        server.close()


def _sim(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", "sim", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_a_missing_image_node_or_rp2040js_is_one_line_and_exit_2(tmp_path: Path) -> None:
    scenario = str(SCENARIOS / "suite" / "prompted_press.json")
    bad = tmp_path / "bad.uf2"
    bad.write_bytes(b"UF2\n" + bytes(1020))  # UF2, but no block for the RP2040's flash
    rom = str(SHARED / "bootrom-rp2040-b1.bin")
    cases = [
        ({IMAGE_ENV: ""}, IMAGE_ENV),
        ({IMAGE_ENV: str(tmp_path / "nothing.uf2")}, "no such file"),
        ({"PATH": str(tmp_path)}, "Node.js"),
        ({"RATEPAD_NODE_MODULES": str(tmp_path)}, "rp2040js"),
    ]
    with pytest.MonkeyPatch.context() as mp:
        use_shared_image(mp)
        if missing() is None:  # the emulator can start: a bad image stops it, in one line
            cases.append(({IMAGE_ENV: str(bad), "RATEPAD_RP2040_BOOTROM": rom}, "holds no block"))
    image = str(SHARED / "micropython-v1.28.0-RPI_PICO.bin")
    for change, says in cases:
        env = {**os.environ, IMAGE_ENV: os.environ.get(IMAGE_ENV) or image, **change}
        out = _sim("--engine", "rp2040", scenario, env=env)
        assert out.returncode == 2, (change, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and "Traceback" not in out.stderr, lines


def test_times_exact_without_key_edges_says_it_cannot_be_checked() -> None:
    """The rp2040 engine reports no debounced key edges: the expectation says so, rather than
    calling a rating late."""
    from ratepad.scenario.expect import check
    from ratepad.scenario.runner import Result

    scenario = load(SCENARIOS / "suite" / "prompted_press.json")
    rating = {
        "device": "K1",
        "seq": 1,
        "score": 5,
        "at_ms": 1007,
        "time_exact": True,
        "staff": "S001",
        "prompted": True,
        "flags": [],
    }
    problems = check(scenario, Result([rating], [], {}, {"K1": 1}, {"K1": {}}))
    assert [p for p in problems if "times_exact" in p] == [
        "expect.times_exact: cannot be checked: this engine reports no key edges"
    ]
    edge = {"device": "K1", "key": 5, "down": True, "at_ms": 1007}
    problems = check(scenario, Result([rating], [edge], {}, {"K1": 1}, {"K1": {}}))
    assert not [p for p in problems if "times_exact" in p]
