"""`ratepad record URL` and `ratepad replay FILE`: a keypad link on file, and played back.

``record`` talks to a keypad like ``monitor`` (prints its events, never ACKs) while every byte
of the link, both directions, goes into a pcapng capture (``ratepad.capture``) named after the
keypad's serial number, with wall-clock timestamps. ``replay`` feeds the keypad-to-host side of
such a capture back through the host stack (``replay://`` transport, then a sans-IO ``Session``)
as fast as possible or on the recorded timing, prints the events and ends with a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from ..capture.pcapng import CaptureError, CaptureWriter, Direction, scan_capture
from ..capture.tap import CaptureTap, CapturingTransport, device_label
from ..errors import BadURLError, EndOfCapture, RatepadError
from ..eventformat import display_line, event_json
from ..events import CommandResult, Event
from ..wire import codec
from ..wire.session import Session
from ..wire.stream import Frame
from .common import EXIT_OK, DeviceCommandError, UsageError, nonnegative_float, positive_float
from .device import print_events

__all__ = ["cmd_record", "cmd_replay", "register"]

LINGER_S = 0.5  # --serve: the connection stays this long after the end of the capture


# --- record -------------------------------------------------------------------------------------
class RecordTap(CaptureTap):
    """A one-keypad capture whose device is named once the keypad has said who it is.

    Chunks are held (with the time they crossed the link) until ``name_device`` gives the
    keypad's serial number, or until ``close`` (then the fallback name is used).
    """

    def __init__(self, path: str | Path, fallback: str) -> None:
        # not CaptureTap.__init__: another application name in the file
        self.path = Path(path)
        self._writer = CaptureWriter(self.path, application="ratepad record")
        self._lock = threading.Lock()
        self._closed = False
        self.fallback = fallback
        self.device: str | None = None
        self._held: list[tuple[Direction, bytes, int]] = []
        self.chunks = Counter[Direction]()
        self.bytes = Counter[Direction]()

    def record(self, device: str, direction: Direction, data: bytes) -> None:
        if not data:
            return
        stamp = time.time_ns() // 1000
        with self._lock:
            if self._closed:
                return
            self.chunks[direction] += 1
            self.bytes[direction] += len(data)
            if self.device is None:
                self._held.append((direction, bytes(data), stamp))
            else:
                self._writer.write(self.device, direction, data, stamp)

    def name_device(self, name: str) -> None:
        """Write what was held, and everything from now on, as device ``name``."""
        with self._lock:
            if self.device is not None or self._closed:
                return
            self.device = name
            for direction, data, stamp in self._held:
                self._writer.write(name, direction, data, stamp)
            self._held.clear()

    def close(self) -> None:
        self.name_device(self.fallback)
        super().close()


def _default_out() -> Path:
    return Path(time.strftime("ratepad-%Y%m%d-%H%M%S.pcapng"))


def cmd_record(args: argparse.Namespace) -> int:
    from ..keypad import Keypad
    from ..transports import open_transport

    out: Path = args.out or _default_out()
    try:
        transport = open_transport(args.url)
    except BadURLError as exc:  # the caller's mistake, not the keypad's: exit status 2
        raise UsageError(str(exc)) from None
    except RatepadError as exc:
        raise DeviceCommandError(str(exc)) from None
    try:
        tap = RecordTap(out, device_label(args.url))
    except CaptureError as exc:
        raise UsageError(str(exc)) from None
    try:
        try:
            kp = Keypad(CapturingTransport(transport, tap, tap.fallback), software="ratepad record")
        except RatepadError as exc:
            if tap.chunks.total():
                raise DeviceCommandError(f"{exc} (what crossed the link is in {out})") from None
            tap.close()
            with contextlib.suppress(OSError):
                out.unlink()
            raise DeviceCommandError(str(exc)) from None
        with kp:
            assert kp.info is not None
            tap.name_device(kp.info.serial or tap.fallback)
            _record_events(args, kp, out)
    finally:
        tap.close()
        total = tap.chunks.total()
        if total:
            print(
                f"# wrote {out}: {total} chunks (keypad to host {tap.chunks['in']} chunks, "
                f"{tap.bytes['in']} bytes; host to keypad {tap.chunks['out']} chunks, "
                f"{tap.bytes['out']} bytes)",
                file=sys.stderr,
            )
    return EXIT_OK


def _record_events(args: argparse.Namespace, kp: Any, out: Path) -> None:
    if args.keys:
        try:
            kp.key_events(True)
        except RatepadError as exc:
            raise DeviceCommandError(f"cannot turn key events on: {exc}") from None
    print(
        f"# recording {args.url} ({kp.info.serial}) to {out}; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    print_events(kp, args)


# --- replay -------------------------------------------------------------------------------------
class CountingSession(Session):
    """A Session that counts the frames it handles."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames = 0

    def _handle(self, frame: Frame) -> bytes:
        self.frames += 1
        return super()._handle(frame)


