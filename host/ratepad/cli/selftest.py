"""``ratepad selftest URL``: bring-up checks for a hardware engineer with a keypad on the bench.

1. **link**: the keypad's hello (serial, firmware, board, keys, journal capacity), then the USB
   round-trip time of ``rounds`` small commands (``get_config serial``): min, median, max;
2. **self-test**: the keypad's own check (stuck keys, free memory, journal damage) while it
   walks its LEDs: each key's LED in turn, then the status LED, 0.3 s each;
3. **keys**: each key pressed in turn when asked, shown live as it goes down; each press is a
   prompted rating, so it is also a **journal** write and read back: the rating must come back
   with the next journal sequence and the score that key gives (``key_order``), and is ACKed.

Each check passes or fails on its own; the command exits 0 if all passed, 1 if one failed, 2 on
bad arguments (one line on stderr). ``--json`` prints one JSON object per check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RatepadError, RatepadTimeout
from ..events import KeyEvent
from .common import EXIT_OK, EXIT_PROBLEMS, UsageError, positive_float

__all__ = ["Check", "check_keys", "check_link", "check_self_test", "register", "run"]

Listener = Callable[[str, dict[str, Any]], None]
"""Live progress: (what, fields); "press" asks for a key, "down" shows a key going down."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, **self.data}


def _quiet(what: str, fields: dict[str, Any]) -> None:
    pass


def check_link(kp: Any, rounds: int = 20) -> Check:
    """Who the keypad is, and the round-trip time of ``rounds`` small commands."""
    info = kp.info
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        kp.get_config("serial")
        times.append((time.perf_counter() - t0) * 1000)
    data = {
        "serial": info.serial,
        "firmware": info.firmware_version,
        "board": info.board,
        "keys": info.key_count,
        "journal_capacity": info.journal_capacity,
        "rtt_ms": {
            "min": round(min(times), 2),
            "median": round(statistics.median(times), 2),
            "max": round(max(times), 2),
        },
    }
    rtt = data["rtt_ms"]
    detail = (
        f"{info.serial}: firmware {info.firmware_version} on {info.board}, {info.key_count} keys, "
        f"journal for {info.journal_capacity:,}; round trip {rtt['median']} ms median "
        f"({rtt['min']}..{rtt['max']}, {rounds} commands)"
    )
    return Check("link", info.schema_matches, detail, data)


def check_self_test(kp: Any) -> Check:
    """The keypad's own self-test (keys, memory, journal), with its LED walk."""
    result = kp.self_test()
    if result.ok:
        return Check("self_test", True, "keypad self-test passed; LEDs walked: key 1..n, status")
    return Check("self_test", False, f"keypad self-test failed: {result.detail or result.code}")


def check_keys(kp: Any, listener: Listener = _quiet, timeout: float = 30.0) -> Check:
    """Each key pressed in turn (prompted ratings: journal write and read back, then ACKed)."""
    nkeys = kp.info.key_count
    order = kp.get_config("key_order").get("key_order", "12345")
    thanks = int(kp.get_config("thanks_ms").get("thanks_ms", "2000")) / 1000
    kp.key_events(True)
    pressed: list[int] = []
    problems: list[str] = []
    seqs: list[int] = []
    try:
        for key in range(1, nkeys + 1):
            expected = int(order[key - 1]) if key <= len(order) else key
            try:
                handle = kp.start_prompt("selftest", timeout=timeout)
            except RatepadError as exc:
                problems.append(f"key {key}: cannot prompt ({exc})")
                break
            listener("press", {"key": key})  # once armed: a press before would be unprompted
            end = time.monotonic() + timeout
            down = None
            while down is None and time.monotonic() < end:
                event = kp.next_event(0.1)
                if isinstance(event, KeyEvent) and event.down:
                    listener("down", {"key": event.key, "wanted": key})
                    down = event.key
            if down is None:
                problems.append(f"key {key}: not pressed within {timeout:g} s")
                break
            try:
                rating = handle.wait(max(end - time.monotonic(), 1.0))
            except RatepadTimeout:
                problems.append(f"key {key}: no rating came back from the journal")
                break
            kp.confirm(rating)
            seqs.append(rating.journal_seq)
            pressed.append(down)
            if down != key:
                problems.append(f"key {key}: key {down} went down instead (wiring?)")
            elif rating.score != expected:
                problems.append(f"key {key}: rated {rating.score}, key_order says {expected}")
            if len(seqs) > 1 and seqs[-1] != seqs[-2] + 1:
                problems.append(f"journal: sequence {seqs[-2]} then {seqs[-1]}")
            time.sleep(thanks)  # the thank-you ends before the next prompt
    finally:
        with contextlib.suppress(RatepadError):
            kp.key_events(False)
    data = {"pressed": pressed, "journal_seqs": seqs}
    if problems:
        return Check("keys", False, "; ".join(problems), data)
    return Check(
        "keys",
        True,
        f"keys 1..{nkeys} pressed in turn; each journalled and read back "
        f"(sequences {seqs[0]}..{seqs[-1]}) and ACKed",
        data,
    )


