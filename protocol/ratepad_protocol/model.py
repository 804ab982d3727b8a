"""The checked intermediate model between the construct definitions and the generators.

``build_model()`` walks ``schema.MESSAGES`` and translates each construct field into a small,
explicit ``Field``; anything it cannot translate faithfully into MicroPython and CPython ``struct``
code is rejected with ``ModelError`` naming the message and the field, so a generator never
guesses. The model also derives the schema fingerprints that peers exchange in their hellos.
"""

from __future__ import annotations

import keyword
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from construct import Enum, Flag, FlagsEnum, FormatField, Renamed, Struct

from . import schema

Kind = Literal["uint", "bool", "enum", "flags", "maybe", "text"]

_FORMAT_CHARS = {"<B": ("B", 1), "<H": ("H", 2), "<L": ("I", 4), "<Q": ("Q", 8)}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED_FIELD_NAMES = frozenset(
    {"type", "type_id", "type_name", "error", "offset", "length", "device", "direction"}
)


class ModelError(ValueError):
    """The construct definitions use something the generators cannot translate."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    size: int
    """Bytes on the wire; for text, the maximum number of UTF-8 bytes (plus one length byte)."""
    fmt: str
    """struct format character of the integer on the wire ('' for text)."""
    members: tuple[tuple[str, int], ...] = ()
    """enum: (name, value); flags: (name, bit mask). Sorted by value."""
    type_name: str = ""
    """enum and flags: the name of the shared type (from schema.py)."""

    @property
    def is_fixed(self) -> bool:
        return self.kind != "text"

    @property
    def max_wire_size(self) -> int:
        return self.size + 1 if self.kind == "text" else self.size

    @property
    def none_value(self) -> int:
        return (1 << (8 * self.size)) - 1

    def describe(self) -> str:
        """Canonical text of this field, the input of the fingerprints."""
        extra = ",".join(f"{n}={v}" for n, v in self.members)
        return f"{self.name}:{self.kind}{self.size}{'[' + extra + ']' if extra else ''}"


@dataclass(frozen=True)
class MessageSpec:
    type_id: int
    name: str
    sender: str
    doc: str
    fields: tuple[Field, ...]

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def max_payload(self) -> int:
        return sum(f.max_wire_size for f in self.fields)

    def segments(self) -> Iterator[tuple[str, tuple[Field, ...]]]:
        """Runs of fixed-size fields ("fixed") and single text fields ("text"), in wire order."""
        run: list[Field] = []
        for f in self.fields:
            if f.is_fixed:
                run.append(f)
                continue
            if run:
                yield "fixed", tuple(run)
                run = []
            yield "text", (f,)
        if run:
            yield "fixed", tuple(run)

    @property
    def fingerprint(self) -> int:
        """CRC-32 of the message's id, name and fields: changes whenever its layout changes."""
        text = f"{self.type_id}:{self.name}(" + ";".join(f.describe() for f in self.fields) + ")"
        return zlib.crc32(text.encode()) & 0xFFFFFFFF


@dataclass(frozen=True)
class EnumSpec:
    """A named enum or flags type shared by several fields (generated once per codec)."""

    name: str
    kind: Literal["enum", "flags"]
    members: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Model:
    protocol_version: int
    messages: tuple[MessageSpec, ...]
    header_flags: tuple[tuple[str, int], ...]
    max_frame_bytes: int
    enums: tuple[EnumSpec, ...]

    @property
    def fingerprint(self) -> int:
        """Schema fingerprint exchanged in hellos: CRC-32 over every message's fingerprint."""
        text = f"v{self.protocol_version}:" + ",".join(
            f"{m.fingerprint:08x}" for m in self.messages
        )
        return zlib.crc32(text.encode()) & 0xFFFFFFFF

    def by_name(self, name: str) -> MessageSpec:
        for m in self.messages:
            if m.name == name:
                return m
        raise KeyError(name)


def _members(mapping: dict[str, int], where: str) -> tuple[tuple[str, int], ...]:
    # plain str/int: construct's mapping keys are str subclasses that print differently
    items = sorted(((str(k), int(v)) for k, v in mapping.items()), key=lambda kv: kv[1])
    for name, _ in items:
        if not _NAME.match(name):
            raise ModelError(f"{where}: member name {name!r} is not a lower-case identifier")
    values = [v for _, v in items]
    if len(set(values)) != len(values):
        raise ModelError(f"{where}: duplicate member values")
    return tuple(items)


