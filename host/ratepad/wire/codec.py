# DO NOT EDIT: generated from protocol/ratepad_protocol/schema.py by `make generate`.
# Protocol version 1, schema fingerprint 0xe7202dbd.
"""Fast host codec for the ratepad wire protocol (generated from the schema,
protocol/ratepad_protocol/schema.py).

Messages are typed NamedTuples; ``decode_frame`` / ``encode`` work on them, and
``decode_frame_fields`` / ``encode_frame`` on the plain values of the golden vectors.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from .codec_support import (
    EncodeError,
    FrameError,
    _bool_in,
    _cobs_decode,
    _cobs_encode,
    _enum_in,
    _EnumCache,
    _flags_in,
    _FlagsCache,
    _int_in,
    _maybe,
    _maybe_in,
    _PayloadError,
    _Short,
    _str_in,
    _text,
    _text_too_long,
    plain_value,
)
from .values import Capabilities as Capabilities
from .values import DeviceState as DeviceState
from .values import Faults as Faults
from .values import LogLevel as LogLevel
from .values import RatingFlags as RatingFlags
from .values import RebootMode as RebootMode
from .values import ResultCode as ResultCode

PROTOCOL_VERSION: Final = 1
SCHEMA_FINGERPRINT: Final = 0xE7202DBD
MAX_FRAME_BYTES: Final = 300
HEADER_SIZE: Final = 5
CRC_RESIDUE: Final = 0x2144DF1C
MESSAGE_FINGERPRINTS: Final[dict[str, int]] = {
    "hello": 0x265958D1,
    "rating": 0x9B9C9728,
    "key_event": 0x3DE6DDF0,
    "status": 0xAF8E58AC,
    "result": 0x54FC637E,
    "config_value": 0x7C793433,
    "log": 0x07751A7A,
    "host_hello": 0x502193E7,
    "ack": 0x5250DA61,
    "time_sync": 0x74B5E4AA,
    "prompt": 0xD22FE629,
    "cancel_prompt": 0x8BADF6FA,
    "login": 0x39C888D8,
    "logout": 0xEE0CE7D4,
    "get_config": 0x75B5FA4F,
    "set_config": 0x1AED6BBF,
    "self_test": 0x86B13FF1,
    "reboot": 0x8182D59B,
    "key_events": 0xB3800203,
}


class HeaderFlags(enum.IntFlag):
    """Flags in every frame header."""

    RETRANSMIT = 0x1
    RESPONSE = 0x2


_C_HeaderFlags: Final = _FlagsCache(HeaderFlags)


_C_Capabilities: Final = _FlagsCache(Capabilities)

_C_RatingFlags: Final = _FlagsCache(RatingFlags)

_C_DeviceState: Final = _EnumCache(DeviceState)

_C_Faults: Final = _FlagsCache(Faults)

_C_ResultCode: Final = _EnumCache(ResultCode)

_C_LogLevel: Final = _EnumCache(LogLevel)

_C_RebootMode: Final = _EnumCache(RebootMode)


class Hello(NamedTuple):
    """Sent by the keypad when the link comes up and in answer to host_hello."""

    protocol_version: int
    schema_fingerprint: int
    key_count: int
    capabilities: Capabilities
    journal_capacity: int
    journal_used: int
    boot_count: int
    uptime_ms: int
    serial: str
    firmware_version: str
    board: str
    acked_seq: int

    @property
    def type_id(self) -> int:
        return 0x01

    @property
    def type_name(self) -> str:
        return "hello"


class Rating(NamedTuple):
    """One journalled rating; re-sent until the host ACKs its journal sequence."""

    journal_seq: int
    boot_id: int
    uptime_ms: int
    epoch_ms: int | None
    score: int
    key_count: int
    prompt_id: int
    flags: RatingFlags
    staff_id: str

    @property
    def type_id(self) -> int:
        return 0x02

    @property
    def type_name(self) -> str:
        return "rating"


class KeyEvent(NamedTuple):
    """A debounced key edge (diagnostics; only while key-event streaming is on)."""

    key: int
    down: bool
    uptime_ms: int
    bounces: int

    @property
    def type_id(self) -> int:
        return 0x03

    @property
    def type_name(self) -> str:
        return "key_event"


class Status(NamedTuple):
    """Heartbeat: state, faults and counters; periodic and on change."""

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

    @property
    def type_id(self) -> int:
        return 0x04

    @property
    def type_name(self) -> str:
        return "status"


class Result(NamedTuple):
    """The outcome of a host command, naming the command frame's sequence."""

    request_seq: int
    code: ResultCode | int
    detail: str

    @property
    def type_id(self) -> int:
        return 0x05

    @property
    def type_name(self) -> str:
        return "result"


