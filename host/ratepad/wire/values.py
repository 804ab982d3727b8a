# DO NOT EDIT: generated from protocol/ratepad_protocol/schema.py by `make generate`.
# Protocol version 1, schema fingerprint 0xe7202dbd.
"""Values of the ratepad wire protocol's enums and flag sets (generated from the
schema, protocol/ratepad_protocol/schema.py); the codec re-exports them.
"""

from __future__ import annotations

import enum


class Capabilities(enum.IntFlag):
    """Wire values of Capabilities; names on the wire are the lower-case ones."""

    STATUS_LED = 0x1
    BUZZER = 0x2
    KEY_EVENTS = 0x4
    SELF_TEST = 0x8
    MAINTENANCE = 0x10
    TIME_SYNC = 0x20


class RatingFlags(enum.IntFlag):
    """Wire values of RatingFlags; names on the wire are the lower-case ones."""

    UNPROMPTED = 0x1
    REPEAT = 0x2
    MULTI_KEY = 0x4
    STUCK_KEY = 0x8
    NO_STAFF = 0x10
    LATE = 0x20
    DAMAGED = 0x40


class DeviceState(enum.IntEnum):
    """Wire values of DeviceState; names on the wire are the lower-case ones."""

    BOOTING = 0
    IDLE = 1
    PROMPTED = 2
    THANKS = 3
    MAINTENANCE = 4
    FAULT = 5
    SELF_TEST = 6


class Faults(enum.IntFlag):
    """Wire values of Faults; names on the wire are the lower-case ones."""

    STUCK_KEY = 0x1
    JOURNAL_FULL = 0x2
    JOURNAL_ERROR = 0x4
    TIME_UNSYNCED = 0x8
    CONFIG_ERROR = 0x10
    WATCHDOG_RESET = 0x20
    LOW_MEMORY = 0x40


class ResultCode(enum.IntEnum):
    """Wire values of ResultCode; names on the wire are the lower-case ones."""

    OK = 0
    BAD_REQUEST = 1
    UNSUPPORTED = 2
    BUSY = 3
    DENIED = 4
    FAILED = 5
    BAD_VALUE = 6
    NOT_FOUND = 7


class LogLevel(enum.IntEnum):
    """Wire values of LogLevel; names on the wire are the lower-case ones."""

    DEBUG = 0
    INFO = 1
    WARNING = 2
    ERROR = 3


class RebootMode(enum.IntEnum):
    """Wire values of RebootMode; names on the wire are the lower-case ones."""

    NORMAL = 0
    MAINTENANCE = 1
    BOOTLOADER = 2
