"""Typed request and response schemas of the JSON API (the OpenAPI document comes from them)."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import Field

from ratepad.flags import FLAGS

from ..accounts.passwords import MAX_LENGTH as PASSWORD_MAX_LENGTH
from ..ingest.schemas import Serial

_FLAGS_DOC = "the rating's flags, of: " + "; ".join(f"{f.name} ({f.meaning})" for f in FLAGS)


class TokenIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class TokenOut(Schema):
    token: str
    expires_at: datetime


class TokenInfo(Schema):
    id: int
    created_at: datetime
    expires_at: datetime
    current: bool  # the token this call was made with


class Error(Schema):
    detail: str


class RatingOut(Schema):
    id: int
    serial: str
    journal_seq: int
    time: datetime
    time_exact: bool
    score: int
    key_count: int
    level_value: int | None
    staff_id: str
    window: str | None  # None: quarantined
    branch: str | None
    prompted: bool
    flags: list[str] = Field(description=_FLAGS_DOC)
    received_at: datetime


class RatingsOut(Schema):
    ratings: list[RatingOut]


class SummaryOut(Schema):
    node: str
    n: int  # ratings that count for KPIs
    n_all: int  # every rating, suspicious ones included
    counts: dict[str, int]
    # the figures unrounded (a program rounds as it needs; the pages round on screen)
    index: float | None = Field(description="mean level value (0..100), unrounded")
    csat: float | None = Field(description="share in the top two levels (0..1), unrounded")
    csat_ci: list[float] | None = Field(description="Wilson 95 % interval of csat, unrounded")
    response_rate: float | None = Field(description="answered prompts / prompts, unrounded")
    prompts: int


class NodeOut(Schema):
    code: str
    name: str
    kind: str
    parent: str | None
    path: str


class NodesOut(Schema):
    nodes: list[NodeOut]


class DeviceOut(Schema):
    serial: str
    branch: str | None
    window: str | None
    connected: bool
    firmware: str | None
    state: str | None
    faults: list[str]
    unacked: int | None
    staff_id: str | None
    updated_at: datetime


class DevicesOut(Schema):
    devices: list[DeviceOut]


class QuarantinedOut(Schema):
    serial: str
    journal_seq: int
    time: datetime
    reason: str
    branch: str | None
    created_at: datetime


class QuarantineOut(Schema):
    quarantine: list[QuarantinedOut]


class AssignIn(Schema):
    serial: Serial
    journal_seq: int = Field(ge=1, lt=2**62)
    window: Serial  # a window's code: printable, at most 64


class AssignOut(Schema):
    assigned: bool
