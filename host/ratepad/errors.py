"""The one exception tree of ratepad.

``RatepadError`` is the root. Protocol errors separate the caller's misuse (``LocalProtocolError``)
from bad bytes sent by a device (``RemoteProtocolError``); transport errors say what happened to
the link; ``RatepadTimeout`` is also a builtin ``TimeoutError``.
"""

from __future__ import annotations


class RatepadError(Exception):
    """Root of every error ratepad raises on purpose."""


class ProtocolError(RatepadError):
    """The wire protocol was not followed."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol does not allow (a bug on this side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that do not form a valid frame or message."""


class FrameError(RemoteProtocolError, ValueError):
    """One frame could not be decoded.

    ``kind`` is one of ``cobs`` (bad byte stuffing), ``short`` (shorter than header and CRC),
    ``crc`` (CRC-32 mismatch), ``version`` (unsupported protocol version), ``payload`` (a field
    value that cannot be decoded), ``too_long`` (no delimiter within the maximum frame length) or
    ``truncated`` (the input ended inside a frame).
    """

    KINDS = frozenset({"cobs", "short", "crc", "version", "payload", "too_long", "truncated"})

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class IncompatiblePeerError(RemoteProtocolError):
    """The peer speaks another protocol version or an incompatible schema."""


class MetricsError(RatepadError, ValueError):
    """An argument lies outside a statistic's domain (see ``ratepad.metrics``)."""


class SurveyFormatError(RatepadError, ValueError):
    """A questionnaire score file cannot be read (see ``ratepad.surveys``)."""


class TransportError(RatepadError):
    """The link to a keypad failed."""


class DeviceNotFoundError(TransportError):
    """No keypad matches the request."""


class DevicePermissionError(TransportError, PermissionError):
    """The keypad exists but this user may not open it (see `ratepad doctor`)."""


class DeviceBusyError(TransportError):
    """Another program holds the keypad."""


class DisconnectedError(TransportError, ConnectionError):
    """The keypad went away."""


class RatepadTimeout(RatepadError, TimeoutError):
    """An operation did not complete in time."""
