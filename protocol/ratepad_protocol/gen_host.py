"""Emit the fast host codec (CPython ``struct``) from the checked model."""

from __future__ import annotations

from .emit import Lines, banner
from .model import Field, MessageSpec, Model


def _py_type(f: Field) -> str:
    return {
        "uint": "int",
        "bool": "bool",
        "enum": f"{f.type_name} | int",
        "flags": f.type_name,
        "maybe": "int | None",
        "text": "str",
    }[f.kind]


def generate_values(model: Model) -> str:
    """The wire's enums and flag sets alone (``ratepad.wire.values``): what code that never
    touches a frame (the rating flag table, the server) needs, without the codec."""
    out = Lines()
    out.add(banner("#", model))
    out.add('"""Values of the ratepad wire protocol\'s enums and flag sets (generated from the')
    out.add("schema, protocol/ratepad_protocol/schema.py); the codec re-exports them.")
    out.add('"""', "")
    out.add("from __future__ import annotations", "")
    out.add("import enum", "", "")
    for e in model.enums:
        base = "enum.IntFlag" if e.kind == "flags" else "enum.IntEnum"
        out.add(f"class {e.name}({base}):")
        out.add(f'    """Wire values of {e.name}; names on the wire are the lower-case ones."""')
        out.add("")
        for name, value in e.members:
            out.add(
                f"    {name.upper()} = {value:#x}"
                if e.kind == "flags"
                else f"    {name.upper()} = {value}"
            )
        out.add("", "")
    return out.text()


def _enum_classes(model: Model, out: Lines) -> None:
    for e in model.enums:
        cache = "_FlagsCache" if e.kind == "flags" else "_EnumCache"
        out.add(f"_C_{e.name}: Final = {cache}({e.name})", "")
    out.add("")


def _message_class(m: MessageSpec, out: Lines) -> None:
    out.add(f"class {m.class_name}(NamedTuple):")
    out.add(f'    """{m.doc}"""', "")
    for f in m.fields:
        out.add(f"    {f.name}: {_py_type(f)}")
    out.add("", "    @property")
    out.add("    def type_id(self) -> int:")
    out.add(f"        return {m.type_id:#04x}", "")
    out.add("    @property")
    out.add("    def type_name(self) -> str:")
    out.add(f'        return "{m.name}"', "", "")


def _decoder(m: MessageSpec, out: Lines) -> None:
    """A function payload -> message; raises _Short when the payload ends early."""
    out.add(f"def _d_{m.name}(p: bytes) -> {m.class_name}:")
    segments = list(m.segments())
    offset = "0"  # a constant or "o", the running offset after a text field
    values: list[str] = []
    for i, (kind, fields) in enumerate(segments):
        last = i == len(segments) - 1
        if kind == "fixed":
            names = [f"v_{f.name}" for f in fields]
            target = ", ".join(names) + ("," if len(names) == 1 else "")
            out.add(f"    {target} = _S_{m.name.upper()}_{i}.unpack_from(p, {offset})")
            size = sum(f.size for f in fields)
            if offset.isdigit():
                offset = str(int(offset) + size)
            elif not last:
                out.add(f"    o += {size}")
            values.extend(_decode_value(f, f"v_{f.name}") for f in fields)
        else:
            f = fields[0]
            out.add(f"    n = p[{offset}]")
            out.add(f"    if n > {f.size}:")
            out.add(
                f'        raise _text_too_long("{m.name}.{f.name}", n, {f.size}, '
                f"len(p) - {offset} - 1)"
            )
            out.add(f"    t = p[{offset} + 1 : {offset} + 1 + n]")
            out.add("    if len(t) != n:")
            out.add("        raise _Short")
            out.add(f"    v_{f.name} = t.decode()")
            if not last:
                out.add(f"    o = {offset} + 1 + n")
                offset = "o"
            values.append(f"v_{f.name}")
    # tuple.__new__ skips the NamedTuple's Python-level __new__: this is the hot path.
    comma = "," if len(values) == 1 else ""
    out.add(f"    return _new({m.class_name}, (" + ", ".join(values) + comma + "))", "", "")