class ConfigValue(NamedTuple):
    """One setting, in answer to get_config (all settings for an empty key, then a result)."""

    request_seq: int
    key: str
    value: str

    @property
    def type_id(self) -> int:
        return 0x06

    @property
    def type_name(self) -> str:
        return "config_value"


class Log(NamedTuple):
    """A log line from the firmware."""

    level: LogLevel | int
    uptime_ms: int
    text: str

    @property
    def type_id(self) -> int:
        return 0x07

    @property
    def type_name(self) -> str:
        return "log"


class HostHello(NamedTuple):
    """Sent by the host when it opens the link; the keypad answers with hello."""

    protocol_version: int
    schema_fingerprint: int
    software: str

    @property
    def type_id(self) -> int:
        return 0x40

    @property
    def type_name(self) -> str:
        return "host_hello"


class Ack(NamedTuple):
    """Every rating up to and including journal_seq is durably stored by the host."""

    journal_seq: int

    @property
    def type_id(self) -> int:
        return 0x41

    @property
    def type_name(self) -> str:
        return "ack"


class TimeSync(NamedTuple):
    """Wall-clock time (ms since 1970 UTC) at the moment the host sent this frame."""

    epoch_ms: int

    @property
    def type_id(self) -> int:
        return 0x42

    @property
    def type_name(self) -> str:
        return "time_sync"


class Prompt(NamedTuple):
    """Arm the keypad: the first valid press answers this prompt."""

    prompt_id: int
    timeout_ms: int
    staff_id: str

    @property
    def type_id(self) -> int:
        return 0x43

    @property
    def type_name(self) -> str:
        return "prompt"


class CancelPrompt(NamedTuple):
    """Disarm the prompt (0 cancels whichever prompt is armed)."""

    prompt_id: int

    @property
    def type_id(self) -> int:
        return 0x44

    @property
    def type_name(self) -> str:
        return "cancel_prompt"


class Login(NamedTuple):
    """A staff member logged in at this window."""

    staff_id: str
    display_name: str

    @property
    def type_id(self) -> int:
        return 0x45

    @property
    def type_name(self) -> str:
        return "login"


class Logout(NamedTuple):
    """The staff member logged out."""

    staff_id: str

    @property
    def type_id(self) -> int:
        return 0x46

    @property
    def type_name(self) -> str:
        return "logout"


class GetConfig(NamedTuple):
    """Read one setting, or all of them for an empty key."""

    key: str

    @property
    def type_id(self) -> int:
        return 0x47

    @property
    def type_name(self) -> str:
        return "get_config"


class SetConfig(NamedTuple):
    """Change one setting; the keypad validates it and persists it in flash."""

    key: str
    value: str

    @property
    def type_id(self) -> int:
        return 0x48

    @property
    def type_name(self) -> str:
        return "set_config"


class SelfTest(NamedTuple):
    """Run the self-test (LEDs, buzzer, journal); the result's detail says what failed."""

    @property
    def type_id(self) -> int:
        return 0x49

    @property
    def type_name(self) -> str:
        return "self_test"


class Reboot(NamedTuple):
    """Restart the keypad."""

    mode: RebootMode | int

    @property
    def type_id(self) -> int:
        return 0x4A

    @property
    def type_name(self) -> str:
        return "reboot"


class KeyEvents(NamedTuple):
    """Turn streaming of debounced key edges on or off."""

    enabled: bool

    @property
    def type_id(self) -> int:
        return 0x4B

    @property
    def type_name(self) -> str:
        return "key_events"


class Unknown(NamedTuple):
    """A message type this schema does not know (from a newer peer)."""

    type_id: int
    payload: bytes

    @property
    def type_name(self) -> str:
        return "unknown"


class Header(NamedTuple):
    """The frame header (the protocol version is checked, not kept)."""

    flags: HeaderFlags
    type_id: int
    seq: int


Message = (
    Hello
    | Rating
    | KeyEvent
    | Status
    | Result
    | ConfigValue
    | Log
    | HostHello
    | Ack
    | TimeSync
    | Prompt
    | CancelPrompt
    | Login
    | Logout
    | GetConfig
    | SetConfig
    | SelfTest
    | Reboot
    | KeyEvents
    | Unknown
)
DeviceMessage = Hello | Rating | KeyEvent | Status | Result | ConfigValue | Log
HostMessage = (
    HostHello
    | Ack
    | TimeSync
    | Prompt
    | CancelPrompt
    | Login
    | Logout
    | GetConfig
    | SetConfig
    | SelfTest
    | Reboot
    | KeyEvents
)

