"""``ratepad selftest`` against simulated keypads (sim://): every check, a wrong key, the CLI."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import ratepad
from ratepad.cli.main import selftest

URL = "sim://ST{n}?thanks_ms=200&debounce_ms=5&chord_ms=20&repeat_guard_ms=0"


@pytest.fixture
def fresh() -> Iterator[None]:
    ratepad.sim.reset()
    yield
    ratepad.sim.reset()


def _presser(device_id: str, wrong: dict[int, int] | None = None) -> Any:
    # The engineer: presses the key asked for (or the `wrong` one instead).
    def listener(what: str, fields: dict[str, Any]) -> None:
        if what == "press":
            key = (wrong or {}).get(fields["key"], fields["key"])
            threading.Timer(0.05, ratepad.sim.get(device_id).press, (key,)).start()

    return listener


def test_every_check_passes_on_a_good_keypad(fresh: None) -> None:
    with ratepad.open(URL.format(n=1)) as kp:
        checks = selftest.run(kp, _presser("ST1"), rounds=5, key_timeout=5)
    assert [c.name for c in checks] == ["link", "self_test", "keys"]
    assert all(c.ok for c in checks), [c.detail for c in checks]
    link, _, keys = checks
    assert link.data["serial"] == "ST1" and link.data["keys"] == 5
    assert 0 < link.data["rtt_ms"]["min"] <= link.data["rtt_ms"]["median"]
    assert keys.data["pressed"] == [1, 2, 3, 4, 5]
    seqs = keys.data["journal_seqs"]
    assert seqs == list(range(seqs[0], seqs[0] + 5))


def test_a_wrong_key_and_a_missing_press_fail(fresh: None) -> None:
    with ratepad.open(URL.format(n=2)) as kp:
        check = selftest.check_keys(kp, _presser("ST2", {2: 4}), timeout=3)
    assert not check.ok and "key 2: key 4 went down instead" in check.detail
    with ratepad.open(URL.format(n=3)) as kp:
        check = selftest.check_keys(kp, lambda what, fields: None, timeout=0.5)
    assert not check.ok and "key 1: not pressed within 0.5 s" in check.detail


def test_a_stuck_key_fails_the_self_test(fresh: None) -> None:
    with ratepad.open(URL.format(n=4)) as kp:
        ratepad.sim.get("ST4").keypad.hw.failed = "key3"  # the simulated board's self-check
        check = selftest.check_self_test(kp)
    assert not check.ok and "key3" in check.detail


def _cli(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="ratepad")
    selftest.register(ap.add_subparsers(dest="command", required=True))
    return ap.parse_args(argv)


def test_the_command_prints_json_and_exits_by_the_checks(
    fresh: None, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _cli(["selftest", URL.format(n=5), "--json", "--rounds", "3", "--no-keys"])
    assert args.func(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["check"] for x in lines] == ["link", "self_test"] and all(x["ok"] for x in lines)
    ratepad.sim.get("ST5").keypad.hw.failed = "memory"
    args = _cli(["selftest", URL.format(n=5), "--no-keys"])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "FAIL  self_test" in out and "memory" in out


@pytest.mark.parametrize("bad", [["--rounds", "0"], ["--key-timeout", "nan"], []])
def test_bad_arguments_are_one_line_and_exit_2(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["selftest", *([URL.format(n=6)] if bad else []), *bad]
    with pytest.raises(SystemExit) as exc:
        _cli(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ratepad selftest: error:")


def test_a_sim_keypad_presses_its_own_keys(fresh: None, capsys: pytest.CaptureFixture[str]) -> None:
    from ratepad.cli.main import main

    assert main(["selftest", URL.format(n=7), "--json", "--rounds", "2", "--key-timeout", "5"]) == 0
    checks = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [c["check"] for c in checks] == ["link", "self_test", "keys"]
    assert all(c["ok"] for c in checks) and checks[2]["pressed"] == [1, 2, 3, 4, 5], checks


def test_a_keypad_nobody_can_press_here_is_said_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    from ratepad.cli.main import main

    assert main(["selftest", "replay:///no/such.pcapng"]) == 2  # before the file is read
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "cannot be pressed from here; give --no-keys" in line, line