def _decode_value(f: Field, v: str) -> str:
    if f.kind == "enum" or f.kind == "flags":
        return f"_C_{f.type_name}[{v}]"
    if f.kind == "bool":
        return f"{v} != 0"
    if f.kind == "maybe":
        return f"None if {v} == {f.none_value:#x} else {v}"
    return v


def _encoder(m: MessageSpec, out: Lines) -> None:
    out.add(f"def _e_{m.name}(m: {m.class_name}) -> bytes:")
    if not m.fields:
        out.add('    return b""', "", "")
        return
    parts: list[str] = []
    for i, (kind, fields) in enumerate(m.segments()):
        if kind == "fixed":
            args = []
            for f in fields:
                if f.kind == "maybe":
                    args.append(f"_maybe(m.{f.name}, {f.none_value:#x})")
                else:
                    args.append(f"m.{f.name}")
            parts.append(f"_S_{m.name.upper()}_{i}.pack(" + ", ".join(args) + ")")
        else:
            f = fields[0]
            parts.append(f'_text(m.{f.name}, {f.size}, "{m.name}.{f.name}")')
    if len(parts) == 1:
        out.add(f"    return {parts[0]}", "", "")
        return
    out.add('    return b"".join(')
    out.add("        (")
    for p in parts:
        out.add(f"            {p},")
    out.add("        )")
    out.add("    )", "", "")


def _from_fields(m: MessageSpec, out: Lines) -> None:
    out.add(f"def _f_{m.name}(d: Mapping[str, Any]) -> {m.class_name}:")
    args = []
    for f in m.fields:
        get = f'd["{f.name}"]'
        if f.kind == "enum":
            args.append(f"_enum_in({f.type_name}, {get})")
        elif f.kind == "flags":
            args.append(f"_flags_in({f.type_name}, {get})")
        elif f.kind == "bool":
            args.append(f"_bool_in({get})")
        elif f.kind == "text":
            args.append(f"_str_in({get})")
        elif f.kind == "maybe":
            args.append(f"_maybe_in({get})")
        else:
            args.append(f"_int_in({get})")
    out.add(f"    return {m.class_name}(" + ", ".join(args) + ")", "", "")


