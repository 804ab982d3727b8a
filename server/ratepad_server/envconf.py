"""Numbers from the environment (``RATEPAD_*``), each with its range: a bad value stops the
server before it starts with one line naming the variable (``ratepad server``: exit 2), not a
traceback, and never becomes a limit nobody meant (a negative export cap, a zero timeout)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """A ``RATEPAD_*`` setting that cannot be used; the message is the one line to print."""


def number(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails too
        raise ConfigError(f"{name}={raw!r}: expected a number from {_show(low)} to {_show(high)}")
    return value


def _show(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def integer(name: str, default: int, low: int, high: int) -> int:
    value = number(name, default, low, high)
    if value != int(value):
        raise ConfigError(f"{name}={os.environ[name]!r}: expected a whole number")
    return int(value)


def parsed(name: str, default: str, parse: Callable[[str], T], expected: str) -> T:
    """``parse`` of the variable's text (``default`` when unset); its failure is one line."""
    raw = os.environ.get(name, "").strip() or default
    try:
        return parse(raw)
    except (ValueError, KeyError, LookupError) as exc:
        raise ConfigError(f"{name}={raw!r}: expected {expected}") from exc
