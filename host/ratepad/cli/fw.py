"""`ratepad fw build` and `ratepad flash`: the firmware bundle and putting it on a keypad."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import EXIT_OK, EXIT_PROBLEMS, DeviceCommandError, Parser, UsageError


def _event_printer(args: argparse.Namespace) -> Callable[[Any], None]:
    """Prints firmware_tools events: one line each, or one JSON object per line with --json."""
    out = sys.stdout

    def emit(event: Any) -> None:
        if args.json:
            out.write(json.dumps(event.as_json(), ensure_ascii=False) + "\n")
        elif event.kind == "warning":
            print(f"ratepad {args.command}: warning: {event.message}", file=sys.stderr)
        else:
            out.write(event.message + "\n")
        out.flush()

    return emit


def cmd_fw_build(args: argparse.Namespace) -> int:
    from ..tools.firmware import FirmwareToolError, build_bundle

    try:
        build_bundle(args.out, board=args.board, src=args.src, listener=_event_printer(args))
    except FirmwareToolError as exc:
        raise UsageError(str(exc)) from None
    except BrokenPipeError as exc:  # nobody reads the progress: stop, the old bundle stays
        raise DeviceCommandError(
            f"the output was closed: build stopped, {args.out} left as it was"
        ) from exc
    return EXIT_OK


def cmd_flash(args: argparse.Namespace) -> int:
    from ..tools.firmware import FirmwareToolError, flash

    try:
        result = flash(
            args.bundle,
            port=args.port,
            serial=args.serial,
            timeout=args.timeout,
            verify=not args.no_verify,
            listener=_event_printer(args),
        )
    except FirmwareToolError as exc:
        raise UsageError(str(exc)) from None
    for problem in result.problems:
        print(f"ratepad flash: {problem}", file=sys.stderr)
    return EXIT_PROBLEMS if result.problems else EXIT_OK


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 600 seconds")
    return value


def register(sub: Any) -> None:
    """Add ``fw`` (``fw build``) and ``flash``."""
    from ..tools.firmware import BOARDS, DEFAULT_OUT

    p = sub.add_parser(
        "fw",
        help="firmware tools: build the bundle that `flash` copies onto a keypad",
        description="Firmware tools; see `ratepad fw build --help`.",
    )
    fw = p.add_subparsers(dest="fw_command", metavar="COMMAND", parser_class=Parser)
    fw.required = True
    p = fw.add_parser(
        "build",
        help="compile the firmware into a bundle",
        description="Compile every firmware/rpfw/*.py to .mpy with mpy-cross, copy boot.py and "
        "main.py as source, and write board.json (board, firmware and protocol versions, schema "
        "fingerprint, mpy version, files with sha256) and manifest.json into the bundle folder.",
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help=f"default {DEFAULT_OUT}"
    )
    p.add_argument("--board", choices=sorted(BOARDS), default="pico", help="default pico")
    p.add_argument("--src", type=Path, metavar="DIR", help="firmware sources (default firmware/)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_fw_build)

    p = sub.add_parser(
        "flash",
        help="copy the firmware bundle onto a keypad in maintenance mode",
        description="Copy a bundle built by `ratepad fw build` onto a Raspberry Pi Pico running "
        "MicroPython >= 1.24 over its USB serial REPL, optionally store the keypad's serial "
        "number, soft-reset it and check its hello. The REPL is there only in maintenance mode: "
        "hold key 1 while plugging the keypad in.",
    )
    p.add_argument("--port", metavar="PORT", help="serial port (default: the one Pico attached)")
    p.add_argument("--serial", metavar="SN", help="serial number to store: 1..16 ASCII characters")
    p.add_argument(
        "--bundle", type=Path, default=DEFAULT_OUT, metavar="DIR", help=f"default {DEFAULT_OUT}"
    )
    p.add_argument(
        "--timeout", type=_seconds, default=5.0, metavar="S", help="wait for the REPL (default 5)"
    )
    p.add_argument("--no-verify", action="store_true", help="do not read the hello after reset")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_flash)
