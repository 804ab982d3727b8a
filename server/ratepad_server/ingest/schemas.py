"""The upload batch, as the agent sends it (``ratepad.agent.upload``) and the server checks it.

Plain pydantic models rather than ninja's ``Schema``: that one wraps every object for reading
Django models (a root validator per item, attribute access through a getter), which costs
more than everything else of an ingest batch together; these are parsed straight from JSON.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..text import CONTROL_CLASS, IDENTIFIER_PATTERN, PRINTABLE_PATTERN


class Schema(BaseModel):
    # strict: a number sent as a string or a float, a bool as 0/1, is bad input, not coerced
    model_config = ConfigDict(extra="forbid", strict=True)


# printable text only: a control character (NUL above all, which PostgreSQL's text refuses) is
# bad input, refused with the batch (422) before anything reaches the database
Text64 = Annotated[str, StringConstraints(max_length=64, pattern=PRINTABLE_PATTERN)]
StaffId = Annotated[str, StringConstraints(max_length=64, pattern=IDENTIFIER_PATTERN)]
Serial = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE_PATTERN)]
# a fault is one word: the faults are stored joined by spaces (``Device.faults``) and split
# on reading
Fault = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=rf"^[^\s{CONTROL_CLASS}]+$")
]
FAULTS_WIDTH = 200  # Device.faults and DeviceStatus.faults: max_length
MAX_MS = 7_258_118_400_000  # 2200: later than any keypad or host clock we can store
Ms = Field(ge=0, lt=MAX_MS)
MaybeMs = Field(default=None, ge=0, lt=MAX_MS)


class RatingIn(Schema):
    serial: Serial
    journal_seq: int = Field(ge=1, lt=2**62)
    boot_id: int = Field(ge=0, lt=2**62)
    uptime_ms: int = Field(ge=0, lt=2**62)
    time_ms: int = Ms
    time_exact: bool
    score: int = Field(ge=1, le=9)
    key_count: int = Field(ge=1, le=9)
    level_value: int | None = Field(default=None, ge=-1000, le=1000)
    staff_id: StaffId = ""
    prompt_id: int = Field(default=0, ge=0, lt=2**62)
    flags: int = Field(default=0, ge=0, lt=2**31)


class PromptIn(Schema):
    serial: Serial
    prompt_id: int = Field(ge=0, lt=2**62)
    staff_id: StaffId = ""
    state: Literal["issued", "answered", "timed_out", "cancelled"]
    issued_at_ms: int | None = MaybeMs
    timeout_ms: int | None = Field(default=None, ge=0, lt=2**62)
    closed_at_ms: int | None = MaybeMs
    rating_seq: int | None = Field(default=None, ge=0, lt=2**62)


class SessionIn(Schema):
    serial: Serial
    staff_id: Annotated[StaffId, StringConstraints(min_length=1)]
    started_at_ms: int = Ms
    ended_at_ms: int | None = MaybeMs


class DeviceIn(Schema):
    serial: Serial
    connected: bool
    firmware: Text64 | None = None
    state: Annotated[str, StringConstraints(max_length=32, pattern=PRINTABLE_PATTERN)] | None = None
    faults: list[Fault] = Field(default_factory=list, max_length=32)
    unacked: int | None = Field(default=None, ge=0, lt=2**31)
    presses: int | None = Field(default=None, ge=0, lt=2**31)
    staff_id: StaffId | None = None
    updated_at_ms: int = Ms

    @model_validator(mode="after")
    def _faults_fit(self) -> Self:
        if len(self.faults_text) > FAULTS_WIDTH:
            raise ValueError(f"faults: more than {FAULTS_WIDTH} characters together")
        return self

    @property
    def faults_text(self) -> str:
        """The faults as stored (one column)."""
        return " ".join(self.faults)


class BatchIn(Schema):
    ratings: list[RatingIn] = Field(default_factory=list, max_length=5000)
    prompts: list[PromptIn] = Field(default_factory=list, max_length=5000)
    sessions: list[SessionIn] = Field(default_factory=list, max_length=5000)
    devices: list[DeviceIn] = Field(default_factory=list, max_length=5000)


class BatchOut(Schema):
    """Sent only after the batch is committed: the agent may mark it uploaded then."""

    committed: bool
    stored: int  # new ratings
    duplicates: int  # ratings the server had already, same content (a replayed batch)
    quarantined: int  # ratings kept in quarantine (not this key's keypad, or an odd time)
    prompts: int
    sessions: int
    devices: int
    # resent ratings whose content differs from the stored one: kept aside for an admin
    # (stored + duplicates + quarantined + conflicts = the batch's ratings)
    conflicts: int = 0
