"""Hostile and careless scenario files: one line on stderr, exit status 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

OK: dict[str, Any] = {
    "seed": 1,
    "until_ms": 3000,
    "devices": [{"id": "K1", "config": {"debounce_ms": 5}}],
    "events": [{"at_ms": 0, "device": "K1", "do": "connect"}],
}


def sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", "sim", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_exit_2(path: Path) -> str:
    out = sim(str(path))
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout == ""
    assert lines[0].startswith("ratepad sim: error: ")
    assert len(lines[0]) < 300
    return lines[0]


def event(do: str, **args: Any) -> dict[str, Any]:
    return {**OK, "events": [*OK["events"], {"at_ms": 10, "device": "K1", "do": do, **args}]}


def device_config(**config: Any) -> dict[str, Any]:
    return {**OK, "devices": [{"id": "K1", "config": config}]}


@pytest.mark.parametrize(
    ("scenario", "says"),
    [
        (
            event("login", staff="S1", name="x" * 33),
            "events[1].name: expected a text of at most 32",
        ),
        (event("login", staff="S1", name="é" * 17), "at most 32 UTF-8 bytes"),
        (event("login", staff="S1", name=7), "events[1].name: expected a string"),
        (event("login", staff=["S1"]), "events[1].staff: expected a string"),
        (event("prompt", staff="S" * 17), "events[1].staff: expected a text of at most 16"),
        ({**OK, "events": [{"at_ms": 0, "device": "K1", "do": [1]}]}, "events[0].do"),
        ({**OK, "events": [{"at_ms": 0, "device": "K1", "do": {"x": 1}}]}, "events[0].do"),
        ({**OK, "events": [1]}, "events[0]: expected an object"),
        (device_config(debounce_ms="abc"), "debounce_ms: the keypad refuses 'abc': not an integer"),
        (device_config(keys=7), "config.keys: the keypad refuses 7: out of range 3..5"),
        (
            device_config(capacity=-1),
            "config.capacity: the keypad refuses -1: out of range 1..20000",
        ),
        (device_config(debounce="sometimes"), "one of defer/eager/asym"),
        (device_config(key_order="1234"), "key_order needs 5 digits"),
        (device_config(buzzer=[1]), "config.buzzer: expected an integer or a string"),
        (
            event("set_config", config={"stuck_ms": 5}),
            "events[1].config.stuck_ms: the keypad refuses 5",
        ),
        ({**OK, "until_ms": 10**12}, "until_ms: expected 0..604800000, got 1000000000000"),
        ({**OK, "seed": -1}, "seed: expected 0..9223372036854775807"),
        ({**OK, "seed": 10**40}, "seed: expected 0..9223372036854775807"),
        ({**OK, "seed": "1"}, "seed: expected an integer"),
        ({**OK, "expect": {"ratings": -1}}, "expect.ratings"),
        ({**OK, "expect": {"ratings_per_device": {"K9": 1}}}, "unknown device 'K9'"),
        ({**OK, "expect": {"lost": 0}}, "expect: unknown key ['lost']"),
        ({**OK, "devices": [{"id": "K1", "keys": 7}]}, "devices[0].keys: expected 3..5, got 7"),
    ],
)
def test_bad_scenarios_are_one_line_exit_2(
    tmp_path: Path, scenario: dict[str, Any], says: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(scenario))
    line = one_line_exit_2(path)
    assert says in line, line


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
        ('{"devices": ' + "[" * 50 + "]" * 50 + "}", "nested deeper than 32 levels"),
        ('{"seed": 1' + "0" * 5000 + ', "devices": [{"id": "K1"}]}', "more than 4300 digits"),
        ('{"seed": 1' + "0" * 4000 + ', "devices": [{"id": "K1"}]}', "seed: expected 0.."),
        ("\xff\xfe", "not valid JSON"),
    ],
)
def test_hostile_json_is_one_line_exit_2(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    line = one_line_exit_2(path)
    assert says in line, line


def test_deep_toml_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    line = one_line_exit_2(path)
    assert "TOML" in line


def test_a_good_scenario_still_runs(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(event("login", staff="S1", name="é" * 16)))
    out = sim(str(path))
    assert out.returncode == 0, out.stderr