_S_HELLO_0: Final = struct.Struct("<BIBHIIII")
_S_HELLO_4: Final = struct.Struct("<I")
_S_RATING_0: Final = struct.Struct("<IIIQBBIH")
_S_KEY_EVENT_0: Final = struct.Struct("<BBIB")
_S_STATUS_0: Final = struct.Struct("<BHIIIIIIIBI")
_S_STATUS_2: Final = struct.Struct("<I")
_S_RESULT_0: Final = struct.Struct("<HB")
_S_CONFIG_VALUE_0: Final = struct.Struct("<H")
_S_LOG_0: Final = struct.Struct("<BI")
_S_HOST_HELLO_0: Final = struct.Struct("<BI")
_S_ACK_0: Final = struct.Struct("<I")
_S_TIME_SYNC_0: Final = struct.Struct("<Q")
_S_PROMPT_0: Final = struct.Struct("<II")
_S_CANCEL_PROMPT_0: Final = struct.Struct("<I")
_S_REBOOT_0: Final = struct.Struct("<B")
_S_KEY_EVENTS_0: Final = struct.Struct("<B")
_S_HEADER: Final = struct.Struct("<BBBH")
_new = tuple.__new__


def _d_hello(p: bytes) -> Hello:
    (
        v_protocol_version,
        v_schema_fingerprint,
        v_key_count,
        v_capabilities,
        v_journal_capacity,
        v_journal_used,
        v_boot_count,
        v_uptime_ms,
    ) = _S_HELLO_0.unpack_from(p, 0)
    n = p[24]
    if n > 16:
        raise _text_too_long("hello.serial", n, 16, len(p) - 24 - 1)
    t = p[24 + 1 : 24 + 1 + n]
    if len(t) != n:
        raise _Short
    v_serial = t.decode()
    o = 24 + 1 + n
    n = p[o]
    if n > 16:
        raise _text_too_long("hello.firmware_version", n, 16, len(p) - o - 1)
    t = p[o + 1 : o + 1 + n]
    if len(t) != n:
        raise _Short
    v_firmware_version = t.decode()
    o = o + 1 + n
    n = p[o]
    if n > 16:
        raise _text_too_long("hello.board", n, 16, len(p) - o - 1)
    t = p[o + 1 : o + 1 + n]
    if len(t) != n:
        raise _Short
    v_board = t.decode()
    o = o + 1 + n
    (v_acked_seq,) = _S_HELLO_4.unpack_from(p, o)
    return _new(
        Hello,
        (
            v_protocol_version,
            v_schema_fingerprint,
            v_key_count,
            _C_Capabilities[v_capabilities],
            v_journal_capacity,
            v_journal_used,
            v_boot_count,
            v_uptime_ms,
            v_serial,
            v_firmware_version,
            v_board,
            v_acked_seq,
        ),
    )


def _e_hello(m: Hello) -> bytes:
    return b"".join(
        (
            _S_HELLO_0.pack(
                m.protocol_version,
                m.schema_fingerprint,
                m.key_count,
                m.capabilities,
                m.journal_capacity,
                m.journal_used,
                m.boot_count,
                m.uptime_ms,
            ),
            _text(m.serial, 16, "hello.serial"),
            _text(m.firmware_version, 16, "hello.firmware_version"),
            _text(m.board, 16, "hello.board"),
            _S_HELLO_4.pack(m.acked_seq),
        )
    )


def _f_hello(d: Mapping[str, Any]) -> Hello:
    return Hello(
        _int_in(d["protocol_version"]),
        _int_in(d["schema_fingerprint"]),
        _int_in(d["key_count"]),
        _flags_in(Capabilities, d["capabilities"]),
        _int_in(d["journal_capacity"]),
        _int_in(d["journal_used"]),
        _int_in(d["boot_count"]),
        _int_in(d["uptime_ms"]),
        _str_in(d["serial"]),
        _str_in(d["firmware_version"]),
        _str_in(d["board"]),
        _int_in(d["acked_seq"]),
    )


