"""The ``ratepad`` command line: one table of commands, one error policy.

Exit status: 0 success; 1 the command ran but found problems (e.g. bad spans in a decoded stream,
a keypad that cannot be reached); 2 bad input (arguments, files, JSON, hex, keypad URLs and
settings: ``LocalProtocolError``; configurations and stores: ``InputError``; an extra that is
not installed, see :mod:`ratepad.tools.extras`), reported as one line on stderr, never a traceback.
An error nobody foresaw (a bug) is one line too, exit status 1; ``RATEPAD_DEBUG=1`` shows its
traceback. Output cut short by a closed pipe (``| head``) is exit status 0, except for commands
that stop half done because of it (``fw build``: 1, the previous bundle kept).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..errors import InputError, LocalProtocolError, RatepadError
from ..tools.extras import missing_extra, needs
from . import (
    agent,
    capture,
    codec,
    device,
    doctor,
    examples,
    fw,
    sandbox,
    selftest,
    sim,
    survey,
    tools,
)
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
    tools.register,  # wireshark, completion
    examples.register,  # examples
)
"""Every command group, in the order ``ratepad --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ratepad", description="ratepad rating keypads: tools for the stack.")
    parser.add_argument(
        "--version",
        action=VersionAction,
        help="print the host version, the protocol and the firmware this ratepad carries",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for register in COMMANDS:
        register(sub)
    sub.add_parser("server", add_help=False, help="the central server (ratepad server --help)")
    parser.set_defaults(root_parser=parser)  # for `ratepad completion`
    return parser


def version_text() -> str:
    """``ratepad --version``: this host's version, the wire protocol it speaks (version and
    schema fingerprint) and the firmware it carries (what ``ratepad fw build`` compiles)."""
    from ..tools.firmware import carried_firmware_version
    from ..wire import codec

    return (
        f"ratepad {__version__}\n"
        f"protocol {codec.PROTOCOL_VERSION} (schema {codec.SCHEMA_FINGERPRINT:#010x})\n"
        f"firmware {carried_firmware_version()}\n"
    )


class VersionAction(argparse.Action):
    """``--version``, worked out only when asked (it reads the carried firmware's version)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        sys.stdout.write(version_text())
        parser.exit(EXIT_OK)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["server"]:  # its own parser, in the server package (the 'server' extra)
        try:
            from ratepad_server.cli import main as server_main

            return server_main(argv[1:])
        except Exception as exc:
            return _exit_status("server", exc)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except (Exception, KeyboardInterrupt, RecursionError) as exc:
        return _exit_status(args.command, exc)
    return result


def _exit_status(command: str, exc: BaseException) -> int:
    """The one line and the exit status for what ``command`` raised (the module docstring)."""
    if isinstance(exc, BrokenPipeError) or isinstance(exc.__cause__, BrokenPipeError):
        _silence_stdout()  # else Python's last flush complains about the closed pipe
    extra = missing_extra(exc)
    if extra is not None:  # checked first: a transport wraps hidapi's ImportError, say
        print(f"ratepad {command}: {needs(extra)}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, UsageError | LocalProtocolError | InputError):
        print(f"ratepad {command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, DeviceCommandError | RatepadError):
        print(f"ratepad {command}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, BrokenPipeError):
        return EXIT_OK
    if os.environ.get("RATEPAD_DEBUG"):  # a bug: still one line, unless debugging
        raise exc
    print(
        f"ratepad {command}: internal error: {type(exc).__name__}: {_one_line(exc)} "
        "(RATEPAD_DEBUG=1 shows where)",
        file=sys.stderr,
    )
    return EXIT_PROBLEMS


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _one_line(exc: BaseException) -> str:
    return one_line(str(exc))


if __name__ == "__main__":
    raise SystemExit(main())
