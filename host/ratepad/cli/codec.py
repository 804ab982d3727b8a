"""`ratepad decode` and `ratepad encode`: frames to messages and back."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..wire import codec
from ..wire.codec_support import plain_value
from ..wire.stream import BadSpan, Frame, StreamDecoder
from .common import EXIT_OK, EXIT_PROBLEMS, UsageError, load_json

Stream = tuple[str | None, str | None, bytes]
"""(device, direction, bytes): one byte stream to decode; device is None for raw input."""


def _read_streams(args: argparse.Namespace) -> tuple[list[Stream], str | None]:
    """The byte streams to decode, and where a capture was cut short (None if whole)."""
    if args.hex is not None:
        if args.file is not None:
            raise UsageError("give either FILE or --hex, not both")
        try:
            return [(None, None, bytes.fromhex("".join(args.hex.split())))], None
        except ValueError:
            raise UsageError("--hex is not valid hexadecimal") from None
    if args.file is None or args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    from ..capture.pcapng import PCAP_MAGICS, PCAPNG_MAGIC, CaptureError, scan_capture

    if data[:4] != PCAPNG_MAGIC and data[:4] not in PCAP_MAGICS:
        if args.file and args.file.lower().endswith((".pcapng", ".pcap")):
            raise UsageError(f"{args.file} is not a pcapng or pcap capture")
        if args.device is not None:
            raise UsageError("--device goes with a USB capture")
        return [(None, None, data)], None
    try:
        scan = scan_capture(data, usb_device=args.device)
    except CaptureError as exc:
        raise UsageError(str(exc)) from None
    streams: dict[tuple[str, str], list[bytes]] = {}
    for chunk in scan.chunks:
        streams.setdefault((chunk.device, chunk.direction), []).append(chunk.data)
    out: list[Stream] = [(dev, d, b"".join(parts)) for (dev, d), parts in streams.items()]
    return out, scan.cut


def _frame_line(item: Frame) -> dict[str, Any]:
    type_name, fields = codec.message_fields(item.message)
    return {"type": type_name, **fields}


def _describe(item: Frame | BadSpan) -> str:
    if isinstance(item, BadSpan):
        return f"@{item.offset:<6} error {item.kind} ({item.length} bytes): {item.detail}"
    type_name, fields = codec.message_fields(item.message)
    flags = "".join(f" [{f}]" for f in plain_value(item.flags)) if item.flags else ""
    # the field values as JSON text: ints (most fields) as they are, the rest by the C encoder
    body = " ".join([f"{k}={v}" if type(v) is int else f"{k}={_ENC(v)}" for k, v in fields.items()])
    return f"@{item.offset:<6} seq={item.seq:<5} {type_name}{flags} {body}".rstrip()


_ENC = json.JSONEncoder(ensure_ascii=False).encode


PROGRESS_BYTES = 8 << 20  # a progress bar (on a terminal) for streams longer than this
SLICE = 1 << 20


def _decoded(data: bytes) -> list[Frame | BadSpan]:
    """Every frame and bad span of one stream; with a progress bar on a terminal if it is long."""
    decoder = StreamDecoder()
    if len(data) < PROGRESS_BYTES or not sys.stderr.isatty():
        return [*decoder.feed(data), *decoder.finish()]
    from tqdm import tqdm

    out: list[Frame | BadSpan] = []
    with tqdm(total=len(data), unit="B", unit_scale=True, file=sys.stderr, leave=False) as bar:
        for i in range(0, len(data), SLICE):
            out.extend(decoder.feed(data[i : i + SLICE]))
            bar.update(min(SLICE, len(data) - i))
    out.extend(decoder.finish())
    return out


def cmd_decode(args: argparse.Namespace) -> int:
    bad = 0
    streams, cut = _read_streams(args)
    write = sys.stdout.write
    dumps = _ENC
    for device, direction, data in streams:
        where: dict[str, Any] = {} if device is None else {"device": device, "direction": direction}
        lines: list[str] = []
        if device is not None and not args.json:
            lines.append(f"# {device} {direction} ({len(data)} bytes)")
        for item in _decoded(data):
            if isinstance(item, BadSpan):
                bad += 1
                if args.json:
                    obj = {"error": item.kind, "offset": item.offset, "length": item.length}
                    lines.append(dumps({**obj, **where}))
                else:
                    lines.append(_describe(item))
            elif args.json:
                lines.append(dumps({**_frame_line(item), **where}))
            else:
                lines.append(_describe(item))
            if len(lines) >= 4096:
                write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            write("\n".join(lines) + "\n")
    if cut is not None:
        sys.stdout.flush()
        raise UsageError(f"{args.file}: the capture is cut short ({cut}); decoded what came before")
    return EXIT_PROBLEMS if bad else EXIT_OK


def cmd_encode(args: argparse.Namespace) -> int:
    obj = load_json(args.message, "message")
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


def _seq(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError("seq must be 0..65535")
    return value


def register(sub: Any) -> None:
    """Add ``decode`` and ``encode``."""
    p = sub.add_parser(
        "decode",
        help="decode a byte stream or a capture (ratepad, usbmon, USBPcap) into messages",
        description="Decode frames from raw stream bytes (FILE, - for stdin, or --hex) or a "
        "pcapng/pcap capture: ratepad's own, or a USB capture (Linux usbmon, Windows USBPcap) "
        "from which the keypad's HID interrupt transfers are taken. Bad spans are "
        "reported with their byte offset and decoding goes on. "
        "Exit status 1 if any bad span was found.",
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="raw stream bytes or .pcapng; - = stdin")
    p.add_argument("--hex", metavar="HEX", help="decode these hex bytes instead of a file")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--device",
        metavar="BUS.ADDR",
        help="in a USB capture (usbmon, USBPcap): the keypad's bus and address (default: the "
        "devices that enumerate with the keypad's VID:PID)",
    )
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