def _d_rating(p: bytes) -> Rating:
    (
        v_journal_seq,
        v_boot_id,
        v_uptime_ms,
        v_epoch_ms,
        v_score,
        v_key_count,
        v_prompt_id,
        v_flags,
    ) = _S_RATING_0.unpack_from(p, 0)
    n = p[28]
    if n > 16:
        raise _text_too_long("rating.staff_id", n, 16, len(p) - 28 - 1)
    t = p[28 + 1 : 28 + 1 + n]
    if len(t) != n:
        raise _Short
    v_staff_id = t.decode()
    return _new(
        Rating,
        (
            v_journal_seq,
            v_boot_id,
            v_uptime_ms,
            None if v_epoch_ms == 0xFFFFFFFFFFFFFFFF else v_epoch_ms,
            v_score,
            v_key_count,
            v_prompt_id,
            _C_RatingFlags[v_flags],
            v_staff_id,
        ),
    )


def _e_rating(m: Rating) -> bytes:
    return b"".join(
        (
            _S_RATING_0.pack(
                m.journal_seq,
                m.boot_id,
                m.uptime_ms,
                _maybe(m.epoch_ms, 0xFFFFFFFFFFFFFFFF),
                m.score,
                m.key_count,
                m.prompt_id,
                m.flags,
            ),
            _text(m.staff_id, 16, "rating.staff_id"),
        )
    )


def _f_rating(d: Mapping[str, Any]) -> Rating:
    return Rating(
        _int_in(d["journal_seq"]),
        _int_in(d["boot_id"]),
        _int_in(d["uptime_ms"]),
        _maybe_in(d["epoch_ms"]),
        _int_in(d["score"]),
        _int_in(d["key_count"]),
        _int_in(d["prompt_id"]),
        _flags_in(RatingFlags, d["flags"]),
        _str_in(d["staff_id"]),
    )


def _d_key_event(p: bytes) -> KeyEvent:
    v_key, v_down, v_uptime_ms, v_bounces = _S_KEY_EVENT_0.unpack_from(p, 0)
    return _new(KeyEvent, (v_key, v_down != 0, v_uptime_ms, v_bounces))


def _e_key_event(m: KeyEvent) -> bytes:
    return _S_KEY_EVENT_0.pack(m.key, m.down, m.uptime_ms, m.bounces)


def _f_key_event(d: Mapping[str, Any]) -> KeyEvent:
    return KeyEvent(
        _int_in(d["key"]), _bool_in(d["down"]), _int_in(d["uptime_ms"]), _int_in(d["bounces"])
    )


def _d_status(p: bytes) -> Status:
    (
        v_state,
        v_faults,
        v_uptime_ms,
        v_journal_used,
        v_unacked,
        v_presses,
        v_unprompted,
        v_repeats,
        v_multi_key,
        v_stuck_keys,
        v_prompt_id,
    ) = _S_STATUS_0.unpack_from(p, 0)
    n = p[36]
    if n > 16:
        raise _text_too_long("status.staff_id", n, 16, len(p) - 36 - 1)
    t = p[36 + 1 : 36 + 1 + n]
    if len(t) != n:
        raise _Short
    v_staff_id = t.decode()
    o = 36 + 1 + n
    (v_acked_seq,) = _S_STATUS_2.unpack_from(p, o)
    return _new(
        Status,
        (
            _C_DeviceState[v_state],
            _C_Faults[v_faults],
            v_uptime_ms,
            v_journal_used,
            v_unacked,
            v_presses,
            v_unprompted,
            v_repeats,
            v_multi_key,
            v_stuck_keys,
            v_prompt_id,
            v_staff_id,
            v_acked_seq,
        ),
    )


def _e_status(m: Status) -> bytes:
    return b"".join(
        (
            _S_STATUS_0.pack(
                m.state,
                m.faults,
                m.uptime_ms,
                m.journal_used,
                m.unacked,
                m.presses,
                m.unprompted,
                m.repeats,
                m.multi_key,
                m.stuck_keys,
                m.prompt_id,
            ),
            _text(m.staff_id, 16, "status.staff_id"),
            _S_STATUS_2.pack(m.acked_seq),
        )
    )


def _f_status(d: Mapping[str, Any]) -> Status:
    return Status(
        _enum_in(DeviceState, d["state"]),
        _flags_in(Faults, d["faults"]),
        _int_in(d["uptime_ms"]),
        _int_in(d["journal_used"]),
        _int_in(d["unacked"]),
        _int_in(d["presses"]),
        _int_in(d["unprompted"]),
        _int_in(d["repeats"]),
        _int_in(d["multi_key"]),
        _int_in(d["stuck_keys"]),
        _int_in(d["prompt_id"]),
        _str_in(d["staff_id"]),
        _int_in(d["acked_seq"]),
    )


