"""Small helpers shared by the code generators."""

from __future__ import annotations

from .model import Model


class Lines:
    """Accumulates generated source lines."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def add(self, *lines: str) -> None:
        self._lines.extend(lines)

    def text(self) -> str:
        return "\n".join(self._lines).rstrip("\n") + "\n"


def banner(comment: str, model: Model) -> str:
    """The DO-NOT-EDIT banner every generated file starts with."""
    return (
        f"{comment} DO NOT EDIT: generated from protocol/ratepad_protocol/schema.py"
        " by `make generate`.\n"
        f"{comment} Protocol version {model.protocol_version}, "
        f"schema fingerprint {model.fingerprint:#010x}."
    )
