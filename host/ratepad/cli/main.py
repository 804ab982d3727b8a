"""The ``ratepad`` command line: one table of commands, one error policy.

Exit status: 0 success; 1 the command ran but found problems (e.g. bad spans in a decoded stream,
a keypad that cannot be reached); 2 bad input (arguments, files, JSON, hex), reported as one line
on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..errors import RatepadError
from . import agent, capture, codec, device, doctor, fw, sandbox, sim
from .common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, DeviceCommandError, Parser, UsageError

COMMANDS: tuple[Callable[[Any], None], ...] = (
    codec.register,  # decode, encode
    fw.register,  # fw build, flash
    device.register,  # list, info, monitor, prompt
    sim.register,  # sim
    capture.register,  # record, replay
    doctor.register,  # doctor
    agent.register,  # agent, export, demo
    sandbox.register,  # sandbox
)
"""Every command group, in the order ``ratepad --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ratepad", description="ratepad rating keypads: tools for the stack.")
    parser.add_argument("--version", action="version", version=f"ratepad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except UsageError as exc:
        print(f"ratepad {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DeviceCommandError, RatepadError) as exc:
        print(f"ratepad {args.command}: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    return result


if __name__ == "__main__":
    raise SystemExit(main())