def _d_result(p: bytes) -> Result:
    v_request_seq, v_code = _S_RESULT_0.unpack_from(p, 0)
    n = p[3]
    if n > 48:
        raise _text_too_long("result.detail", n, 48, len(p) - 3 - 1)
    t = p[3 + 1 : 3 + 1 + n]
    if len(t) != n:
        raise _Short
    v_detail = t.decode()
    return _new(Result, (v_request_seq, _C_ResultCode[v_code], v_detail))


def _e_result(m: Result) -> bytes:
    return b"".join(
        (
            _S_RESULT_0.pack(m.request_seq, m.code),
            _text(m.detail, 48, "result.detail"),
        )
    )


def _f_result(d: Mapping[str, Any]) -> Result:
    return Result(_int_in(d["request_seq"]), _enum_in(ResultCode, d["code"]), _str_in(d["detail"]))


def _d_config_value(p: bytes) -> ConfigValue:
    (v_request_seq,) = _S_CONFIG_VALUE_0.unpack_from(p, 0)
    n = p[2]
    if n > 16:
        raise _text_too_long("config_value.key", n, 16, len(p) - 2 - 1)
    t = p[2 + 1 : 2 + 1 + n]
    if len(t) != n:
        raise _Short
    v_key = t.decode()
    o = 2 + 1 + n
    n = p[o]
    if n > 32:
        raise _text_too_long("config_value.value", n, 32, len(p) - o - 1)
    t = p[o + 1 : o + 1 + n]
    if len(t) != n:
        raise _Short
    v_value = t.decode()
    return _new(ConfigValue, (v_request_seq, v_key, v_value))


def _e_config_value(m: ConfigValue) -> bytes:
    return b"".join(
        (
            _S_CONFIG_VALUE_0.pack(m.request_seq),
            _text(m.key, 16, "config_value.key"),
            _text(m.value, 32, "config_value.value"),
        )
    )


def _f_config_value(d: Mapping[str, Any]) -> ConfigValue:
    return ConfigValue(_int_in(d["request_seq"]), _str_in(d["key"]), _str_in(d["value"]))


def _d_log(p: bytes) -> Log:
    v_level, v_uptime_ms = _S_LOG_0.unpack_from(p, 0)
    n = p[5]
    if n > 160:
        raise _text_too_long("log.text", n, 160, len(p) - 5 - 1)
    t = p[5 + 1 : 5 + 1 + n]
    if len(t) != n:
        raise _Short
    v_text = t.decode()
    return _new(Log, (_C_LogLevel[v_level], v_uptime_ms, v_text))


def _e_log(m: Log) -> bytes:
    return b"".join(
        (
            _S_LOG_0.pack(m.level, m.uptime_ms),
            _text(m.text, 160, "log.text"),
        )
    )


def _f_log(d: Mapping[str, Any]) -> Log:
    return Log(_enum_in(LogLevel, d["level"]), _int_in(d["uptime_ms"]), _str_in(d["text"]))


def _d_host_hello(p: bytes) -> HostHello:
    v_protocol_version, v_schema_fingerprint = _S_HOST_HELLO_0.unpack_from(p, 0)
    n = p[5]
    if n > 32:
        raise _text_too_long("host_hello.software", n, 32, len(p) - 5 - 1)
    t = p[5 + 1 : 5 + 1 + n]
    if len(t) != n:
        raise _Short
    v_software = t.decode()
    return _new(HostHello, (v_protocol_version, v_schema_fingerprint, v_software))


def _e_host_hello(m: HostHello) -> bytes:
    return b"".join(
        (
            _S_HOST_HELLO_0.pack(m.protocol_version, m.schema_fingerprint),
            _text(m.software, 32, "host_hello.software"),
        )
    )


def _f_host_hello(d: Mapping[str, Any]) -> HostHello:
    return HostHello(
        _int_in(d["protocol_version"]), _int_in(d["schema_fingerprint"]), _str_in(d["software"])
    )


def _d_ack(p: bytes) -> Ack:
    (v_journal_seq,) = _S_ACK_0.unpack_from(p, 0)
    return _new(Ack, (v_journal_seq,))


def _e_ack(m: Ack) -> bytes:
    return _S_ACK_0.pack(m.journal_seq)


def _f_ack(d: Mapping[str, Any]) -> Ack:
    return Ack(_int_in(d["journal_seq"]))