def generate(model: Model) -> str:
    out = Lines()
    out.add(banner("#", model))
    out.add('"""Fast host codec for the ratepad wire protocol (generated from the schema,')
    out.add("protocol/ratepad_protocol/schema.py).")
    out.add("")
    out.add("Messages are typed NamedTuples; ``decode_frame`` / ``encode`` work on them, and")
    out.add("``decode_frame_fields`` / ``encode_frame`` on the plain values of the golden vectors.")
    out.add('"""', "")
    out.add("from __future__ import annotations", "")
    out.add("import enum")
    out.add("import struct")
    out.add("import zlib")
    out.add("from collections.abc import Mapping")
    out.add("from typing import Any, Final, NamedTuple", "")
    out.add("from .codec_support import (")
    for name in (
        "EncodeError",
        "FrameError",
        "_EnumCache",
        "_FlagsCache",
        "_PayloadError",
        "_text_too_long",
        "_Short",
        "_bool_in",
        "_cobs_decode",
        "_cobs_encode",
        "_enum_in",
        "_flags_in",
        "_int_in",
        "_maybe",
        "_maybe_in",
        "_str_in",
        "_text",
        "plain_value",
    ):
        out.add(f"    {name},")
    out.add(")")
    for e in model.enums:  # re-exported: ``codec.RatingFlags`` and the like stay where they were
        out.add(f"from .values import {e.name} as {e.name}")
    out.add("")
    out.add(f"PROTOCOL_VERSION: Final = {model.protocol_version}")
    out.add(f"SCHEMA_FINGERPRINT: Final = {model.fingerprint:#010x}")
    out.add(f"MAX_FRAME_BYTES: Final = {model.max_frame_bytes}")
    out.add("HEADER_SIZE: Final = 5")
    out.add("CRC_RESIDUE: Final = 0x2144DF1C")
    out.add("MESSAGE_FINGERPRINTS: Final[dict[str, int]] = {")
    for m in model.messages:
        out.add(f'    "{m.name}": {m.fingerprint:#010x},')
    out.add("}", "", "")
    out.add("class HeaderFlags(enum.IntFlag):")
    out.add('    """Flags in every frame header."""', "")
    for name, bit in model.header_flags:
        out.add(f"    {name.upper()} = {bit:#x}")
    out.add("", "")
    out.add("_C_HeaderFlags: Final = _FlagsCache(HeaderFlags)", "", "")
    _enum_classes(model, out)
    for m in model.messages:
        _message_class(m, out)
    out.add("class Unknown(NamedTuple):")
    out.add('    """A message type this schema does not know (from a newer peer)."""', "")
    out.add("    type_id: int")
    out.add("    payload: bytes", "")
    out.add("    @property")
    out.add("    def type_name(self) -> str:")
    out.add('        return "unknown"', "", "")
    out.add("class Header(NamedTuple):")
    out.add('    """The frame header (the protocol version is checked, not kept)."""', "")
    out.add("    flags: HeaderFlags")
    out.add("    type_id: int")
    out.add("    seq: int", "", "")
    names = " | ".join(m.class_name for m in model.messages)
    out.add(f"Message = {names} | Unknown")
    out.add(
        "DeviceMessage = "
        + " | ".join(m.class_name for m in model.messages if m.sender == "device")
    )
    out.add(
        "HostMessage = " + " | ".join(m.class_name for m in model.messages if m.sender == "host"),
        "",
    )
    for m in model.messages:
        for i, (kind, fields) in enumerate(m.segments()):
            if kind == "fixed":
                fmt = "<" + "".join(f.fmt for f in fields)
                out.add(f'_S_{m.name.upper()}_{i}: Final = struct.Struct("{fmt}")')
    out.add('_S_HEADER: Final = struct.Struct("<BBBH")')
    out.add("_new = tuple.__new__", "", "")
    for m in model.messages:
        _decoder(m, out)
        _encoder(m, out)
        _from_fields(m, out)
    out.add("_DECODERS: Final[dict[int, Any]] = {")
    for m in model.messages:
        out.add(f"    {m.type_id:#04x}: _d_{m.name},")
    out.add("}")
    out.add("_ENCODERS: Final[dict[type, Any]] = {")
    for m in model.messages:
        out.add(f"    {m.class_name}: _e_{m.name},")
    out.add("}")
    out.add("MESSAGE_TYPES: Final[dict[str, type[Message]]] = {")
    for m in model.messages:
        out.add(f'    "{m.name}": {m.class_name},')
    out.add("}")
    out.add("_FROM_FIELDS: Final[dict[str, Any]] = {")
    for m in model.messages:
        out.add(f'    "{m.name}": _f_{m.name},')
    out.add("}")
    out.add("_PAD: Final = bytes(" + str(max(m.max_payload for m in model.messages)) + ")")
    out.add(RUNTIME)
    return out.text()


