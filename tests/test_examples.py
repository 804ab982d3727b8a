"""`ratepad examples DIR` writes files every quick start can use, and each command its README
gives runs as written against them (the agent until its bridge is up, then Ctrl-C)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ratepad.cli.main import main

BIN = Path(sys.executable).parent


def _commands(readme: str) -> list[tuple[str, str]]:
    """(file, command) from the README's table: the first backticked text of each row's
    second cell."""
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)`", readme, flags=re.MULTILINE)
    return list(rows)


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(shlex.split(command), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_examples_are_written_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["examples", str(tmp_path / "ex")]) == 0
    names = {p.relative_to(tmp_path / "ex").as_posix() for p in (tmp_path / "ex").rglob("*")}
    assert {"scenario.json", "suite/power_cut.json", "fleet.toml", "test_counter.py",
            "agent.toml", "org.toml", "teller/index.html", "README.md"} <= names  # fmt: skip
    capsys.readouterr()
    assert main(["examples", str(tmp_path / "ex")]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err


def test_every_command_of_the_examples_readme_runs(tmp_path: Path) -> None:
    ex = tmp_path / "ex"
    assert main(["examples", str(ex)]) == 0
    commands = _commands((ex / "README.md").read_text(encoding="utf-8"))
    assert len(commands) >= 6
    for name, line in commands:
        for command in line.split(" && "):
            if command.startswith("ratepad agent"):
                _agent_starts(command, ex)
                continue
            if command.startswith("pytest"):
                command = f"{sys.executable} -m pytest -q -p no:cacheprovider"
            done = _run(command, ex)
            assert done.returncode == 0, f"{name}: {command}\n{done.stdout}\n{done.stderr}"
    assert (ex / "suite.xml").exists() and (ex / "ratings.db").exists()


def _agent_starts(command: str, cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    args = shlex.split(command)
    agent = subprocess.Popen(
        [*args, "--listen", "127.0.0.1:0"],  # a free port: the file's own may be taken
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert agent.stdout is not None
        lines = []
        for _ in range(50):  # bounded: a line per keypad, the store, the bridge
            line = agent.stdout.readline()
            lines.append(line)
            if not line or "bridge http://" in line:
                break
        assert any("bridge http://" in line for line in lines), "".join(lines)
    finally:
        agent.send_signal(signal.SIGINT)
        agent.communicate(timeout=30)
    assert agent.returncode == 0
