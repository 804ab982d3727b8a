"""Runtime helpers of the generated host codec (``ratepad.wire.codec``); written by hand."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from cobs import cobs

from ..errors import EncodeError, FrameError

__all__ = ["EncodeError", "FrameError", "plain_value"]

E = TypeVar("E", bound=enum.IntEnum)
F = TypeVar("F", bound=enum.IntFlag)


class _Short(Exception):
    """A payload ended inside a field (retried with the evolution zero-fill)."""


class _PayloadError(Exception):
    """A field value the schema does not allow."""


def _text_too_long(name: str, n: int, size: int, left: int) -> _PayloadError:
    """A text field's length byte above its schema size (and maybe past the payload too)."""
    past = f", and only {max(0, left)} bytes follow in the payload" if n > left else ""
    return _PayloadError(f"{name}: length byte {n}, longer than {size} bytes{past}")


class _EnumCache(dict[int, Any]):
    """value -> enum member, or the plain int for a value this schema does not know."""

    def __init__(self, cls: type[enum.IntEnum]) -> None:
        super().__init__({int(m): m for m in cls})

    def __missing__(self, value: int) -> int:
        return value


class _FlagsCache(dict[int, Any]):
    """value -> IntFlag (unknown bits kept), built once per distinct value."""

    def __init__(self, cls: type[enum.IntFlag]) -> None:
        super().__init__()
        self._cls = cls

    def __missing__(self, value: int) -> enum.IntFlag:
        flag = self._cls(value)
        self[value] = flag
        return flag


def _cobs_decode(data: bytes) -> bytes:
    try:
        return bytes(cobs.decode(data))
    except cobs.DecodeError as exc:
        raise FrameError("cobs", str(exc)) from None


def _cobs_encode(data: bytes) -> bytes:
    return bytes(cobs.encode(data))


def _maybe(value: int | None, none_value: int) -> int:
    if value is None:
        return none_value
    if value == none_value:
        raise EncodeError(f"{value} is reserved for none")
    return value


def _text(value: str, max_bytes: int, where: str) -> bytes:
    data = value.encode()
    if len(data) > max_bytes:
        raise EncodeError(f"{where}: longer than {max_bytes} bytes")
    return bytes((len(data),)) + data


def plain_value(value: Any) -> Any:
    """A field value as the vectors spell it: enum names, flag name lists, plain ints."""
    if isinstance(value, enum.IntFlag):
        names = []
        for bit in range(int(value).bit_length()):
            if int(value) >> bit & 1:
                try:
                    member = type(value)(1 << bit)
                    names.append(member.name.lower() if member.name else f"bit{bit}")
                except ValueError:
                    names.append(f"bit{bit}")
        return names
    if isinstance(value, enum.IntEnum):
        return value.name.lower()
    return value


def _enum_in(cls: type[E], value: Any) -> E | int:
    if isinstance(value, str):
        try:
            return cls[value.upper()]
        except KeyError:
            raise EncodeError(f"{value!r} is not a {cls.__name__}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return cls(value)
        except ValueError:
            return value
    raise EncodeError(f"{value!r} is not a {cls.__name__}")


def _flags_in(cls: type[F], value: Any) -> F:
    if isinstance(value, int) and not isinstance(value, bool):
        return cls(value)
    if not isinstance(value, list | tuple):
        raise EncodeError(f"{cls.__name__} must be a list of names")
    bits = 0
    for name in value:
        if not isinstance(name, str):
            raise EncodeError(f"{cls.__name__} must be a list of names")
        if name.startswith("bit") and name[3:].isdigit():
            bits |= 1 << int(name[3:])
            continue
        try:
            bits |= cls[name.upper()]
        except KeyError:
            raise EncodeError(f"{name!r} is not a {cls.__name__} flag") from None
    return cls(bits)


def _int_in(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"{value!r} is not an integer")
    return value


def _maybe_in(value: Any) -> int | None:
    return None if value is None else _int_in(value)


def _bool_in(value: Any) -> bool:
    if not isinstance(value, bool):
        raise EncodeError(f"{value!r} is not true or false")
    return value


def _str_in(value: Any) -> str:
    if not isinstance(value, str):
        raise EncodeError(f"{value!r} is not a string")
    return value
