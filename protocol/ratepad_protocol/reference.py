"""Reference codec: frames encoded and decoded through the construct definitions.

Slow and simple on purpose; the generated codecs are checked against it. Messages are plain
values, the same as the ``message`` objects of the golden vectors: ``type`` plus one key per field;
enums as member names (an unknown value as its number), flags as a list of member names in bit
order (an unknown bit as ``"bit<N>"``), a "none" integer as ``None``. A message type this schema
does not know decodes as ``{"type": "unknown", "type_id": N, "payload": "<hex>"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cobs import cobs
from construct import ConstructError, Container

from . import schema
from .model import Field, MessageSpec, build_model

MODEL = build_model()
_BY_NAME = {m.name: m for m in schema.MESSAGES}
_BY_ID = {m.type_id: m for m in schema.MESSAGES}
_SPEC_BY_NAME = {m.name: m for m in MODEL.messages}
_HEADER_SIZE = schema.HEADER.sizeof()


class FrameError(ValueError):
    """A frame that cannot be decoded; ``kind`` says why (cobs, short, crc, version, payload)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True)
class Header:
    version: int
    flags: tuple[str, ...]
    type_id: int
    seq: int


def _plain(spec: MessageSpec, parsed: Container) -> dict[str, Any]:
    out: dict[str, Any] = {"type": spec.name}
    for f in spec.fields:
        value = parsed[f.name]
        out[f.name] = _plain_value(f, value)
    return out


def _plain_value(f: Field, value: Any) -> Any:
    if f.kind == "flags":
        order = {name: bit for name, bit in f.members}
        names = [str(k) for k, on in value.items() if on and not str(k).startswith("_")]
        return sorted(names, key=lambda n: order.get(n, 1 << int(n[3:]) if n[3:].isdigit() else 0))
    if f.kind == "enum":
        # construct gives a str subclass for a known member and an int subclass otherwise
        return str(value) if isinstance(value, str) else int(value)
    if f.kind == "bool":
        return bool(value)
    if f.kind == "maybe":
        return None if value is None else int(value)
    if f.kind == "text":
        return str(value)
    return int(value)


def _construct_value(f: Field, value: Any) -> Any:
    if f.kind == "flags":
        return {name: True for name in value}
    return value


def encode_payload(type_name: str, fields: dict[str, Any]) -> tuple[int, bytes]:
    """(type id, payload bytes) of a message given as plain values."""
    if type_name == "unknown":
        return int(fields["type_id"]), bytes.fromhex(fields["payload"])
    msg = _BY_NAME[type_name]
    spec = _SPEC_BY_NAME[type_name]
    missing = [f.name for f in spec.fields if f.name not in fields]
    if missing:
        raise ValueError(f"{type_name}: missing fields {missing}")
    extra = set(fields) - {f.name for f in spec.fields} - {"type"}
    if extra:
        raise ValueError(f"{type_name}: unknown fields {sorted(extra)}")
    values = {f.name: _construct_value(f, fields[f.name]) for f in spec.fields}
    return msg.type_id, bytes(msg.body.build(values))


def encode_frame(
    type_name: str, fields: dict[str, Any], seq: int = 0, flags: tuple[str, ...] = ()
) -> bytes:
    """One complete frame (COBS, delimiter included) for a message given as plain values."""
    type_id, payload = encode_payload(type_name, fields)
    header = schema.HEADER.build(
        {
            "version": schema.PROTOCOL_VERSION,
            "flags": {name: True for name in flags},
            "type_id": type_id,
            "seq": seq,
        }
    )
    body = bytes(header) + payload
    body += schema.crc32(body).to_bytes(4, "little")
    return bytes(cobs.encode(body)) + schema.DELIMITER


def decode_frame_with_header(frame: bytes) -> tuple[Header, str, dict[str, Any]]:
    """Decode one complete frame (delimiter included); raises FrameError."""
    if not frame.endswith(schema.DELIMITER):
        raise FrameError("cobs", "frame does not end with the delimiter")
    try:
        body = bytes(cobs.decode(frame[:-1]))
    except cobs.DecodeError as exc:
        raise FrameError("cobs", str(exc)) from None
    if len(body) < _HEADER_SIZE + 4:
        raise FrameError("short", f"{len(body)} bytes is shorter than header and CRC")
    if schema.crc32(body) != schema.CRC_RESIDUE:
        raise FrameError("crc", "CRC-32 mismatch")
    parsed = schema.HEADER.parse(body)
    if parsed.version != schema.PROTOCOL_VERSION:
        raise FrameError("version", f"protocol version {parsed.version} is not supported")
    header = Header(
        parsed.version,
        tuple(_plain_value(MODEL_HEADER_FLAGS, parsed.flags)),
        parsed.type_id,
        parsed.seq,
    )
    payload = body[_HEADER_SIZE:-4]
    msg = _BY_ID.get(header.type_id)
    if msg is None:
        return (
            header,
            "unknown",
            {"type": "unknown", "type_id": header.type_id, "payload": payload.hex()},
        )
    spec = _SPEC_BY_NAME[msg.name]
    # Evolution: a shorter payload (older peer) reads its missing tail as zeros; a longer one
    # (newer peer) has a tail this schema does not know, which is ignored.
    payload += bytes(max(0, spec.max_payload - len(payload)))
    try:
        parsed_body = msg.body.parse(payload)
    except (ConstructError, UnicodeDecodeError) as exc:
        raise FrameError("payload", f"{msg.name}: {exc}") from None
    return header, msg.name, _plain(spec, parsed_body)


def decode_frame(frame: bytes) -> tuple[str, dict[str, Any]]:
    """``(type_name, fields)`` of one complete frame; raises FrameError (a ValueError)."""
    _, name, fields = decode_frame_with_header(frame)
    fields = dict(fields)
    del fields["type"]
    return name, fields


MODEL_HEADER_FLAGS = Field("flags", "flags", 1, "B", MODEL.header_flags, "HeaderFlags")
