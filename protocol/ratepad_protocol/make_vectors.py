"""Write the golden vectors (protocol/vectors/*.json) from the construct reference codec.

Run only when the protocol changes on purpose (``make vectors``): the committed files are the
contract every codec is checked against, so a change to them shows up in review.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .model import Field, MessageSpec
from .reference import MODEL, encode_frame

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"

# Realistic examples for the messages people read most.
TYPICAL: dict[str, dict[str, Any]] = {
    "hello": {
        "protocol_version": 1,
        "schema_fingerprint": MODEL.fingerprint,
        "key_count": 5,
        "capabilities": ["status_led", "key_events", "self_test", "maintenance", "time_sync"],
        "journal_capacity": 20000,
        "journal_used": 3,
        "boot_count": 17,
        "uptime_ms": 123456,
        "serial": "RP-000123",
        "firmware_version": "0.1.0",
        "board": "pico",
        "acked_seq": 39,
    },
    "rating": {
        "journal_seq": 42,
        "boot_id": 17,
        "uptime_ms": 1005,
        "epoch_ms": 1795000000000,
        "score": 5,
        "key_count": 5,
        "prompt_id": 7,
        "flags": [],
        "staff_id": "S001",
    },
    "status": {
        "state": "prompted",
        "faults": ["time_unsynced"],
        "uptime_ms": 60000,
        "journal_used": 2,
        "unacked": 1,
        "presses": 10,
        "unprompted": 1,
        "repeats": 2,
        "multi_key": 0,
        "stuck_keys": 0,
        "prompt_id": 7,
        "staff_id": "S001",
        "acked_seq": 40,
    },
    "prompt": {"prompt_id": 7, "timeout_ms": 30000, "staff_id": "S001"},
    "login": {"staff_id": "S001", "display_name": "王小明"},
    "log": {"level": "warning", "uptime_ms": 5000, "text": "key 3 stuck"},
}


def _zero(f: Field) -> Any:
    return {
        "uint": 0,
        "bool": False,
        "enum": f.members[0][0] if f.members else 0,
        "flags": [],
        "maybe": None,
        "text": "",
    }[f.kind]


def _longest_text(n: int) -> str:
    # Multi-byte UTF-8 up to the byte limit, the rest ASCII: the longest legal value.
    s = "满意" * (n // 6)
    return s + "x" * (n - len(s.encode()))


def _max(f: Field) -> Any:
    if f.kind == "uint":
        return (1 << (8 * f.size)) - 1
    if f.kind == "bool":
        return True
    if f.kind == "enum":
        return f.members[-1][0]
    if f.kind == "flags":
        return [name for name, _ in f.members]
    if f.kind == "maybe":
        return f.none_value - 1  # all-ones means none
    return _longest_text(f.size)


def _unknowns(f: Field) -> Any:
    if f.kind == "enum":
        return (1 << (8 * f.size)) - 1  # a value no member has
    if f.kind == "flags":
        top = 8 * f.size - 1
        return [f.members[0][0], f"bit{top}"]
    return _max(f) if f.kind != "text" else "ok"


def _vector(
    spec: MessageSpec,
    label: str,
    fields: dict[str, Any],
    seq: int = 0,
    header_flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    message = {"type": spec.name, **fields}
    out: dict[str, Any] = {"name": f"{spec.name}/{label}", "message": message}
    if seq:
        out["seq"] = seq
    if header_flags:
        out["header_flags"] = list(header_flags)
    out["frame_hex"] = encode_frame(spec.name, fields, seq=seq, flags=header_flags).hex()
    return out


def build_vectors() -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = {"device_to_host": [], "host_to_device": []}
    for spec in MODEL.messages:
        bucket = files["device_to_host" if spec.sender == "device" else "host_to_device"]
        bucket.append(_vector(spec, "zero", {f.name: _zero(f) for f in spec.fields}))
        if spec.fields:
            bucket.append(
                _vector(
                    spec,
                    "max",
                    {f.name: _max(f) for f in spec.fields},
                    seq=0xFFFF,
                    header_flags=tuple(n for n, _ in MODEL.header_flags),
                )
            )
        if any(f.kind in ("enum", "flags") for f in spec.fields):
            bucket.append(
                _vector(spec, "unknown_values", {f.name: _unknowns(f) for f in spec.fields}, seq=1)
            )
        if spec.name in TYPICAL:
            bucket.append(_vector(spec, "typical", TYPICAL[spec.name], seq=300))
    # A message type from a newer peer: decoded as "unknown", never an error.
    files["evolution"] = [
        {
            "name": "unknown/future_device_message",
            "message": {"type": "unknown", "type_id": 0x3F, "payload": "0102030405"},
            "seq": 9,
            "frame_hex": encode_frame(
                "unknown", {"type_id": 0x3F, "payload": "0102030405"}, seq=9
            ).hex(),
        },
        {
            "name": "unknown/empty_host_message",
            "message": {"type": "unknown", "type_id": 0x7F, "payload": ""},
            "frame_hex": encode_frame("unknown", {"type_id": 0x7F, "payload": ""}).hex(),
        },
    ]
    return files


def main() -> None:
    VECTORS_DIR.mkdir(exist_ok=True)
    for name, vectors in build_vectors().items():
        text = json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"
        (VECTORS_DIR / f"{name}.json").write_text(text, encoding="utf-8")
        print(f"wrote {len(vectors)} vectors to protocol/vectors/{name}.json")


if __name__ == "__main__":
    main()
