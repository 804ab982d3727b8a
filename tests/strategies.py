"""Hypothesis strategies for random protocol messages, derived from the checked model."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ratepad_protocol.model import Field, MessageSpec
from ratepad_protocol.reference import MODEL


def _text(max_bytes: int) -> st.SearchStrategy[str]:
    return st.text(max_size=max_bytes).filter(lambda s: len(s.encode()) <= max_bytes)


def field_values(f: Field) -> st.SearchStrategy[Any]:
    if f.kind == "uint":
        return st.integers(0, (1 << (8 * f.size)) - 1)
    if f.kind == "bool":
        return st.booleans()
    if f.kind == "maybe":
        return st.none() | st.integers(0, f.none_value - 1)
    if f.kind == "text":
        return _text(f.size)
    known = {value for _, value in f.members}
    if f.kind == "enum":
        unknown = st.integers(0, (1 << (8 * f.size)) - 1).filter(lambda v: v not in known)
        return st.sampled_from([n for n, _ in f.members]) | unknown
    # flags: a set of bits, named where the schema names them, "bit<N>" otherwise
    names = {value: name for name, value in f.members}

    def spell(bits: int) -> list[str]:
        out = []
        for bit in range(8 * f.size):
            if bits >> bit & 1:
                out.append(names.get(1 << bit, f"bit{bit}"))
        return out

    return st.integers(0, (1 << (8 * f.size)) - 1).map(spell)


def message_of(spec: MessageSpec) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f.name: field_values(f) for f in spec.fields})


messages = st.sampled_from(MODEL.messages).flatmap(
    lambda spec: st.tuples(st.just(spec.name), message_of(spec))
)
"""(type_name, fields) of a random message of any type."""
