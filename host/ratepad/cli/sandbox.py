"""`ratepad sandbox`: the agent and its bridge in front of simulated keypads and customers."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from .common import EXIT_OK, UsageError, positive_float


def _keypads(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 16:
        raise argparse.ArgumentTypeError(f"expected 1..16 keypads, got {text!r}")
    return int(text)


def _range(text: str) -> tuple[float, float]:
    low, sep, high = text.partition("-")
    try:
        a = positive_float(low)
        b = positive_float(high) if sep else a
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN-MAX, got {text!r}") from None
    if b < a or b > 3600:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX with MIN <= MAX <= 3600: {text!r}")
    return a, b


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError(f"expected a seed of 0 or more, got {text!r}")
    return int(text)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from ..agent.config import ConfigError, check_origin, load_or_create_token, parse_listen
    from ..tools.extras import require

    require("bridge")
    from ..agent.sandbox import Sandbox
    from ..agent.store import StoreError

    try:
        listen = parse_listen(args.listen)
        if listen is None:
            raise UsageError("the sandbox needs its bridge: --listen 127.0.0.1:PORT")
        origins = tuple(check_origin(o, "--allow-origin") for o in args.allow_origin or ())
        token = load_or_create_token(args.token) if args.token is not None else None
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    sandbox = Sandbox(
        args.keypads,
        listen=listen,
        db=args.db,
        allow_origins=origins,
        answer_after=args.answer_after,
        ignore=args.ignore,
        seed=args.seed,
        token=token,
        log=lambda line: print(f"ratepad sandbox: {line}", flush=True),
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            sandbox.start()
        except (ConfigError, StoreError) as exc:
            raise UsageError(str(exc)) from None
        print(f"ratepad sandbox: keypads {', '.join(sandbox.ids)} with simulated customers")
        print(f"ratepad sandbox: bridge {sandbox.url} (OpenAPI at /v1/openapi.json)")
        print(f"ratepad sandbox: example page {sandbox.page_url}")
        if args.token is None:
            print(f"ratepad sandbox: sandbox token {sandbox.token} (new on every run)", flush=True)
        else:
            print(f"ratepad sandbox: bearer token in {args.token}", flush=True)
        stop.wait(args.seconds)
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats = sandbox.stats()
    print(f"ratepad sandbox: {stats['answered']} prompts answered, {stats['ignored']} ignored")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``sandbox``."""
    p = sub.add_parser(
        "sandbox",
        help="the agent and its bridge with simulated keypads whose customers answer prompts",
        description="Run the agent and its bridge (HTTP, SSE, WebSocket, the example page at /) "
        "in front of simulated keypads SB1..SBn (the real firmware core) whose simulated "
        "customers answer every prompt after a random delay, so teller, queue and browser "
        "software can be integrated without hardware. Runs until Ctrl-C (or --seconds).",
    )
    p.add_argument("--keypads", type=_keypads, default=3, metavar="N", help="1..16 (default 3)")
    p.add_argument(
        "--listen", default="127.0.0.1:8765", metavar="127.0.0.1:PORT", help="bridge address"
    )
    p.add_argument("--db", type=Path, metavar="PATH", help="keep the store (default: temporary)")
    p.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="a web origin allowed to call the bridge, e.g. http://localhost:3000 (repeatable)",
    )
    p.add_argument(
        "--answer-after",
        type=_range,
        default=(0.5, 2.0),
        metavar="MIN-MAX",
        help="customers answer after MIN..MAX seconds (default 0.5-2)",
    )
    p.add_argument(
        "--ignore", type=_share, default=0.0, metavar="P", help="share of prompts left unanswered"
    )
    p.add_argument(
        "--token",
        type=Path,
        metavar="FILE",
        help="the bearer token kept in FILE (created with mode 0600 if missing), the same on "
        "every run; default: a new one each run",
    )
    p.add_argument("--seed", type=_seed, default=None, metavar="N", help="repeatable customers")
    p.add_argument(
        "--seconds", type=positive_float, default=None, metavar="S", help="stop after S seconds"
    )
    p.set_defaults(func=cmd_sandbox)
