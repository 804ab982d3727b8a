"""`ratepad list`, `info`, `monitor` and `prompt`: talking to one keypad from the shell.

These commands never ACK a rating: storing ratings is the agent's job, so a rating seen here
stays in the keypad's journal until an agent collects it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any

from ..errors import LocalProtocolError, RatepadError, RatepadTimeout
from ..eventformat import display_line, event_json
from ..events import KeyEvent
from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    DeviceCommandError,
    UsageError,
    bounded_float,
    utf8_text,
)

MAX_PROMPT_S = 86_400.0  # the keypad counts a prompt's timeout in ms in 32 bits (49 days)


def _open(url: str) -> Any:
    import ratepad

    try:
        return ratepad.open(url)
    except LocalProtocolError as exc:  # a URL or setting that cannot be used: the caller's
        raise UsageError(str(exc)) from None
    except RatepadError as exc:
        raise DeviceCommandError(str(exc)) from None


def _default_url() -> str:
    import ratepad

    found = ratepad.find()
    if not found:
        raise DeviceCommandError("no keypad found (see `ratepad list`, `ratepad doctor`)")
    return found[0].url


def cmd_list(args: argparse.Namespace) -> int:
    import ratepad

    found = ratepad.find()
    for info in found:
        if args.json:
            print(
                json.dumps(
                    {"url": info.url, "serial": info.serial, "description": info.description}
                )
            )
        else:
            print(f"{info.url:<32} {info.serial:<16} {info.description}")
    if not found and not args.json:
        from ..tools.extras import transports_line

        print(f"no keypad found ({transports_line()})", file=sys.stderr)
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args.url) as kp:
        info = kp.info
        config = kp.get_config()
        time.sleep(0.2)
        status = kp.status
    out: dict[str, Any] = {
        "url": args.url,
        "serial": info.serial,
        "firmware": info.firmware_version,
        "board": info.board,
        "keys": info.key_count,
        "protocol": info.protocol_version,
        "schema_fingerprint": f"{info.schema_fingerprint:#010x}",
        "schema_matches": info.schema_matches,
        "boot_id": info.boot_id,
        "journal": {
            "capacity": info.journal_capacity,
            "used": info.journal_used,
            "acked_seq": info.acked_seq,
        },
        "config": config,
    }
    if status is not None:
        out["status"] = event_json(status)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return EXIT_OK
    for key, value in out.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k:<18} {v}")
        else:
            print(f"{key:<20} {value}")
    return EXIT_OK


def print_events(kp: Any, args: argparse.Namespace) -> None:
    """Print a keypad's events (``--json``: one object per line; key edges only with ``--keys``)
    for ``--seconds`` or until Ctrl-C, then turn key-event streaming off again if it was on:
    what ``monitor`` and ``record`` show."""
    end = None if args.seconds is None else time.monotonic() + args.seconds
    try:
        while end is None or (left := end - time.monotonic()) > 0:
            event = kp.next_event(0.2 if end is None else min(0.2, left))
            if event is None or (isinstance(event, KeyEvent) and not args.keys):
                continue
            if args.json:
                print(json.dumps(event_json(event), ensure_ascii=False), flush=True)
            else:
                print(display_line(event), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        if args.keys:
            with contextlib.suppress(RatepadError, KeyboardInterrupt):
                kp.key_events(False)


def cmd_monitor(args: argparse.Namespace) -> int:
    url = args.url or _default_url()
    with _open(url) as kp:
        if args.keys:
            kp.key_events(True)
        if not args.json:
            print(f"# monitoring {url} ({kp.info.serial}); Ctrl-C to stop", file=sys.stderr)
        print_events(kp, args)
    return EXIT_OK


def cmd_prompt(args: argparse.Namespace) -> int:
    with _open(args.url) as kp:
        try:
            rating = kp.prompt(args.staff, timeout=args.timeout)
        except RatepadTimeout:
            print(f"ratepad prompt: no rating within {args.timeout:g} s", file=sys.stderr)
            return EXIT_PROBLEMS
        except RatepadError as exc:
            raise DeviceCommandError(str(exc)) from None
    if args.json:
        print(json.dumps(event_json(rating), ensure_ascii=False))
    else:
        print(display_line(rating))
    return EXIT_OK


def register(sub: Any) -> None:
    """Add the device commands to the ``ratepad`` sub-command parser."""
    p = sub.add_parser(
        "list",
        help="keypads that can be opened now",
        description="List keypads visible through every installed transport.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "info",
        help="identity, journal, settings and status of a keypad",
        description="Connect to a keypad and show what it reports.",
    )
    p.add_argument("url", metavar="URL", help="e.g. hid://, usb://RP-0001, sim://K1")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "monitor",
        help="watch a keypad's ratings, status and key events live",
        description="Print a keypad's events as they happen (never ACKs).",
    )
    p.add_argument("url", metavar="URL", nargs="?", help="default: the first keypad found")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--keys", action="store_true", help="also show debounced key edges")
    p.add_argument("--seconds", type=bounded_float(0, 1e9, "seconds"), help="stop after this long")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser(
        "prompt",
        help="arm a keypad and wait for the customer's rating",
        description="Arm the keypad for one rating and print it (exit 1 on "
        "timeout). The rating stays in the keypad's journal for the agent.",
    )
    p.add_argument("url", metavar="URL", help="the keypad, e.g. hid://, sim://K1")
    p.add_argument(
        "--staff",
        required=True,
        type=utf8_text(16, "staff id"),
        metavar="ID",
        help="staff id, up to 16 bytes of UTF-8",
    )
    p.add_argument(
        "--timeout",
        type=bounded_float(0, MAX_PROMPT_S, "seconds"),
        default=30.0,
        metavar="S",
        help=f"seconds to wait, at most {MAX_PROMPT_S:g} (default 30)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_prompt)