def _d_time_sync(p: bytes) -> TimeSync:
    (v_epoch_ms,) = _S_TIME_SYNC_0.unpack_from(p, 0)
    return _new(TimeSync, (v_epoch_ms,))


def _e_time_sync(m: TimeSync) -> bytes:
    return _S_TIME_SYNC_0.pack(m.epoch_ms)


def _f_time_sync(d: Mapping[str, Any]) -> TimeSync:
    return TimeSync(_int_in(d["epoch_ms"]))


def _d_prompt(p: bytes) -> Prompt:
    v_prompt_id, v_timeout_ms = _S_PROMPT_0.unpack_from(p, 0)
    n = p[8]
    if n > 16:
        raise _text_too_long("prompt.staff_id", n, 16, len(p) - 8 - 1)
    t = p[8 + 1 : 8 + 1 + n]
    if len(t) != n:
        raise _Short
    v_staff_id = t.decode()
    return _new(Prompt, (v_prompt_id, v_timeout_ms, v_staff_id))


def _e_prompt(m: Prompt) -> bytes:
    return b"".join(
        (
            _S_PROMPT_0.pack(m.prompt_id, m.timeout_ms),
            _text(m.staff_id, 16, "prompt.staff_id"),
        )
    )


def _f_prompt(d: Mapping[str, Any]) -> Prompt:
    return Prompt(_int_in(d["prompt_id"]), _int_in(d["timeout_ms"]), _str_in(d["staff_id"]))


def _d_cancel_prompt(p: bytes) -> CancelPrompt:
    (v_prompt_id,) = _S_CANCEL_PROMPT_0.unpack_from(p, 0)
    return _new(CancelPrompt, (v_prompt_id,))


def _e_cancel_prompt(m: CancelPrompt) -> bytes:
    return _S_CANCEL_PROMPT_0.pack(m.prompt_id)


def _f_cancel_prompt(d: Mapping[str, Any]) -> CancelPrompt:
    return CancelPrompt(_int_in(d["prompt_id"]))


def _d_login(p: bytes) -> Login:
    n = p[0]
    if n > 16:
        raise _text_too_long("login.staff_id", n, 16, len(p) - 0 - 1)
    t = p[0 + 1 : 0 + 1 + n]
    if len(t) != n:
        raise _Short
    v_staff_id = t.decode()
    o = 0 + 1 + n
    n = p[o]
    if n > 32:
        raise _text_too_long("login.display_name", n, 32, len(p) - o - 1)
    t = p[o + 1 : o + 1 + n]
    if len(t) != n:
        raise _Short
    v_display_name = t.decode()
    return _new(Login, (v_staff_id, v_display_name))


def _e_login(m: Login) -> bytes:
    return b"".join(
        (
            _text(m.staff_id, 16, "login.staff_id"),
            _text(m.display_name, 32, "login.display_name"),
        )
    )


def _f_login(d: Mapping[str, Any]) -> Login:
    return Login(_str_in(d["staff_id"]), _str_in(d["display_name"]))


def _d_logout(p: bytes) -> Logout:
    n = p[0]
    if n > 16:
        raise _text_too_long("logout.staff_id", n, 16, len(p) - 0 - 1)
    t = p[0 + 1 : 0 + 1 + n]
    if len(t) != n:
        raise _Short
    v_staff_id = t.decode()
    return _new(Logout, (v_staff_id,))


def _e_logout(m: Logout) -> bytes:
    return _text(m.staff_id, 16, "logout.staff_id")


def _f_logout(d: Mapping[str, Any]) -> Logout:
    return Logout(_str_in(d["staff_id"]))


def _d_get_config(p: bytes) -> GetConfig:
    n = p[0]
    if n > 16:
        raise _text_too_long("get_config.key", n, 16, len(p) - 0 - 1)
    t = p[0 + 1 : 0 + 1 + n]
    if len(t) != n:
        raise _Short
    v_key = t.decode()
    return _new(GetConfig, (v_key,))


def _e_get_config(m: GetConfig) -> bytes:
    return _text(m.key, 16, "get_config.key")


def _f_get_config(d: Mapping[str, Any]) -> GetConfig:
    return GetConfig(_str_in(d["key"]))


