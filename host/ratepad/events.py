"""Typed, frozen events that a keypad session produces, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import flags as flag_table
from .wire import codec
from .wire.codec import DeviceState, Faults, RatingFlags, ResultCode

__all__ = [
    "CommandResult",
    "Connected",
    "Event",
    "KeyEvent",
    "LogLine",
    "Lost",
    "Rating",
    "Status",
    "UnknownMessage",
]


@dataclass(frozen=True, slots=True)
class Connected:
    """The keypad answered host_hello: who it is and what it holds."""

    serial: str
    firmware_version: str
    board: str
    key_count: int
    protocol_version: int
    schema_fingerprint: int
    schema_matches: bool
    boot_id: int
    uptime_ms: int
    journal_capacity: int
    journal_used: int
    acked_seq: int


U8 = 0xFF
U32 = 0xFFFF_FFFF
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time ISO 8601 can say
MAX_TEXT_BYTES = 16  # serial and staff_id on the wire
_RATING_RANGES = (
    ("journal_seq", 1, U32),
    ("boot_id", 0, U32),
    ("uptime_ms", 0, U32),
    ("time_ms", 0, MAX_TIME_MS),
    ("key_count", 1, U8),
    ("prompt_id", 0, U32),
    ("flags", 0, U8),
)


def _text_problem(name: str, value: object) -> str:
    if not isinstance(value, str):
        return f"{name} is not text"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{name} is not valid UTF-8"
    if size > MAX_TEXT_BYTES:
        return f"{name} is longer than {MAX_TEXT_BYTES} bytes"
    return ""


@dataclass(frozen=True, slots=True)
class Rating:
    """One rating from the keypad's journal. Store it, then confirm it so it is ACKed.

    ``time_ms`` is the wall-clock time of the press (ms since 1970 UTC) as well as the host can
    tell: exact (``time_exact``) when the keypad was time-synced during that boot, otherwise
    reconstructed from the boot's uptime (or, for a boot the host never saw, the receive time).
    """

    serial: str
    journal_seq: int
    boot_id: int
    uptime_ms: int
    time_ms: int
    time_exact: bool
    score: int
    key_count: int
    staff_id: str
    prompt_id: int
    flags: RatingFlags
    retransmit: bool = False
    message: codec.Rating | None = field(default=None, compare=False, repr=False)
    """The rating message as received (None for a rating built by code)."""

    def __post_init__(self) -> None:
        # A rating built by code must make sense; one received from a keypad is kept as it
        # came (a keypad resends it until ACKed): ``problem`` says what is wrong with it.
        if self.message is None and self.problem:
            raise ValueError(self.problem)

    @property
    def problem(self) -> str:
        """Why this rating makes no sense ("" if it does): every value range-checked, the one
        check of a rating (the agent's store quarantines a received rating that fails it)."""
        for name, low, high in _RATING_RANGES:
            value = getattr(self, name)
            if not isinstance(value, int):
                return f"{name} is not an integer"
            if not low <= value <= high:
                return f"{name} {value} outside {low}..{high}"
        if not isinstance(self.score, int) or not 0 <= self.score <= self.key_count:
            return f"score {self.score!r} outside 0..{self.key_count}"
        return _text_problem("serial", self.serial) or _text_problem("staff_id", self.staff_id)

    @property
    def prompted(self) -> bool:
        return not self.flags & RatingFlags.UNPROMPTED

    @property
    def flag_names(self) -> list[str]:
        return flag_table.names(self.flags)


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """A debounced key edge (only while key-event streaming is on)."""

    serial: str
    key: int
    down: bool
    uptime_ms: int
    time_ms: int
    bounces: int


@dataclass(frozen=True, slots=True)
class Status:
    """The keypad's heartbeat: state, faults and counters."""

    serial: str
    state: DeviceState | int
    faults: Faults
    uptime_ms: int
    journal_used: int
    unacked: int
    presses: int
    unprompted: int
    repeats: int
    multi_key: int
    stuck_keys: int
    prompt_id: int
    staff_id: str
    acked_seq: int


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The keypad's answer to a command; ``values`` holds settings read by get_config."""

    request_id: int
    code: ResultCode | int
    detail: str
    values: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code == ResultCode.OK


@dataclass(frozen=True, slots=True)
class LogLine:
    serial: str
    level: int
    uptime_ms: int
    text: str


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message type this host does not know (a newer keypad); reported, not an error."""

    serial: str
    type_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Lost:
    """The link to the keypad went away; ``reason`` says why."""

    serial: str
    reason: str


Event = Connected | Rating | KeyEvent | Status | CommandResult | LogLine | UnknownMessage | Lost
