"""The upload batch, as the agent sends it (``ratepad.agent.upload``) and the server checks it.

Plain pydantic models rather than ninja's ``Schema``: that one wraps every object for reading
Django models (a root validator per item, attribute access through a getter), which costs
more than everything else of an ingest batch together; these are parsed straight from JSON.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


Serial = Field(min_length=1, max_length=64)
StaffId = Field(default="", max_length=64)
MAX_MS = 7_258_118_400_000  # 2200: later than any keypad or host clock we can store
Ms = Field(ge=0, lt=MAX_MS)
MaybeMs = Field(default=None, ge=0, lt=MAX_MS)


class RatingIn(Schema):
    serial: str = Serial
    journal_seq: int = Field(ge=1, lt=2**62)
    boot_id: int = Field(ge=0, lt=2**62)
    uptime_ms: int = Field(ge=0, lt=2**62)
    time_ms: int = Ms
    time_exact: bool
    score: int = Field(ge=1, le=9)
    key_count: int = Field(ge=1, le=9)
    level_value: int | None = Field(default=None, ge=-1000, le=1000)
    staff_id: str = StaffId
    prompt_id: int = Field(default=0, ge=0, lt=2**62)
    flags: int = Field(default=0, ge=0, lt=2**31)


class PromptIn(Schema):
    serial: str = Serial
    prompt_id: int = Field(ge=0, lt=2**62)
    staff_id: str = StaffId
    state: Literal["issued", "answered", "timed_out", "cancelled"]
    issued_at_ms: int | None = MaybeMs
    timeout_ms: int | None = Field(default=None, ge=0, lt=2**62)
    closed_at_ms: int | None = MaybeMs
    rating_seq: int | None = Field(default=None, ge=0, lt=2**62)


class SessionIn(Schema):
    serial: str = Serial
    staff_id: str = Field(min_length=1, max_length=64)
    started_at_ms: int = Ms
    ended_at_ms: int | None = MaybeMs


class DeviceIn(Schema):
    serial: str = Serial
    connected: bool
    firmware: str | None = Field(default=None, max_length=64)
    state: str | None = Field(default=None, max_length=32)
    faults: list[str] = Field(default_factory=list, max_length=32)
    unacked: int | None = Field(default=None, ge=0, lt=2**31)
    presses: int | None = Field(default=None, ge=0, lt=2**31)
    staff_id: str | None = Field(default=None, max_length=64)
    updated_at_ms: int = Ms


class BatchIn(Schema):
    ratings: list[RatingIn] = Field(default_factory=list, max_length=5000)
    prompts: list[PromptIn] = Field(default_factory=list, max_length=5000)
    sessions: list[SessionIn] = Field(default_factory=list, max_length=5000)
    devices: list[DeviceIn] = Field(default_factory=list, max_length=5000)


class BatchOut(Schema):
    """Sent only after the batch is committed: the agent may mark it uploaded then."""

    committed: bool
    stored: int  # new ratings
    duplicates: int  # ratings the server had already (a replayed batch)
    quarantined: int  # new ratings kept without a window, for an admin to assign
    prompts: int
    sessions: int
    devices: int
