"""`ratepad sim --fleet`: reports, --jobs with the same output as one process, bounded input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def sim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", "sim", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_jobs_2_gives_the_one_process_report_and_page(tmp_path: Path) -> None:
    runs = []
    for jobs in ("1", "2"):
        page = tmp_path / f"fleet{jobs}.html"
        out = sim(
            "--fleet",
            "12",
            "--hours",
            "0.5",
            "--seed",
            "4",
            "--jobs",
            jobs,
            "--json",
            "--report",
            str(page),
        )
        assert out.returncode == 0, out.stderr
        runs.append((json.loads(out.stdout), page.read_bytes()))
    (one, page1), (two, page2) = runs
    assert one["jobs"] == 1 and two["jobs"] == 2
    assert one["report"] == two["report"] and page1 == page2
    report = one["report"]
    assert report["keypads"] == 12 and len(report["per_keypad"]) == 12
    assert 0 < report["response_rate"] <= 100 and 0 < report["satisfaction_index"] <= 100
    assert report["ratings"] == sum(k["ratings"] for k in report["per_keypad"])
    assert sum(report["scores"].values()) == report["ratings"]
    assert set(report["misuse"]) == {"unprompted", "repeats", "multi_key"}
    assert "power_cuts" in report["faults"] and "duplicates_ignored" in report["recoveries"]
    html = page1.decode()
    assert html.count("<svg") == 3 and "<script" not in html and "src=" not in html
    assert json.loads((tmp_path / "fleet1.json").read_text()) == report


def test_text_output_ends_with_the_figures() -> None:
    out = sim("--fleet", "2", "--hours", "0.2")
    assert out.returncode == 0, out.stderr
    assert "satisfaction_index" in out.stdout and "response_rate" in out.stdout
    assert "\r" not in out.stderr  # no progress bar when stderr is not a terminal


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--fleet", "1", "--hours", "nan"], "--hours"),
        (["--fleet", "1", "--hours", "inf"], "--hours"),
        (["--fleet", "1", "--seed", "-1"], "--seed"),
        (["--fleet", "1", "--seed", "1" + "0" * 5000], "--seed"),
        (["--fleet", "0"], "--fleet"),
        (["--fleet", "100000", "--hours", "8"], "limit of 100,000"),
        (["--fleet", "1", "--hours", "1000"], "at most 168"),
        (["--fleet", "1", "--jobs", "0"], "--jobs"),
    ],
)
def test_bad_fleet_arguments_are_one_line_exit_2(args: list[str], says: str) -> None:
    out = sim(*args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("profile", "says"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
        ('{"settings": ' + '{"a": ' * 40 + "1" + "}" * 41, "nested deeper than 32"),
        ('{"response_rate": "most"}', "profile.response_rate: expected a number"),
        ('{"settings": {"debounce_ms": 0}}', "profile.settings.debounce_ms"),
        ('{"answer_delay_ms": [9000, 10]}', "low <= high"),
        ('{"bogus": 1}', "unknown key"),
    ],
)
def test_bad_profiles_are_one_line_exit_2(tmp_path: Path, profile: str, says: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(profile)
    out = sim("--fleet", "1", "--hours", "0.1", "--profile", str(path))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_micropython_engine_missing_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no node here
    out = sim("--fleet", "1", "--hours", "0.1", "--engine", "micropython", env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Node.js" in lines[0] and "npm install" in lines[0], lines
    env = {**os.environ, "RATEPAD_NODE_MODULES": str(tmp_path)}  # node, but no package
    out = sim("--fleet", "1", "--hours", "0.1", "--engine", "micropython", env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "npm package" in lines[0], lines
