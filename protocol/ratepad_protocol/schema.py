"""The ratepad wire protocol, defined once with construct.

Everything else (the firmware codec, the fast host codec, the golden vectors' checks) is generated
from, or checked against, the definitions in this file.

Evolution rules (never break them):

* A message type id is never reused; a retired message keeps its id reserved.
* Fields are only ever appended to a message. A decoder ignores payload bytes past the fields it
  knows, and zero-fills a payload shorter than the fields it knows (so an appended field reads as
  0 / empty / false / none from an older peer).
* Enum and flag values are only ever added. A decoder reports an unknown enum value as its number
  and an unknown flag bit as ``"bit<N>"``; it does not fail.
* ``PROTOCOL_VERSION`` changes only for an incompatible change of framing or header; a peer with
  another protocol version gets a clear error at hello time.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Final, Literal

from construct import (
    Adapter,
    Construct,
    Enum,
    Flag,
    FlagsEnum,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    PascalString,
    Struct,
    ValidationError,
)

PROTOCOL_VERSION: Final = 1
"""Version of framing and header; bumped only by an incompatible change."""

DELIMITER: Final = b"\x00"
HID_REPORT_SIZE: Final = 64
"""Over USB the byte stream is cut into 64-byte HID reports (no report id). A sender fills each
report with stream bytes; when it has nothing more to send it pads the report with 0x00 bytes,
which can only follow a complete frame and so read as empty frames that decoders skip."""

CRC_RESIDUE: Final = 0x2144DF1C
"""zlib.crc32 over (header + payload + its little-endian CRC-32) of an intact frame."""


class Text(Adapter):  # type: ignore[misc]
    """UTF-8 text with a one-byte length prefix and a maximum length in bytes."""

    def __init__(self, max_bytes: int) -> None:
        if not 0 < max_bytes <= 255:
            raise ValueError("Text max_bytes must be 1..255")
        super().__init__(PascalString(Int8ul, "utf8"))
        self.max_bytes = max_bytes

    def _decode(self, obj: str, context: Any, path: str) -> str:
        if len(obj.encode("utf-8")) > self.max_bytes:
            raise ValidationError(f"text longer than {self.max_bytes} bytes", path=path)
        return obj

    def _encode(self, obj: str, context: Any, path: str) -> str:
        if len(obj.encode("utf-8")) > self.max_bytes:
            raise ValidationError(f"text longer than {self.max_bytes} bytes", path=path)
        return obj


class Maybe(Adapter):  # type: ignore[misc]
    """An unsigned integer whose all-ones value means "none"."""

    def __init__(self, subcon: Construct) -> None:
        super().__init__(subcon)
        self.none_value: int = (1 << (8 * subcon.sizeof())) - 1

    def _decode(self, obj: int, context: Any, path: str) -> int | None:
        return None if obj == self.none_value else obj

    def _encode(self, obj: int | None, context: Any, path: str) -> int:
        if obj is None:
            return self.none_value
        if obj == self.none_value:
            raise ValidationError("value reserved for none", path=path)
        return obj


class Flags(FlagsEnum):  # type: ignore[misc]
    """FlagsEnum that keeps unknown bits, as ``bit<N>`` keys, in both directions."""

    def _decode(self, obj: int, context: Any, path: str) -> Any:
        out = super()._decode(obj, context, path)
        unknown = obj & ~sum(self.flags.values())
        for bit in range(unknown.bit_length()):
            if unknown >> bit & 1:
                out[f"bit{bit}"] = True
        return out

    def _encode(self, obj: Any, context: Any, path: str) -> int:
        if isinstance(obj, dict):
            extra = 0
            known = {}
            for name, on in obj.items():
                if name.startswith("bit") and name[3:].isdigit() and name not in self.flags:
                    extra |= (1 << int(name[3:])) if on else 0
                else:
                    known[name] = on
            return int(super()._encode(known, context, path)) | extra
        return int(super()._encode(obj, context, path))


Direction = Literal["device", "host"]
"""Who sends a message: ``device`` (keypad to host) or ``host`` (host to keypad)."""


@dataclass(frozen=True)
class Message:
    type_id: int
    name: str
    sender: Direction
    body: Struct
    doc: str


# ---------------------------------------------------------------------------------------------
# Shared field types
SERIAL: Final = Text(16)
VERSION_TEXT: Final = Text(16)
STAFF_ID: Final = Text(16)
DISPLAY_NAME: Final = Text(32)
CONFIG_KEY: Final = Text(16)
CONFIG_VALUE: Final = Text(32)

CAPABILITIES = Flags(
    Int16ul,
    status_led=0x0001,
    buzzer=0x0002,
    key_events=0x0004,
    self_test=0x0008,
    maintenance=0x0010,
    time_sync=0x0020,
)

RATING_FLAGS = Flags(
    Int16ul,
    unprompted=0x0001,  # no prompt was armed when the key was pressed
    repeat=0x0002,  # pressed within the repeat guard after a rating
    multi_key=0x0004,  # another key was down at the same time
    stuck_key=0x0008,  # a key was reported stuck while this rating was taken
    no_staff=0x0010,  # no staff member was logged in
    late=0x0020,  # answered after the prompt had timed out (grace window)
    damaged=0x0040,  # the journal record was found damaged: a placeholder, fields unreliable
)

DEVICE_STATE = Enum(
    Int8ul,
    booting=0,
    idle=1,
    prompted=2,
    thanks=3,
    maintenance=4,
    fault=5,
    self_test=6,
)

FAULTS = Flags(
    Int16ul,
    stuck_key=0x0001,
    journal_full=0x0002,
    journal_error=0x0004,
    time_unsynced=0x0008,
    config_error=0x0010,
    watchdog_reset=0x0020,
    low_memory=0x0040,
)

RESULT_CODE = Enum(
    Int8ul,
    ok=0,
    bad_request=1,
    unsupported=2,
    busy=3,
    denied=4,
    failed=5,
    bad_value=6,
    not_found=7,
)

LOG_LEVEL = Enum(Int8ul, debug=0, info=1, warning=2, error=3)

REBOOT_MODE = Enum(Int8ul, normal=0, maintenance=1, bootloader=2)

HEADER_FLAGS = Flags(
    Int8ul,
    retransmit=0x01,  # this frame repeats one sent before (a rating re-sent after no ACK)
    response=0x02,  # this frame answers the request whose sequence is in its payload
)

HEADER = Struct(
    "version" / Int8ul,
    "flags" / HEADER_FLAGS,
    "type_id" / Int8ul,
    "seq" / Int16ul,
)
"""Every frame: header, payload, CRC-32 (little-endian, zlib polynomial) over header + payload,
all COBS-encoded and followed by one 0x00 delimiter."""

MAX_FRAME_BYTES: Final = 300
"""Upper bound of one encoded frame including its delimiter; longer spans are errors."""


# ---------------------------------------------------------------------------------------------
# The message catalogue. Type ids 0x01-0x3F: device to host; 0x40-0x7F: host to device.
MESSAGES: Final[tuple[Message, ...]] = (
    Message(
        0x01,
        "hello",
        "device",
        Struct(
            "protocol_version" / Int8ul,
            "schema_fingerprint" / Int32ul,
            "key_count" / Int8ul,
            "capabilities" / CAPABILITIES,
            "journal_capacity" / Int32ul,
            "journal_used" / Int32ul,
            "boot_count" / Int32ul,
            "uptime_ms" / Int32ul,
            "serial" / SERIAL,
            "firmware_version" / VERSION_TEXT,
            "board" / Text(16),
            "acked_seq" / Int32ul,
        ),
        "Sent by the keypad when the link comes up and in answer to host_hello.",
    ),
    Message(
        0x02,
        "rating",
        "device",
        Struct(
            "journal_seq" / Int32ul,
            "boot_id" / Int32ul,
            "uptime_ms" / Int32ul,
            "epoch_ms" / Maybe(Int64ul),
            "score" / Int8ul,
            "key_count" / Int8ul,
            "prompt_id" / Int32ul,
            "flags" / RATING_FLAGS,
            "staff_id" / STAFF_ID,
        ),
        "One journalled rating; re-sent until the host ACKs its journal sequence.",
    ),
    Message(
        0x03,
        "key_event",
        "device",
        Struct(
            "key" / Int8ul,
            "down" / Flag,
            "uptime_ms" / Int32ul,
            "bounces" / Int8ul,
        ),
        "A debounced key edge (diagnostics; only while key-event streaming is on).",
    ),
    Message(
        0x04,
        "status",
        "device",
        Struct(
            "state" / DEVICE_STATE,
            "faults" / FAULTS,
            "uptime_ms" / Int32ul,
            "journal_used" / Int32ul,
            "unacked" / Int32ul,
            "presses" / Int32ul,
            "unprompted" / Int32ul,
            "repeats" / Int32ul,
            "multi_key" / Int32ul,
            "stuck_keys" / Int8ul,
            "prompt_id" / Int32ul,
            "staff_id" / STAFF_ID,
            "acked_seq" / Int32ul,
        ),
        "Heartbeat: state, faults and counters; periodic and on change.",
    ),
    Message(
        0x05,
        "result",
        "device",
        Struct(
            "request_seq" / Int16ul,
            "code" / RESULT_CODE,
            "detail" / Text(48),
        ),
        "The outcome of a host command, naming the command frame's sequence.",
    ),
    Message(
        0x06,
        "config_value",
        "device",
        Struct(
            "request_seq" / Int16ul,
            "key" / CONFIG_KEY,
            "value" / CONFIG_VALUE,
        ),
        "One setting, in answer to get_config (all settings for an empty key, then a result).",
    ),
    Message(
        0x07,
        "log",
        "device",
        Struct(
            "level" / LOG_LEVEL,
            "uptime_ms" / Int32ul,
            "text" / Text(160),
        ),
        "A log line from the firmware.",
    ),
    Message(
        0x40,
        "host_hello",
        "host",
        Struct(
            "protocol_version" / Int8ul,
            "schema_fingerprint" / Int32ul,
            "software" / Text(32),
        ),
        "Sent by the host when it opens the link; the keypad answers with hello.",
    ),
    Message(
        0x41,
        "ack",
        "host",
        Struct("journal_seq" / Int32ul),
        "Every rating up to and including journal_seq is durably stored by the host.",
    ),
    Message(
        0x42,
        "time_sync",
        "host",
        Struct("epoch_ms" / Int64ul),
        "Wall-clock time (ms since 1970 UTC) at the moment the host sent this frame.",
    ),
    Message(
        0x43,
        "prompt",
        "host",
        Struct(
            "prompt_id" / Int32ul,
            "timeout_ms" / Int32ul,
            "staff_id" / STAFF_ID,
        ),
        "Arm the keypad: the first valid press answers this prompt.",
    ),
    Message(
        0x44,
        "cancel_prompt",
        "host",
        Struct("prompt_id" / Int32ul),
        "Disarm the prompt (0 cancels whichever prompt is armed).",
    ),
    Message(
        0x45,
        "login",
        "host",
        Struct("staff_id" / STAFF_ID, "display_name" / DISPLAY_NAME),
        "A staff member logged in at this window.",
    ),
    Message(
        0x46,
        "logout",
        "host",
        Struct("staff_id" / STAFF_ID),
        "The staff member logged out.",
    ),
    Message(
        0x47,
        "get_config",
        "host",
        Struct("key" / CONFIG_KEY),
        "Read one setting, or all of them for an empty key.",
    ),
    Message(
        0x48,
        "set_config",
        "host",
        Struct("key" / CONFIG_KEY, "value" / CONFIG_VALUE),
        "Change one setting; the keypad validates it and persists it in flash.",
    ),
    Message(
        0x49,
        "self_test",
        "host",
        Struct(),
        "Run the self-test (LEDs, buzzer, journal); the result's detail says what failed.",
    ),
    Message(
        0x4A,
        "reboot",
        "host",
        Struct("mode" / REBOOT_MODE),
        "Restart the keypad.",
    ),
    Message(
        0x4B,
        "key_events",
        "host",
        Struct("enabled" / Flag),
        "Turn streaming of debounced key edges on or off.",
    ),
)


def crc32(data: bytes) -> int:
    """The frame check: CRC-32 with the zlib polynomial."""
    return zlib.crc32(data) & 0xFFFFFFFF