def run(
    kp: Any,
    listener: Listener = _quiet,
    *,
    rounds: int = 20,
    keys: bool = True,
    key_timeout: float = 30.0,
) -> list[Check]:
    """Every check, in order, on an open keypad."""
    checks = [check_link(kp, rounds), check_self_test(kp)]
    if keys:
        checks.append(check_keys(kp, listener, key_timeout))
    return checks


# -- the command ----------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of 1 or more, got {text!r}")
    return value


UNPRESSABLE = {"replay": "a recording"}
"""Keypads nobody can press, by URL scheme: the key walk is refused at once. (A ``tcp://``
keypad may be a real one at a counter, or an emulated Pico whose keys a harness presses: its
key walk runs, each key waiting ``--key-timeout``.)"""


def _sim_presser(url: str) -> Callable[[int], None] | None:
    """For a keypad nobody presses by hand: a function that presses its keys (a simulated
    keypad in this process), or UsageError saying why the key walk cannot run; None for a
    keypad a person presses."""
    from urllib.parse import urlsplit

    from ..transports import check_url

    scheme = urlsplit(check_url(url)).scheme
    if scheme == "spy":
        return _sim_presser(url[len("spy://") :])
    if scheme in UNPRESSABLE:
        raise UsageError(
            f"{url}: {UNPRESSABLE[scheme]} cannot be pressed from here; give --no-keys"
        )
    if scheme != "sim":
        return None
    import ratepad.sim
    from ratepad.sim.transport import SimTransport

    device_id = SimTransport(url).device_id

    def press(key: int) -> None:
        sim = ratepad.sim.get(device_id)
        end = time.monotonic() + 5.0
        while not sim.keypad.core.rules.prompt_id and time.monotonic() < end:
            time.sleep(0.01)  # the prompt reaches the simulated keypad a moment later
        sim.press(key)

    return press


def cmd_selftest(args: argparse.Namespace) -> int:
    import ratepad

    presser = None if args.no_keys else _sim_presser(args.url)

    def show(what: str, fields: dict[str, Any]) -> None:
        if what == "press" and presser is not None:
            presser(fields["key"])
        if args.json:
            return
        if what == "press":
            print(f"  press key {fields['key']} ...", flush=True)
        elif what == "down":
            mark = "ok" if fields["key"] == fields["wanted"] else "WRONG KEY"
            print(f"    key {fields['key']} down  {mark}", flush=True)

    with ratepad.open(args.url) as kp:
        steps: list[Callable[[], Check]] = [
            lambda: check_link(kp, args.rounds),
            lambda: check_self_test(kp),
        ]
        if not args.no_keys:
            steps.append(lambda: check_keys(kp, show, args.key_timeout))
        checks = []
        for step in steps:
            check = step()
            checks.append(check)
            if args.json:
                print(json.dumps(check.as_json(), ensure_ascii=False), flush=True)
            else:
                print(f"{'PASS' if check.ok else 'FAIL'}  {check.name:<10} {check.detail}")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_PROBLEMS


DESCRIPTION = """\
Bring-up checks for a keypad on the bench, each passing or failing on its own:

  link       the keypad's hello (serial, firmware, board, keys, journal capacity) and the
             round-trip time of --rounds small commands: min, median, max
  self_test  the keypad's own check (stuck keys, free memory, journal damage) while it
             walks its LEDs: each key's LED in turn, then the status LED
  keys       press each key in turn when asked; each press is a prompted rating, written
             to the journal and read back with the next sequence and the key's score, then
             ACKed (a sim:// keypad presses its own keys; tcp:// and replay:// need --no-keys)

exit status: 0 all passed, 1 a check failed, 2 bad arguments (one line on stderr)"""


def register(subparsers: Any) -> None:
    """Add ``ratepad selftest`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "selftest",
        help="bring-up checks: link round trip, LED walk, each key, journal",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="the keypad (hid://, usb://SERIAL, sim://ID, tcp://...)")
    p.add_argument("--json", action="store_true", help="one JSON object per check")
    p.add_argument(
        "--rounds", type=_positive_int, default=20, help="round-trip commands (default 20)"
    )
    p.add_argument(
        "--key-timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="seconds to wait for each key (default 30)",
    )
    p.add_argument("--no-keys", action="store_true", help="skip the key walk (unattended)")
    p.set_defaults(func=cmd_selftest)


def main(argv: list[str] | None = None) -> int:
    """``python -m ratepad.selftest URL`` (the same as ``ratepad selftest``)."""
    ap = argparse.ArgumentParser(prog="ratepad")
    register(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(["selftest", *(sys.argv[1:] if argv is None else argv)])
    try:
        result: int = args.func(args)
    except RatepadError as exc:
        print(f"ratepad selftest: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    return result


if __name__ == "__main__":
    sys.exit(main())
