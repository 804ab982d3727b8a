"""Emit the Wireshark Lua dissector (``wireshark/ratepad.lua``) from the checked model.

The dissector binds to ``LINKTYPE_USER0`` (the link type of ratepad's pcapng captures), and in
USB captures (usbmon, USBPcap) to the keypad's HID interrupt transfers: by VID:PID when the
capture holds the keypad's device descriptor, else as a heuristic dissector (a 64-byte report that
completes a frame passing the COBS and CRC-32 checks). Each
packet is one chunk of a keypad's byte stream; the dissector reassembles the stream of every
(interface, direction) on the first pass, decodes it exactly like the host stream (COBS, CRC-32,
header, payload with the evolution zero-fill, resynchronisation inside bad spans, ``too_long``
spans) and caches what each packet completed under its packet number, so dissecting a packet again
(clicking it, filtering, a second pass) shows the same result.

The generated part is data: value strings, flag bits and one field table per message. The stream
decoder and the tree building are written once, as Lua, in ``runtime/dissector.lua``.

Limits: a frame left without its delimiter at the end of a capture is not reported (``truncated``:
a dissector never learns that the capture ended); Wireshark shows control characters in texts
escaped, and a text zero-filled by the evolution rule ends at its first NUL.
"""

from __future__ import annotations

import re
from pathlib import Path

from .emit import Lines, banner
from .model import Field, Model

PROTO = "ratepad"

_ERROR_TEXT = {  # the kinds of ratepad.errors.FrameError.KINDS
    "cobs": "bad COBS byte stuffing",
    "short": "frame shorter than header and CRC",
    "crc": "CRC-32 mismatch",
    "version": "unsupported protocol version",
    "payload": "payload field cannot be decoded",
    "too_long": "no delimiter within the maximum frame length",
    "truncated": "capture ended inside a frame",  # never shown: Lua sees no end of capture
}

_TOP_FIELDS = r"""-- header, frame and bad-span fields
local PF = {
  device = ProtoField.string("ratepad.device", "device", base.UNICODE,
    "keypad (interface name)"),
  direction = ProtoField.string("ratepad.direction", "direction", base.ASCII,
    "in = keypad to host, out = host to keypad"),
  offset = ProtoField.uint64("ratepad.offset", "offset", base.DEC, nil, nil,
    "offset of the first byte in this direction's byte stream"),
  length = ProtoField.uint32("ratepad.length", "length", base.DEC, nil, nil,
    "bytes in the stream, delimiter included"),
  pending = ProtoField.uint32("ratepad.pending", "pending", base.DEC, nil, nil,
    "stream bytes waiting for a delimiter after this packet"),
  version = ProtoField.uint8("ratepad.version", "version", base.DEC),
  flags = ProtoField.uint8("ratepad.flags", "flags", base.HEX, nil, nil, "header flags"),
  type = ProtoField.uint8("ratepad.type", "type", base.HEX, TYPE_NAMES, nil, "message type"),
  seq = ProtoField.uint16("ratepad.seq", "seq", base.DEC, nil, nil, "sequence number"),
  crc = ProtoField.uint32("ratepad.crc", "crc", base.HEX, nil, nil,
    "CRC-32 (zlib) over header and payload"),
  crc_ok = ProtoField.bool("ratepad.crc_ok", "crc_ok", base.NONE, nil, nil, "CRC-32 matches"),
  error = ProtoField.string("ratepad.error", "error", base.ASCII, "kind of a bad span"),
  detail = ProtoField.string("ratepad.detail", "detail", base.UNICODE,
    "what is wrong with a bad span"),
  unknown_payload = ProtoField.bytes("ratepad.unknown.payload", "payload", base.NONE,
    "payload of a message type this schema does not know"),
}"""

_ABBREV = re.compile(r'ProtoField\.\w+\("([^"]+)"')