def _int_format(con: Any, where: str) -> tuple[str, int]:
    if not isinstance(con, FormatField) or con.fmtstr not in _FORMAT_CHARS:
        raise ModelError(f"{where}: only little-endian unsigned integers are supported, got {con}")
    return _FORMAT_CHARS[con.fmtstr]


def _field(sub: Any, where: str) -> Field:
    if not isinstance(sub, Renamed) or not sub.name:
        raise ModelError(f"{where}: every field must be named")
    name: str = sub.name
    con = sub.subcon
    where = f"{where}.{name}"
    if not _NAME.match(name) or keyword.iskeyword(name) or name in _RESERVED_FIELD_NAMES:
        raise ModelError(f"{where}: field name is reserved or not a lower-case identifier")
    if isinstance(con, schema.Text):
        return Field(name, "text", con.max_bytes, "")
    if isinstance(con, schema.Maybe):
        fmt, size = _int_format(con.subcon, where)
        return Field(name, "maybe", size, fmt)
    if isinstance(con, FlagsEnum):
        fmt, size = _int_format(con.subcon, where)
        members = _members(dict(con.flags), where)
        for flag_name, bit in members:
            if bit <= 0 or bit & (bit - 1) or bit >= 1 << (8 * size):
                raise ModelError(f"{where}: flag {flag_name} must be a single bit in range")
        return Field(name, "flags", size, fmt, members, _enum_type_name(con, where))
    if isinstance(con, Enum):
        fmt, size = _int_format(con.subcon, where)
        members = _members(dict(con.encmapping), where)
        if any(not 0 <= v < 1 << (8 * size) for _, v in members):
            raise ModelError(f"{where}: enum value out of range")
        return Field(name, "enum", size, fmt, members, _enum_type_name(con, where))
    if con is Flag:
        return Field(name, "bool", 1, "B")
    if isinstance(con, FormatField):
        fmt, size = _int_format(con, where)
        return Field(name, "uint", size, fmt)
    raise ModelError(f"{where}: cannot translate {type(con).__name__}")


def _message(msg: schema.Message) -> MessageSpec:
    where = msg.name
    if not _NAME.match(msg.name):
        raise ModelError(f"{where}: message name is not a lower-case identifier")
    if not isinstance(msg.body, Struct):
        raise ModelError(f"{where}: body must be a Struct")
    lo, hi = (0x01, 0x3F) if msg.sender == "device" else (0x40, 0x7F)
    if not lo <= msg.type_id <= hi:
        raise ModelError(f"{where}: type id {msg.type_id:#x} outside the {msg.sender} range")
    fields = tuple(_field(sub, where) for sub in msg.body.subcons)
    if len({f.name for f in fields}) != len(fields):
        raise ModelError(f"{where}: duplicate field names")
    return MessageSpec(msg.type_id, msg.name, msg.sender, msg.doc, fields)


def _enum_type_name(con: Any, where: str) -> str:
    """Enum and flags types are named after their module-level name in schema.py."""
    for var, value in vars(schema).items():
        if value is con and var.isupper():
            return "".join(part.capitalize() for part in var.split("_"))
    raise ModelError(f"{where}: give this enum/flags type a module-level name in schema.py")


def build_model() -> Model:
    """Translate and check the construct definitions; raises ModelError on anything unsupported."""
    messages = tuple(_message(m) for m in schema.MESSAGES)
    if len({m.type_id for m in messages}) != len(messages):
        raise ModelError("duplicate message type ids")
    if len({m.name for m in messages}) != len(messages):
        raise ModelError("duplicate message names")

    header_flags = _members(dict(schema.HEADER_FLAGS.flags), "header.flags")

    enums: dict[str, EnumSpec] = {}
    for m in messages:
        for f in m.fields:
            if f.kind == "enum" or f.kind == "flags":
                spec = EnumSpec(f.type_name, f.kind, f.members)
                if enums.setdefault(spec.name, spec) != spec:
                    raise ModelError(f"{m.name}.{f.name}: two types named {spec.name}")

    # Framing overhead: header 5, CRC 4, COBS one byte per 254 started, delimiter 1.
    longest = max(m.max_payload for m in messages) + 5 + 4
    max_frame = longest + (longest + 253) // 254 + 1
    if max_frame > schema.MAX_FRAME_BYTES:
        raise ModelError(f"longest frame {max_frame} exceeds MAX_FRAME_BYTES")
    return Model(
        schema.PROTOCOL_VERSION,
        messages,
        header_flags,
        schema.MAX_FRAME_BYTES,
        tuple(enums.values()),
    )
