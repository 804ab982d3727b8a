"""The one exception tree of ratepad.

``RatepadError`` is the root. Protocol errors separate the caller's misuse (``LocalProtocolError``)
from bad bytes sent by a device (``RemoteProtocolError``); transport errors say what happened to
the link; ``RatepadTimeout`` is also a builtin ``TimeoutError``; ``ToolError`` roots the firmware
tools' errors. The CLI turns the caller's errors into exit status 2 and the device's into 1.
"""

from __future__ import annotations

from typing import Protocol


class CommandOutcome(Protocol):
    """What an error needs of a keypad's answer (``events.CommandResult``), so the error tree
    stays below the events."""

    @property
    def code(self) -> int: ...

    @property
    def detail(self) -> str: ...

    @property
    def ok(self) -> bool: ...


class RatepadError(Exception):
    """Root of every error ratepad raises on purpose."""


class InputError(RatepadError):
    """A file or value given by the user that cannot be used: a configuration, a store that is
    not one (the CLI exits 2)."""


class ProtocolError(RatepadError):
    """The wire protocol was not followed."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol does not allow (a bug on this side)."""


class BadURLError(LocalProtocolError, ValueError):
    """A keypad URL that cannot be used: an unknown scheme, a bad host or port, text that is
    not UTF-8, a keypad setting the firmware would refuse."""


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


class EndOfCapture(RatepadError, EOFError):
    """A replayed capture has ended: not a lost link, nothing to reconnect to."""


class RatepadTimeout(RatepadError, TimeoutError):
    """An operation did not complete in time."""


class EncodeError(LocalProtocolError, ValueError):
    """A message cannot be encoded: a missing or unknown field, or a value out of its range."""


class CommandError(RatepadError):
    """The keypad refused or failed a command; ``result`` (a ``CommandResult``) says how."""

    def __init__(self, what: str, result: CommandOutcome) -> None:
        code = getattr(result.code, "name", result.code)
        code = code.lower() if isinstance(code, str) else code
        super().__init__(f"{what}: {code}" + (f" ({result.detail})" if result.detail else ""))
        self.result = result


class UnknownDeviceError(RatepadError, LookupError):
    """No configured keypad has this serial (the agent and its bridge)."""


class DeviceUnavailableError(TransportError):
    """The keypad is configured but not connected now (the agent and its bridge)."""


class ToolError(RatepadError):
    """A firmware tool failed: building, flashing, the MicroPython VM (see ratepad.tools)."""


class PromptEndedError(RatepadError):
    """A prompt ended without a rating: ``state`` is ``cancelled`` or ``superseded`` (another
    prompt was armed on the same keypad)."""

    def __init__(self, prompt_id: int, state: str) -> None:
        super().__init__(f"prompt {prompt_id} {state}")
        self.prompt_id = prompt_id
        self.state = state