def _d_set_config(p: bytes) -> SetConfig:
    n = p[0]
    if n > 16:
        raise _text_too_long("set_config.key", n, 16, len(p) - 0 - 1)
    t = p[0 + 1 : 0 + 1 + n]
    if len(t) != n:
        raise _Short
    v_key = t.decode()
    o = 0 + 1 + n
    n = p[o]
    if n > 32:
        raise _text_too_long("set_config.value", n, 32, len(p) - o - 1)
    t = p[o + 1 : o + 1 + n]
    if len(t) != n:
        raise _Short
    v_value = t.decode()
    return _new(SetConfig, (v_key, v_value))


def _e_set_config(m: SetConfig) -> bytes:
    return b"".join(
        (
            _text(m.key, 16, "set_config.key"),
            _text(m.value, 32, "set_config.value"),
        )
    )


def _f_set_config(d: Mapping[str, Any]) -> SetConfig:
    return SetConfig(_str_in(d["key"]), _str_in(d["value"]))


def _d_self_test(p: bytes) -> SelfTest:
    return _new(SelfTest, ())


def _e_self_test(m: SelfTest) -> bytes:
    return b""


def _f_self_test(d: Mapping[str, Any]) -> SelfTest:
    return SelfTest()


def _d_reboot(p: bytes) -> Reboot:
    (v_mode,) = _S_REBOOT_0.unpack_from(p, 0)
    return _new(Reboot, (_C_RebootMode[v_mode],))


def _e_reboot(m: Reboot) -> bytes:
    return _S_REBOOT_0.pack(m.mode)


def _f_reboot(d: Mapping[str, Any]) -> Reboot:
    return Reboot(_enum_in(RebootMode, d["mode"]))


def _d_key_events(p: bytes) -> KeyEvents:
    (v_enabled,) = _S_KEY_EVENTS_0.unpack_from(p, 0)
    return _new(KeyEvents, (v_enabled != 0,))


def _e_key_events(m: KeyEvents) -> bytes:
    return _S_KEY_EVENTS_0.pack(m.enabled)


def _f_key_events(d: Mapping[str, Any]) -> KeyEvents:
    return KeyEvents(_bool_in(d["enabled"]))


_DECODERS: Final[dict[int, Any]] = {
    0x01: _d_hello,
    0x02: _d_rating,
    0x03: _d_key_event,
    0x04: _d_status,
    0x05: _d_result,
    0x06: _d_config_value,
    0x07: _d_log,
    0x40: _d_host_hello,
    0x41: _d_ack,
    0x42: _d_time_sync,
    0x43: _d_prompt,
    0x44: _d_cancel_prompt,
    0x45: _d_login,
    0x46: _d_logout,
    0x47: _d_get_config,
    0x48: _d_set_config,
    0x49: _d_self_test,
    0x4A: _d_reboot,
    0x4B: _d_key_events,
}
_ENCODERS: Final[dict[type, Any]] = {
    Hello: _e_hello,
    Rating: _e_rating,
    KeyEvent: _e_key_event,
    Status: _e_status,
    Result: _e_result,
    ConfigValue: _e_config_value,
    Log: _e_log,
    HostHello: _e_host_hello,
    Ack: _e_ack,
    TimeSync: _e_time_sync,
    Prompt: _e_prompt,
    CancelPrompt: _e_cancel_prompt,
    Login: _e_login,
    Logout: _e_logout,
    GetConfig: _e_get_config,
    SetConfig: _e_set_config,
    SelfTest: _e_self_test,
    Reboot: _e_reboot,
    KeyEvents: _e_key_events,
}
MESSAGE_TYPES: Final[dict[str, type[Message]]] = {
    "hello": Hello,
    "rating": Rating,
    "key_event": KeyEvent,
    "status": Status,
    "result": Result,
    "config_value": ConfigValue,
    "log": Log,
    "host_hello": HostHello,
    "ack": Ack,
    "time_sync": TimeSync,
    "prompt": Prompt,
    "cancel_prompt": CancelPrompt,
    "login": Login,
    "logout": Logout,
    "get_config": GetConfig,
    "set_config": SetConfig,
    "self_test": SelfTest,
    "reboot": Reboot,
    "key_events": KeyEvents,
}
_FROM_FIELDS: Final[dict[str, Any]] = {
    "hello": _f_hello,
    "rating": _f_rating,
    "key_event": _f_key_event,
    "status": _f_status,
    "result": _f_result,
    "config_value": _f_config_value,
    "log": _f_log,
    "host_hello": _f_host_hello,
    "ack": _f_ack,
    "time_sync": _f_time_sync,
    "prompt": _f_prompt,
    "cancel_prompt": _f_cancel_prompt,
    "login": _f_login,
    "logout": _f_logout,
    "get_config": _f_get_config,
    "set_config": _f_set_config,
    "self_test": _f_self_test,
    "reboot": _f_reboot,
    "key_events": _f_key_events,
}
_PAD: Final = bytes(166)