RUNTIME = '''

_crc32 = zlib.crc32


def decode_payload(type_id: int, payload: bytes) -> Message:
    """The message of one payload; raises FrameError("payload") for a malformed one."""
    dec = _DECODERS.get(type_id)
    if dec is None:
        return Unknown(type_id, payload)
    try:
        try:
            msg: Message = dec(payload)
        except (struct.error, IndexError, _Short):
            # Evolution: bytes past the end of a shorter (older) payload read as zero.
            msg = dec(payload + _PAD)
    except UnicodeDecodeError as exc:
        raise FrameError("payload", f"text is not UTF-8: {exc.reason}") from None
    except _PayloadError as exc:
        raise FrameError("payload", str(exc)) from None
    return msg


def decode_body(body: bytes) -> tuple[Header, Message]:
    """Header and message of one COBS-decoded frame body (header + payload + CRC)."""
    if len(body) < HEADER_SIZE + 4:
        raise FrameError("short", f"{len(body)} bytes is shorter than header and CRC")
    if _crc32(body) != CRC_RESIDUE:
        raise FrameError("crc", "CRC-32 mismatch")
    version, flags, type_id, seq = _S_HEADER.unpack_from(body)
    if version != PROTOCOL_VERSION:
        raise FrameError("version", f"protocol version {version} is not supported")
    return Header(_C_HeaderFlags[flags], type_id, seq), decode_payload(type_id, body[5:-4])


def decode_frame(frame: bytes) -> tuple[Header, Message]:
    """Header and message of one complete frame (delimiter included); raises FrameError."""
    if frame[-1:] != b"\\0":
        raise FrameError("cobs", "frame does not end with the delimiter")
    return decode_body(_cobs_decode(frame[:-1]))


def encode_payload(msg: Message) -> bytes:
    """The payload bytes of a message; raises ValueError for a value that does not fit."""
    if isinstance(msg, Unknown):
        return bytes(msg.payload)
    try:
        payload: bytes = _ENCODERS[type(msg)](msg)
    except struct.error as exc:
        raise EncodeError(f"{msg.type_name}: {exc}") from None
    return payload


def encode(msg: Message, seq: int = 0, flags: int = 0) -> bytes:
    """One complete frame (COBS, delimiter included) carrying ``msg``."""
    type_id = msg.type_id
    if not 0 <= seq <= 0xFFFF:
        raise EncodeError("seq must be 0..65535")
    body = _S_HEADER.pack(PROTOCOL_VERSION, flags, type_id, seq) + encode_payload(msg)
    return _cobs_encode(body + _crc32(body).to_bytes(4, "little")) + b"\\0"


def message_from_fields(type_name: str, fields: Mapping[str, Any]) -> Message:
    """A typed message from plain values (the vectors' ``message`` objects, without ``type``)."""
    if type_name == "unknown":
        return Unknown(_int_in(fields["type_id"]), bytes.fromhex(_str_in(fields["payload"])))
    build = _FROM_FIELDS.get(type_name)
    if build is None:
        raise EncodeError(f"unknown message type {type_name!r}")
    cls = MESSAGE_TYPES[type_name]
    expected = set(cls._fields)
    missing = expected - set(fields)
    if missing:
        raise EncodeError(f"{type_name}: missing fields {sorted(missing)}")
    extra = set(fields) - expected - {"type"}
    if extra:
        raise EncodeError(f"{type_name}: unknown fields {sorted(extra)}")
    msg: Message = build(fields)
    return msg


def message_fields(msg: Message) -> tuple[str, dict[str, Any]]:
    """``(type_name, fields)`` of a message as plain values (enum names, flag name lists)."""
    if isinstance(msg, Unknown):
        return "unknown", {"type_id": msg.type_id, "payload": msg.payload.hex()}
    return msg.type_name, {k: plain_value(v) for k, v in zip(msg._fields, msg, strict=True)}


def encode_frame(
    type_name: str, fields: Mapping[str, Any], seq: int = 0, flags: int = 0
) -> bytes:
    """The frame of a message given as plain values."""
    return encode(message_from_fields(type_name, fields), seq, flags)


def decode_frame_fields(frame: bytes) -> tuple[str, dict[str, Any]]:
    """``(type_name, fields)`` of one complete frame as plain values; raises FrameError."""
    return message_fields(decode_frame(frame)[1])
'''
