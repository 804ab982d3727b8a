"""The generated Wireshark dissector (wireshark/ratepad.lua) shows what `ratepad decode` shows.

One capture holds every golden vector in both directions of two keypads' links, cut into 64-byte
HID reports padded with 0x00 and interleaved across the four streams, plus bad spans of every kind
the dissector can see. tshark's PDML output (values and display text of every field, in tree
order) is normalised to the JSON lines of `ratepad decode --json` and compared per device and
direction, in order; errors must be at the same offsets with the same lengths.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

import pytest
from cobs import cobs

from ratepad.capture.pcapng import CaptureWriter
from ratepad.wire import codec
from ratepad.wire.stream import BadSpan, decode_stream
from ratepad_protocol.model import Field, build_model

from conftest import ROOT, load_vectors

TSHARK = shutil.which("tshark")
LUA = ROOT / "wireshark" / "ratepad.lua"
DEVICES = ("KP-0001", "KP-0002")
DIRECTIONS = ("in", "out")
ZERO_FILLED = " (zero-filled: past the end of the payload)"
MODEL = build_model()

pytestmark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed (`make setup` installs it)"
)

Stream = tuple[str, str]
Expected = tuple[Any, ...]
"""("frame", type, seq, header flags) or ("error", kind) for each item put into a stream."""


def _frame(body: bytes) -> bytes:
    return cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\0"


def _body(type_id: int, payload: bytes, seq: int = 0, flags: int = 0, version: int = 1) -> bytes:
    return struct.pack("<BBBH", version, flags, type_id, seq) + payload


def _items(rng: random.Random) -> list[tuple[bytes, list[Expected]]]:
    """(bytes, what they decode to) for every vector and every kind of bad span, shuffled."""
    items: list[tuple[bytes, list[Expected]]] = []
    for v in load_vectors():
        frame = bytes.fromhex(v["frame_hex"])
        flags = v.get("header_flags", [])
        items.append((frame, [("frame", v["message"]["type"], v.get("seq", 0), flags)]))
    hello = bytes.fromhex(
        next(v["frame_hex"] for v in load_vectors() if v["name"] == "hello/typical")
    )
    hello_body = cobs.decode(hello[:-1])[:-4]
    ack = _frame(_body(0x41, struct.pack("<I", 7), seq=5))
    garbage = bytes(rng.randrange(1, 256) for _ in range(23))
    corrupted = bytearray(hello)
    corrupted[20] = corrupted[20] % 255 + 1  # still no zero byte
    items += [
        # evolution: a payload cut after uptime_ms reads the texts as "" and acked_seq as 0;
        # bytes past the known fields are ignored
        (_frame(hello_body[: 5 + 24]), [("frame", "hello", 300, [])]),
        (_frame(_body(0x41, struct.pack("<I", 9) + b"more", seq=6)), [("frame", "ack", 6, [])]),
        (_frame(_body(0x41, b"", seq=7, flags=0x80)), [("frame", "ack", 7, ["bit7"])]),
        (
            codec.encode_frame("login", {"staff_id": "<&>", "display_name": '"Zoë" & co'}, seq=8),
            [("frame", "login", 8, [])],
        ),
        # bad spans
        (b"\x09abc\0", [("error", "cobs")]),
        (garbage + b"\0", [("error", _kind(garbage))]),
        (b"\x05junk" + ack, [("error", "crc"), ("frame", "ack", 5, [])]),  # valid COBS, bad CRC
        (
            bytes(corrupted),
            [("error", _kind(bytes(corrupted[:-1])))],
        ),  # crc, or cobs if a code byte
        (cobs.encode(b"\x01\x00\x41\x00") + b"\0", [("error", "short")]),
        (_frame(_body(0x41, bytes(4), version=2)), [("error", "version")]),
        (_frame(_body(0x46, b"\x11" + b"x" * 17)), [("error", "payload")]),
        (_frame(_body(0x46, b"\x02\xc3\x28")), [("error", "payload")]),
        (bytes(range(1, 201)) * 2 + ack, [("error", "too_long"), ("frame", "ack", 5, [])]),
    ]
    rng.shuffle(items)
    return items


def _kind(span: bytes) -> str:
    """The kind of error `ratepad.wire.stream` reports for a bad span."""
    (item,) = decode_stream(span + b"\0")
    assert isinstance(item, BadSpan)
    return item.kind


def _build_capture(path: Path) -> dict[Stream, list[Expected]]:
    """Write the capture; returns what each stream holds, in order."""
    rng = random.Random(20240611)
    reports: dict[Stream, list[bytes]] = {}
    expected: dict[Stream, list[Expected]] = {}
    for device in DEVICES:
        for direction in DIRECTIONS:
            items = _items(rng)
            expected[device, direction] = [e for _, exp in items for e in exp]
            chunks: list[bytes] = []
            while items:  # bursts of 1..4 items, the last report of each padded with zeros
                count = rng.randint(1, 4)
                burst = b"".join(data for data, _ in items[:count])
                del items[:count]
                chunks += [burst[i : i + 64].ljust(64, b"\0") for i in range(0, len(burst), 64)]
            reports[device, direction] = chunks
    with CaptureWriter(path) as writer:
        ts = 1_700_000_000_000_000
        while any(reports.values()):
            stream = rng.choice([s for s, chunks in reports.items() if chunks])
            ts += rng.randint(1, 5000)
            writer.write(*stream, reports[stream].pop(0), timestamp_us=ts)
    return expected


def _decode_cli(path: Path) -> dict[Stream, list[dict[str, Any]]]:
    exe = Path(sys.executable).with_name("ratepad")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ratepad"]
    out = subprocess.run(
        [*cmd, "decode", str(path), "--json"], capture_output=True, timeout=60, check=False
    )
    assert out.returncode == 1, out.stderr.decode()  # 1: it found the bad spans
    streams: dict[Stream, list[dict[str, Any]]] = {}
    for line in out.stdout.decode().splitlines():
        item = json.loads(line)
        key = (item.pop("device"), item.pop("direction"))
        streams.setdefault(key, []).append(item)
    return streams


def _tshark(path: Path, *extra: str) -> ET.Element:
    assert TSHARK is not None
    out = subprocess.run(
        [TSHARK, "-r", str(path), "-X", f"lua_script:{LUA}", "-T", "pdml", *extra],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "Lua Error" not in text, text[max(0, text.index("Lua Error") - 2000) :][:4000]
    return ET.fromstring(text)


def _match(pattern: str, text: str) -> re.Match[str]:
    m = re.fullmatch(pattern, text)
    assert m, f"{text!r} does not match {pattern!r}"
    return m


def _value(f: Field, el: ET.Element) -> Any:
    """A field as Wireshark shows it, spelled like `ratepad decode --json`."""
    show = el.get("show", "")
    shown = el.get("showname", "").removesuffix(ZERO_FILLED)
    label = re.escape(f.name)
    if f.kind == "uint":
        return int(show)
    if f.kind == "bool":
        value = _match(rf"{label}: (True|False)", shown).group(1)
        return value == "True"
    if f.kind == "enum":
        name, number = _match(rf"{label}: (.+) \((\d+)\)", shown).groups()
        return int(number) if name == "Unknown" else name
    if f.kind == "flags":
        names = _match(rf"{label}: 0x[0-9a-f]+ \[(.*)\]", shown).group(1)
        return names.split(", ") if names else []
    if f.kind == "maybe":
        if shown == f"{f.name}: none":
            assert int(show) == f.none_value
            return None
        return int(show)
    assert f.kind == "text"
    return show


def _normalise(proto: ET.Element) -> tuple[Stream, dict[str, Any], Expected] | None:
    """(stream, item as `ratepad decode --json` spells it, its kind/seq/flags) of one item."""
    fields: dict[str, ET.Element] = {}
    for el in proto.iter("field"):
        fields.setdefault(el.get("name", ""), el)
    stream = (fields["ratepad.device"].get("show", ""), fields["ratepad.direction"].get("show", ""))
    if "ratepad.pending" in fields:
        return None  # a chunk's bytes waiting for their delimiter
    if "ratepad.error" in fields:
        kind = fields["ratepad.error"].get("show", "")
        assert f"ratepad.expert.{kind}" in fields, "bad spans carry expert info"
        item = {
            "error": kind,
            "offset": int(fields["ratepad.offset"].get("show", "")),
            "length": int(fields["ratepad.length"].get("show", "")),
        }
        return stream, item, ("error", kind)
    assert fields["ratepad.crc_ok"].get("show") == "1"
    name, type_id = _match(
        r"type: (.+) \(0x([0-9a-f]+)\)", fields["ratepad.type"].get("showname", "")
    ).groups()
    flags = _match(
        r"flags: 0x[0-9a-f]+ \[(.*)\]", fields["ratepad.flags"].get("showname", "")
    ).group(1)
    seq = int(fields["ratepad.seq"].get("show", ""))
    if name == "Unknown":
        payload = fields["ratepad.unknown.payload"].get("show", "").replace(":", "")
        item = {"type": "unknown", "type_id": int(type_id, 16), "payload": payload}
    else:
        spec = MODEL.by_name(name)
        item = {"type": name}
        for f in spec.fields:
            item[f.name] = _value(f, fields[f"ratepad.{name}.{f.name}"])
    return stream, item, ("frame", item["type"], seq, flags.split(", ") if flags else [])


def _shown(
    root: ET.Element,
) -> tuple[dict[Stream, list[dict[str, Any]]], dict[Stream, list[Expected]]]:
    items: dict[Stream, list[dict[str, Any]]] = {}
    kinds: dict[Stream, list[Expected]] = {}
    for packet in root.iter("packet"):
        for proto in packet.findall("proto"):
            if proto.get("name") != "ratepad":
                continue
            found = _normalise(proto)
            if found is not None:
                stream, item, kind = found
                items.setdefault(stream, []).append(item)
                kinds.setdefault(stream, []).append(kind)
    return items, kinds


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Stream, list[Expected]]]:
    path = tmp_path_factory.mktemp("dissector") / "links.pcapng"
    return path, _build_capture(path)


def test_tshark_shows_what_ratepad_decode_shows(
    capture: tuple[Path, dict[Stream, list[Expected]]],
) -> None:
    path, expected = capture
    decoded = _decode_cli(path)
    shown, kinds = _shown(_tshark(path))
    assert set(shown) == set(decoded) == set(expected)
    seen = {item.get("type", item.get("error")) for items in shown.values() for item in items}
    assert seen >= {m.name for m in MODEL.messages} | {"unknown"}
    assert seen >= {"cobs", "short", "crc", "version", "payload", "too_long"}
    for stream in expected:
        assert kinds[stream] == expected[stream], stream
        assert len(shown[stream]) == len(decoded[stream]), stream
        for got, want in zip(shown[stream], decoded[stream], strict=True):
            assert got == want, stream


def test_dissecting_again_shows_the_same(
    capture: tuple[Path, dict[Stream, list[Expected]]],
) -> None:
    path, _ = capture
    once = _shown(_tshark(path))
    # the read filter makes tshark build a tree on its first pass, which feeds the streams; the
    # second pass shows every packet again from the per-packet cache
    assert _shown(_tshark(path, "-2", "-R", "ratepad")) == once
    # without it the first pass has no tree (so no interface id): the second pass feeds them
    assert _shown(_tshark(path, "-2")) == once