_crc32 = zlib.crc32


def decode_payload(type_id: int, payload: bytes) -> Message:
    """The message of one payload; raises FrameError("payload") for a malformed one."""
    dec = _DECODERS.get(type_id)
    if dec is None:
        return Unknown(type_id, payload)
    try:
        try:
            msg: Message = dec(payload)
        except (struct.error, IndexError, _Short):
            # Evolution: bytes past the end of a shorter (older) payload read as zero.
            msg = dec(payload + _PAD)
    except UnicodeDecodeError as exc:
        raise FrameError("payload", f"text is not UTF-8: {exc.reason}") from None
    except _PayloadError as exc:
        raise FrameError("payload", str(exc)) from None
    return msg


def decode_body(body: bytes) -> tuple[Header, Message]:
    """Header and message of one COBS-decoded frame body (header + payload + CRC)."""
    if len(body) < HEADER_SIZE + 4:
        raise FrameError("short", f"{len(body)} bytes is shorter than header and CRC")
    if _crc32(body) != CRC_RESIDUE:
        raise FrameError("crc", "CRC-32 mismatch")
    version, flags, type_id, seq = _S_HEADER.unpack_from(body)
    if version != PROTOCOL_VERSION:
        raise FrameError("version", f"protocol version {version} is not supported")
    return Header(_C_HeaderFlags[flags], type_id, seq), decode_payload(type_id, body[5:-4])


def decode_frame(frame: bytes) -> tuple[Header, Message]:
    """Header and message of one complete frame (delimiter included); raises FrameError."""
    if frame[-1:] != b"\0":
        raise FrameError("cobs", "frame does not end with the delimiter")
    return decode_body(_cobs_decode(frame[:-1]))


def encode_payload(msg: Message) -> bytes:
    """The payload bytes of a message; raises ValueError for a value that does not fit."""
    if isinstance(msg, Unknown):
        return bytes(msg.payload)
    try:
        payload: bytes = _ENCODERS[type(msg)](msg)
    except struct.error as exc:
        raise EncodeError(f"{msg.type_name}: {exc}") from None
    return payload


def encode(msg: Message, seq: int = 0, flags: int = 0) -> bytes:
    """One complete frame (COBS, delimiter included) carrying ``msg``."""
    type_id = msg.type_id
    if not 0 <= seq <= 0xFFFF:
        raise EncodeError("seq must be 0..65535")
    body = _S_HEADER.pack(PROTOCOL_VERSION, flags, type_id, seq) + encode_payload(msg)
    return _cobs_encode(body + _crc32(body).to_bytes(4, "little")) + b"\0"


def message_from_fields(type_name: str, fields: Mapping[str, Any]) -> Message:
    """A typed message from plain values (the vectors' ``message`` objects, without ``type``)."""
    if type_name == "unknown":
        return Unknown(_int_in(fields["type_id"]), bytes.fromhex(_str_in(fields["payload"])))
    build = _FROM_FIELDS.get(type_name)
    if build is None:
        raise EncodeError(f"unknown message type {type_name!r}")
    cls = MESSAGE_TYPES[type_name]
    expected = set(cls._fields)
    missing = expected - set(fields)
    if missing:
        raise EncodeError(f"{type_name}: missing fields {sorted(missing)}")
    extra = set(fields) - expected - {"type"}
    if extra:
        raise EncodeError(f"{type_name}: unknown fields {sorted(extra)}")
    msg: Message = build(fields)
    return msg


def message_fields(msg: Message) -> tuple[str, dict[str, Any]]:
    """``(type_name, fields)`` of a message as plain values (enum names, flag name lists)."""
    if isinstance(msg, Unknown):
        return "unknown", {"type_id": msg.type_id, "payload": msg.payload.hex()}
    return msg.type_name, {k: plain_value(v) for k, v in zip(msg._fields, msg, strict=True)}


def encode_frame(type_name: str, fields: Mapping[str, Any], seq: int = 0, flags: int = 0) -> bytes:
    """The frame of a message given as plain values."""
    return encode(message_from_fields(type_name, fields), seq, flags)


def decode_frame_fields(frame: bytes) -> tuple[str, dict[str, Any]]:
    """``(type_name, fields)`` of one complete frame as plain values; raises FrameError."""
    return message_fields(decode_frame(frame)[1])
