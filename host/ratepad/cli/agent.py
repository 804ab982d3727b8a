"""`ratepad agent`, `ratepad export` and `ratepad demo`: the window agent from the shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, EXIT_PROBLEMS, UsageError, utf8_text


def _agent_config(args: argparse.Namespace) -> Any:
    """The agent configuration: the --config file (if any), overridden by flags."""
    from dataclasses import replace

    from ..agent.config import AgentConfig, ConfigError, load_config, parse_listen

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
            from ..agent.config import UploadConfig

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

    from ..agent import Agent, ConfigError, StoreError
    from ..agent.report import rating_line

    config = _agent_config(args)
    if not config.devices:
        raise UsageError("no keypads: give --device URL (repeatable) or devices in --config")
    if config.listen is not None:  # before any keypad is connected
        from ..tools.extras import require

        require("bridge")

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
            where = f"in {config.token_file}" if config.token is None else "from the config"
            log(f"bridge {agent.bridge_url}  (bearer token {where})")
        if config.capture:
            log(f"capturing link traffic to {config.capture}")
        while not stop.is_set():
            if not agent.writer.alive:
                # not storing any more: exit so that a supervisor restarts the agent
                log(f"the store writer stopped ({agent.writer.failure}): exiting")
                return EXIT_PROBLEMS
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
    from ..agent import Store, StoreError
    from ..agent.report import export_quarantine, export_rejected, export_store

    db = _agent_config(args).db
    fmt = "csv" if args.csv else "json" if args.json else "text"
    try:
        with Store(db, read_only=True) as store:
            if args.rejected:
                export_rejected(store, fmt, sys.stdout)
            elif args.quarantine:
                export_quarantine(store, fmt, sys.stdout, args.serial)
            else:
                export_store(store, fmt, sys.stdout, args.serial)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from ..agent import ConfigError, StoreError
    from ..agent.demo import run_demo

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


def register(sub: Any) -> None:
    """Add ``agent``, ``export`` and ``demo``."""
    p = sub.add_parser(
        "agent",
        help="run the window agent: store every rating durably, then ACK it; local HTTP bridge",
        description="Connect the keypads, store every rating in SQLite (WAL, synchronous=FULL) "
        "and ACK it only once committed, and serve the local HTTP bridge (bearer token kept "
        "in <db>.token with mode 0600, never printed; API at /v1/openapi.json). Runs until "
        "SIGTERM or Ctrl-C, then commits and ACKs what arrived (exit 0); exits 1 if the store "
        "writer stops. Flags override --config.",
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
        "each, one JSON object per line (--json), or CSV with a header (--csv). --quarantine: "
        "the ratings that could not be stored as ratings, each with its reason and its frame "
        "(hex, for `ratepad decode --hex`). --rejected: what the server refused for good "
        "(kept so that the rest of the upload goes on).",
    )
    p.add_argument("--db", type=Path, metavar="PATH", help="SQLite store (default ratepad.db)")
    p.add_argument("--config", type=Path, metavar="FILE", help="take the store from this config")
    p.add_argument(
        "--serial", type=utf8_text(16, "serial"), metavar="SN", help="only this keypad's ratings"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--quarantine",
        action="store_true",
        help="the ratings kept in quarantine (not storable as ratings) instead",
    )
    which.add_argument(
        "--rejected",
        action="store_true",
        help="the items the server refused for good (HTTP 422) instead",
    )
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
