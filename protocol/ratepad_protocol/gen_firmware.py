"""Emit the firmware codec (MicroPython: ``struct``, ``binascii.crc32``, no construct).

The module has three parts: constants (type ids, enum values, flag bits) as ``const()``;
``<message>_into`` functions that encode each device-to-host message into a preallocated output
buffer; and a table-driven decoder plus the test entry points ``decode_frame``/``encode_frame``
of the architecture contract.
"""

from __future__ import annotations

from pathlib import Path

from .emit import Lines, banner
from .model import Field, MessageSpec, Model

_KIND_CODE = {"uint": 0, "bool": 1, "enum": 2, "flags": 3, "maybe": 4, "text": 5}


def _const_name(*parts: str) -> str:
    return "_".join(p.upper() for p in parts)


def _constants(model: Model, out: Lines) -> None:
    out.add(f"PROTOCOL_VERSION = const({model.protocol_version})")
    out.add(f"SCHEMA_FINGERPRINT = {model.fingerprint:#010x}")
    out.add(f"MAX_FRAME = const({model.max_frame_bytes})")
    out.add("HEADER_SIZE = const(5)", "")
    out.add("# message type ids")
    for m in model.messages:
        out.add(f"T_{m.name.upper()} = const({m.type_id:#04x})")
    out.add("", "# header flags")
    for name, bit in model.header_flags:
        out.add(f"HF_{name.upper()} = const({bit:#x})")
    for e in model.enums:
        out.add("", f"# {e.name}")
        prefix = _const_name(*_snake(e.name).split("_"))
        for name, value in e.members:
            out.add(f"{prefix}_{name.upper()} = const({value:#x})")
    out.add("")


def _snake(camel: str) -> str:
    out = ""
    for ch in camel:
        if ch.isupper() and out:
            out += "_"
        out += ch.lower()
    return out


def _into(m: MessageSpec, out: Lines) -> None:
    # Encode a device message straight from arguments: texts are bytes, flags and enums ints,
    # "maybe" integers None or a value. Returns the frame length written into `out`.
    args = ", ".join(f.name for f in m.fields)
    out.add(f"def {m.name}_into(out, seq, hflags{', ' if args else ''}{args}):")
    offset: str = "5"
    for kind, fields in m.segments():
        if kind == "fixed":
            vals = []
            for f in fields:
                if f.kind == "maybe":
                    vals.append(f"{f.none_value:#x} if {f.name} is None else {f.name}")
                else:
                    vals.append(f.name)
            fmt = "<" + "".join(f.fmt for f in fields)
            out.add(f'    struct.pack_into("{fmt}", _BODY, {offset}, {", ".join(vals)})')
            size = sum(f.size for f in fields)
            offset = str(int(offset) + size) if offset.isdigit() else f"{offset} + {size}"
        else:
            f = fields[0]
            out.add(f"    o = _put_text(_BODY, {offset}, {f.name}, {f.size})")
            offset = "o"
    out.add(f"    return _frame(out, T_{m.name.upper()}, seq, hflags, {offset})", "")


def _field_table(f: Field, enum_tables: dict[tuple[tuple[str, int], ...], str]) -> str:
    members = enum_tables.get(f.members, "None") if f.members else "None"
    return f'("{f.name}", {_KIND_CODE[f.kind]}, "<{f.fmt}", {f.size}, {members})'


def generate(model: Model) -> str:
    out = Lines()
    out.add(banner("#", model))
    out.add("# Firmware codec for the ratepad wire protocol. MicroPython: struct + binascii.crc32.")
    out.add("# Frame: COBS(header + payload + CRC-32 LE) + 0x00; header = version, flags, type,")
    out.add(
        "# seq (u16 LE). Bytes past the end of a short payload read as zero; a longer payload's"
    )
    out.add("# tail is ignored; an unknown type decodes as 'unknown'.")
    out.add("from micropython import const")
    out.add("import struct")
    out.add("from binascii import crc32, hexlify, unhexlify", "")
    _constants(model, out)
    head, tail = _runtime()
    out.add(head)
    for m in model.messages:
        if m.sender == "device":
            _into(m, out)

    enum_tables: dict[tuple[tuple[str, int], ...], str] = {}
    out.add("# enum / flags member tables: ((name, value), ...)")
    for e in model.enums:
        table = "_M_" + _snake(e.name).upper()
        enum_tables[e.members] = table
        items = ", ".join(f'("{n}", {v:#x})' for n, v in e.members)
        out.add(f"{table} = ({items},)")
    header_items = ", ".join(f'("{n}", {v:#x})' for n, v in model.header_flags)
    out.add(f"_M_HEADER_FLAGS = ({header_items},)")
    out.add(
        "", "# type id -> (name, max payload, fields); field = (name, kind, fmt, size, members)"
    )
    out.add("_MESSAGES = {")
    for m in model.messages:
        fields = ", ".join(_field_table(f, enum_tables) for f in m.fields)
        comma = "," if m.fields else ""
        out.add(f'    T_{m.name.upper()}: ("{m.name}", {m.max_payload}, ({fields}{comma})),')
    out.add("}")
    out.add("_BY_NAME = {}")
    out.add("for _t, _m in _MESSAGES.items():")
    out.add("    _BY_NAME[_m[0]] = _t")
    out.add(tail)
    return out.text()


RUNTIME = Path(__file__).with_name("runtime") / "firmware_codec.py"


def _runtime() -> tuple[str, str]:
    """The runtime's head and tail (see runtime/firmware_codec.py), as emitted."""
    text = RUNTIME.read_text(encoding="utf-8")
    _, _, rest = text.partition("# --- head ---\n")
    head, _, tail = rest.partition("\n# --- tail ---\n")
    if not head or not tail:
        raise ValueError(f"{RUNTIME} lost its '--- head ---' / '--- tail ---' markers")
    return "\n" + head.rstrip("\n") + "\n\n", "\n\n" + tail.rstrip("\n")
