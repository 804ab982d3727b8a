"""The ``ratepad`` command line: one table of commands, one error policy.

Exit status: 0 success; 1 the command ran but found problems (e.g. bad spans in a decoded stream,
a keypad that cannot be reached); 2 bad input (arguments, files, JSON, hex, keypad URLs and
settings: ``LocalProtocolError``; configurations and stores: ``InputError``), reported as one
line on stderr, never a traceback. An error nobody foresaw (a bug) is one line too, exit status
1; ``RATEPAD_DEBUG=1`` shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..errors import InputError, LocalProtocolError, RatepadError
from . import agent, capture, codec, device, doctor, examples, fw, sandbox, selftest, sim, survey
from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    DeviceCommandError,
    Parser,
    UsageError,
    one_line,
)

COMMANDS: tuple[Callable[[Any], None], ...] = (
    codec.register,  # decode, encode
    fw.register,  # fw build, flash
    device.register,  # list, info, monitor, prompt
    selftest.register,  # selftest
    survey.register,  # survey
    sim.register,  # sim
    capture.register,  # record, replay
    doctor.register,  # doctor
    agent.register,  # agent, export, demo
    sandbox.register,  # sandbox
    examples.register,  # examples
)
"""Every command group, in the order ``ratepad --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ratepad", description="ratepad rating keypads: tools for the stack.")
    parser.add_argument("--version", action="version", version=f"ratepad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for register in COMMANDS:
        register(sub)
    sub.add_parser("server", add_help=False, help="the central server (ratepad server --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["server"]:  # its own parser, in the server package (the 'server' extra)
        try:
            from ratepad_server.cli import main as server_main
        except ImportError as exc:
            print(f"ratepad server: needs the 'server' extra ({exc})", file=sys.stderr)
            return EXIT_USAGE
        return server_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except (UsageError, LocalProtocolError, InputError) as exc:
        print(f"ratepad {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (DeviceCommandError, RatepadError) as exc:
        print(f"ratepad {args.command}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except (Exception, RecursionError) as exc:  # a bug: still one line, unless debugging
        if os.environ.get("RATEPAD_DEBUG"):
            raise
        print(
            f"ratepad {args.command}: internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(RATEPAD_DEBUG=1 shows where)",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    return result


def _one_line(exc: BaseException) -> str:
    return one_line(str(exc))


if __name__ == "__main__":
    raise SystemExit(main())