def replay_url(
    path: str | Path,
    device: str | None = None,
    speed: float = 0.0,
    loop: int = 1,
    skip: float | None = None,
    gap: float = 0.0,
) -> str:
    """The ``replay://`` URL of a capture file."""
    query: dict[str, str] = {"speed": repr(speed)}
    if device is not None:
        query["device"] = device
    if loop != 1:
        query["loop"] = str(loop)
    if skip is not None:
        query["skip"] = repr(skip)
    if gap:
        query["gap"] = repr(gap)
    location = quote(Path(path).absolute().as_posix(), safe="/")
    return f"replay://{location}?{urlencode(query)}"


def _cannot_replay(path: str, device: str | None, exc: RatepadError) -> str:
    """Why the replay transport could not open a capture, in the user's terms."""
    try:
        scan = scan_capture(path)
    except CaptureError:
        return str(exc)  # not a readable capture: the transport said so
    devices = sorted({c.device for c in scan.chunks if c.direction == "in"} | set(scan.usb_devices))
    if not devices:
        return f"{path}: no keypad-to-host traffic to replay"
    return f"{path}: no traffic from device {device!r} (devices: {', '.join(devices)})"


def _stamp(timestamp_us: int) -> str:
    seconds, us = divmod(timestamp_us, 1_000_000)
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{us // 1000:03d}"


def cmd_replay(args: argparse.Namespace) -> int:
    from ..capture.replay import ReplayTransport

    path = str(args.file)
    if not Path(path).exists():
        raise UsageError(f"cannot read {path}: no such file")
    if not Path(path).is_file():
        raise UsageError(f"cannot read {path}: not a file")
    url = replay_url(path, args.device, args.speed, args.loop, args.skip, args.gap)
    transport = ReplayTransport(url)
    try:
        transport.open()
    except RatepadError as exc:
        raise UsageError(_cannot_replay(path, args.device, exc)) from None
    if args.serve is not None:
        if transport.cut is not None:
            print(f"ratepad replay: warning: the capture is cut short ({transport.cut})",
                  file=sys.stderr)  # fmt: skip
        return _serve_replay(args, transport)
    # the clock of the original host: the capture time of the chunk being handled
    session = CountingSession(clock=lambda: transport.timestamp_us // 1000, software="replay")
    kinds = Counter[str]()
    chunks = 0
    nbytes = 0
    started = time.monotonic()
    try:
        while True:
            try:
                data = transport.read(1.0)
            except EndOfCapture:
                break
            if not data:
                continue
            chunks += 1
            nbytes += len(data)
            session.receive_data(data)  # replies (time sync, host_hello) go nowhere
            while (event := session.next_event()) is not None:
                _print_event(args, event, transport.timestamp_us, kinds)
    except KeyboardInterrupt:
        pass
    finally:
        transport.close()
    elapsed = time.monotonic() - started
    summary: dict[str, Any] = {
        "file": path,
        "device": transport.device,
        "serial": session.serial,
        "speed": args.speed,
        "passes": transport.passes,
        "chunks": chunks,
        "bytes": nbytes,
        "frames": session.frames,
        "bad_spans": session.bad_spans,
        "events": kinds.total(),
        "by_kind": dict(sorted(kinds.items())),
        "duration_s": round(elapsed, 3),
    }
    if transport.lateness:
        summary["lateness_ms"] = {
            "median": round(statistics.median(transport.lateness) * 1000, 3),
            "max": round(max(transport.lateness) * 1000, 3),
        }
    if args.json:
        print(json.dumps({"summary": summary}, ensure_ascii=False), flush=True)
    elif transport.cut is None:
        print(_summary_line(summary), file=sys.stderr)
    if transport.cut is not None:  # as `decode` does: what came before, then exit status 2
        raise UsageError(f"{path}: the capture is cut short ({transport.cut}); replayed what came "
                         f"before ({_summary_line(summary).lstrip('# ')})")  # fmt: skip
    return EXIT_OK


def _serve_replay(args: argparse.Namespace, transport: Any) -> int:
    """``--serve``: the capture's keypad served as ``tcp://HOST:PORT/ID`` to one host."""
    from ..scenario.serve import ServeError, parse_address
    from ..sim.serve import Dropped, KeypadServer, Refused

    transport.close()
    device = str(transport.device)
    done = threading.Event()
    busy = threading.Lock()

    class Served:
        """One connection: a fresh replay of the capture (``ServedKeypad``)."""

        def __init__(self) -> None:
            self.replay = type(transport)(transport.url)

        def connect(self) -> None:
            if done.is_set():
                raise Refused(f"{device}: the replay is over")
            if not busy.acquire(blocking=False):
                raise Refused(f"{device} is in use by another host")
            self.replay.open()

        def disconnect(self) -> None:
            self.replay.close()
            if busy.locked():
                busy.release()

        def read(self, timeout: float | None) -> bytes:
            try:
                data: bytes = self.replay.read(0.1 if timeout is None else timeout)
                return data
            except (EndOfCapture, RatepadError):
                # let the host's last bytes in first: closing on unread data resets the
                # connection, and the host could lose what it has not read yet
                time.sleep(LINGER_S)
                done.set()
                raise Dropped(device) from None

        def write(self, data: bytes) -> None:
            """What the host sends goes nowhere."""

    try:
        address = parse_address(args.serve)
    except ServeError as exc:
        raise UsageError(str(exc)) from None
    try:
        server = KeypadServer(address, lambda name: Served() if name == device else None)
    except OSError as exc:
        raise UsageError(f"cannot serve on {args.serve}: {exc.strerror or exc}") from None
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    url = f"{server.url_base}/{device}"
    if args.json:
        print(json.dumps({"device": device, "url": url}), flush=True)
    else:
        print(f"serving {url}", flush=True)
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    print(f"# served {device} from {args.file} to the end of the capture", file=sys.stderr)
    return EXIT_OK


def _print_event(
    args: argparse.Namespace, event: Event, timestamp_us: int, kinds: Counter[str]
) -> None:
    obj = event_json(event)
    kinds[obj["event"]] += 1
    if isinstance(event, CommandResult):  # answers to the recording host's commands
        code = event.code
        obj["code"] = code.name.lower() if isinstance(code, codec.ResultCode) else code
    if args.json:
        obj["timestamp_us"] = timestamp_us  # when the original host got it
        print(json.dumps(obj, ensure_ascii=False), flush=True)
    elif isinstance(event, CommandResult):
        print(
            f"{_stamp(timestamp_us)} result  request_id={event.request_id} code={obj['code']} "
            f"{event.detail}".rstrip(),
            flush=True,
        )
    else:
        print(display_line(event, stamp=_stamp(timestamp_us)), flush=True)


def _summary_line(s: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in s["by_kind"].items()) or "none"
    line = (
        f"# replayed {s['device']}: {s['chunks']} chunks, {s['bytes']} bytes, "
        f"{s['frames']} frames ({s['bad_spans']} bad spans), {s['events']} events ({kinds}) "
        f"in {s['duration_s']:.3f} s"
    )
    if "lateness_ms" in s:
        late = s["lateness_ms"]
        line += f"; lateness median {late['median']:.3f} ms, max {late['max']:.3f} ms"
    return line


# --- parser -------------------------------------------------------------------------------------
def register(sub: Any) -> None:
    """Add `record` and `replay` to the ``ratepad`` sub-command parser."""
    p = sub.add_parser(
        "record",
        help="watch a keypad like monitor and record its link to a .pcapng capture",
        description="Connect to a keypad, print its events like `monitor` (never ACKs) and "
        "write every byte of the link, both directions, to a pcapng capture (device = the "
        "keypad's serial number, wall-clock timestamps) until Ctrl-C or --seconds. Read it "
        "with `ratepad decode FILE`, `ratepad replay FILE` or Wireshark.",
    )
    p.add_argument("url", metavar="URL", help="e.g. hid://, usb://RP-0001, sim://K1")
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="capture file (default ratepad-YYYYMMDD-HHMMSS.pcapng here)",
    )
    p.add_argument("--seconds", type=positive_float, metavar="S", help="stop after this long")
    p.add_argument("--keys", action="store_true", help="also stream and show key edges")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "replay",
        help="play a .pcapng capture back through the host stack and print its events",
        description="Feed the keypad-to-host traffic of a capture (one keypad) through the "
        "host stack (replay:// transport, session, events) and print the events like "
        "`monitor`, stamped with their capture time; then a summary (frames, events and, "
        "for timed replay, how late chunks were handed out) on stderr, or as a last JSON "
        'line {"summary": ...} with --json. Nothing is sent to any keypad.',
    )
    p.add_argument(
        "file",
        metavar="FILE",
        help="a capture (ratepad record, --capture; or Linux usbmon / Windows USBPcap)",
    )
    p.add_argument(
        "--device",
        metavar="ID",
        help="the keypad to replay (default: the first); BUS.ADDR in a USB capture",
    )
    p.add_argument(
        "--speed",
        type=nonnegative_float,
        default=0.0,
        metavar="X",
        help="0 = as fast as possible (default), 1 = real time, 2 = twice as fast ...",
    )
    p.add_argument(
        "--loop",
        type=_loops,
        nargs="?",
        const=0,
        default=1,
        metavar="N",
        help="play the capture N times; without N, until Ctrl-C",
    )
    p.add_argument(
        "--skip",
        type=nonnegative_float,
        metavar="S",
        help="shorten every pause longer than S seconds to S (timed replay)",
    )
    p.add_argument(
        "--gap",
        type=nonnegative_float,
        default=0.0,
        metavar="G",
        help="at least G seconds between chunks",
    )
    p.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="serve the recorded keypad as tcp://HOST:PORT/ID to another process (port 0: a "
        "free one) until the capture has been played to its end",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_replay)


def _loops(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("expected 0..1000000 (0: until Ctrl-C)")
    return value
