"""The CLI around the commands: help for every option, shell completion, the Wireshark
dissector's path and install, and a missing extra named in one line."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ratepad.cli.main import build_parser, main
from ratepad.tools.extras import missing_extra


def _options(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_option_has_help() -> None:
    from ratepad_server.cli import build_parser as server_parser

    missing = [
        f"{path}: {'/'.join(action.option_strings) or action.dest}"
        for parser, prog in ((build_parser(), "ratepad"), (server_parser(), "ratepad server"))
        for path, action in _options(parser, prog)
        if not action.help or not action.help.strip()
    ]
    assert missing == []


def test_completion_is_a_shell_script_of_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    for command in ("selftest", "sandbox", "wireshark", "decode", "fw"):
        assert command in script
    if shutil.which("bash"):
        done = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert done.returncode == 0, done.stderr


def test_wireshark_path_and_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["wireshark", "--path"]) == 0
    dissector = Path(capsys.readouterr().out.strip())
    assert dissector.name == "ratepad.lua" and "Proto(" in dissector.read_text()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["wireshark", "--install"]) == 0
    installed = tmp_path / ".local" / "lib" / "wireshark" / "plugins" / "ratepad.lua"
    assert installed.read_bytes() == dissector.read_bytes()


def test_a_missing_extra_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in ("hid", "hidraw"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails: not installed
    assert main(["monitor", "hid://", "--seconds", "0.1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "ratepad monitor: needs the 'hid' extra: pip install 'ratepad[hid]'"


def test_the_agent_without_its_bridge_says_so_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi"
                        else find_spec(name, *a))  # fmt: skip
    db = tmp_path / "agent.db"
    assert main(["agent", "--device", "sim://AGX1", "--db", str(db)]) == 2
    assert main(["sandbox", "--seconds", "0.1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"ratepad {c}: needs the 'bridge' extra: pip install 'ratepad[bridge]'"
                     for c in ("agent", "sandbox")]  # fmt: skip
    assert not db.exists()  # nothing started


def test_only_the_extras_modules_are_taken_for_a_missing_extra() -> None:
    def chained(name: str) -> BaseException:
        try:
            try:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            except ImportError as exc:
                raise RuntimeError("wrapped") from exc
        except RuntimeError as exc:
            return exc

    assert missing_extra(chained("matplotlib.figure")) == "report"
    assert missing_extra(chained("fastapi")) == "bridge"
    assert missing_extra(chained("somethingelse")) is None