def _lua_str(text: str) -> str:
    """A double-quoted Lua string literal (UTF-8 kept as is)."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{out}"'


def _uint_ctor(size: int) -> str:
    return f"ProtoField.uint{8 * size}"


def _field_entry(message: str, f: Field, out: Lines) -> None:
    abbr = f"{PROTO}.{message}.{f.name}"
    args = f'"{abbr}", "{f.name}"'
    desc = _lua_str(_describe(f))
    if f.kind == "text":
        pf = f"ProtoField.string({args}, base.UNICODE, {desc})"
    elif f.kind == "bool":
        pf = f"ProtoField.bool({args}, base.NONE, nil, nil, {desc})"
    elif f.kind == "enum":
        pf = f"{_uint_ctor(f.size)}({args}, base.DEC, VS.{f.type_name}, nil, {desc})"
    elif f.kind == "flags":
        pf = f"{_uint_ctor(f.size)}({args}, base.HEX, nil, nil, {desc})"
    else:  # uint, maybe
        pf = f"{_uint_ctor(f.size)}({args}, base.DEC, nil, nil, {desc})"
    out.add(f'    {{ name = "{f.name}", kind = "{f.kind}", size = {f.size},')
    if f.kind != "flags":
        out.add(f"      pf = {pf} }},")
        return
    out.add(f"      pf = {pf},", f"      members = FLAGS.{f.type_name}, bits = {{")
    for flag, bit in f.members:
        out.add(f'        ProtoField.bool("{abbr}.{flag}", "{flag}", {8 * f.size}, nil, {bit:#x}),')
    out.add("      } },")


def _describe(f: Field) -> str:
    if f.kind == "text":
        return f"text, at most {f.size} UTF-8 bytes"
    if f.kind == "maybe":
        return f"u{8 * f.size}, all ones = none"
    if f.kind in ("enum", "flags"):
        return f"{f.type_name} (u{8 * f.size})"
    if f.kind == "bool":
        return "bool (u8)"
    return f"u{8 * f.size}"


def _pairs(members: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f'{{ "{name}", {bit:#x} }}' for name, bit in members)


def generate(model: Model) -> str:
    if any(m.name == "unknown" for m in model.messages):
        raise ValueError("the Lua dissector reserves the message name 'unknown'")
    max_payload = max(m.max_payload for m in model.messages)

    out = Lines()
    out.add(banner("--", model))
    out.add(
        "-- Wireshark dissector for ratepad captures (pcapng, LINKTYPE_USER0 = 147) and for the",
        "-- keypad's HID reports in USB captures (Linux usbmon, Windows USBPcap).",
        "--   tshark -X lua_script:wireshark/ratepad.lua -r capture.pcapng",
        "-- or copy this file into Wireshark's personal Lua plugins folder.",
        "",
        f"local PROTOCOL_VERSION = {model.protocol_version}",
        f"local SCHEMA_FINGERPRINT = {model.fingerprint:#010x}",
        f"local MAX_FRAME_BYTES = {model.max_frame_bytes}",
        "local HEADER_SIZE = 5",
        f'local PAD = string.rep("\\0", {max_payload})  -- zero-fill of shorter (older) payloads',
        "",
        "-- message type id -> name",
        "local TYPE_NAMES = {",
    )
    out.add(*(f'  [{m.type_id:#04x}] = "{m.name}",' for m in model.messages))
    out.add("}", "", "-- enum value strings", "local VS = {")
    for e in model.enums:
        if e.kind == "enum":
            out.add(f"  {e.name} = {{ " + ", ".join(f'[{v}] = "{n}"' for n, v in e.members) + " },")
    out.add("}", "", "-- flags: { name, bit } by bit", "local FLAGS = {")
    out.add(f"  HeaderFlags = {{ {_pairs(model.header_flags)} }},")
    for e in model.enums:
        if e.kind == "flags":
            out.add(f"  {e.name} = {{ {_pairs(e.members)} }},")
    out.add("}", "", _TOP_FIELDS, "local HEADER_FLAG_BITS = {")
    for flag, bit in model.header_flags:
        out.add(f'  ProtoField.bool("{PROTO}.flags.{flag}", "{flag}", 8, nil, {bit:#x}),')
    out.add("}", "", "-- message type id -> name and fields in wire order", "local MESSAGES = {")
    for m in model.messages:
        out.add(f'  [{m.type_id:#04x}] = {{ name = "{m.name}", fields = {{')
        for f in m.fields:
            _field_entry(m.name, f, out)
        out.add("  } },")
    out.add("}", "", "-- expert infos (ratepad.expert.<kind>), one per kind of bad span")
    out.add("local EXPERT_KINDS = {")
    out.add(*(f"  {kind} = {_lua_str(text)}," for kind, text in _ERROR_TEXT.items()))
    out.add("}", _runtime())
    text = out.text()

    abbrevs = _ABBREV.findall(text) + [f"{PROTO}.expert.{kind}" for kind in _ERROR_TEXT]
    dup = sorted({a for a in abbrevs if abbrevs.count(a) > 1})
    if dup:
        raise ValueError(f"Lua dissector field names collide: {', '.join(dup)}")
    return text


RUNTIME = Path(__file__).with_name("runtime") / "dissector.lua"
"""The dissector's fixed part (Lua), a real file: ``make test`` syntax-checks it with luac and
tshark runs it; the generator appends it to the generated tables."""


def _runtime() -> str:
    return "\n" + RUNTIME.read_text(encoding="utf-8")
