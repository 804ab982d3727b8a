"""What every `ratepad` command shares: exit statuses, the usage error, argument types."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user (arguments, files, JSON): one line on stderr, exit status 2."""


class DeviceCommandError(Exception):
    """A keypad could not be reached or answered badly: one line, exit status 1."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one clear line (exit status 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}\n")


def one_line(text: str, limit: int = 1000) -> str:
    """``text`` fit for one line of stderr: line breaks and other control characters shown
    escaped (an argument may hold any), at most ``limit`` characters."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if math.isnan(value) or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number more than 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number more than 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number, 0 or more."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of 0 or more, got {text!r}")
    return value


def bounded_float(low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """argparse type: a finite number more than ``low`` and at most ``high``."""
    suffix = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        value = _number(text)
        if not low < value <= high:
            raise argparse.ArgumentTypeError(
                f"expected more than {low:g} and at most {high:g}{suffix}, got {text!r}"
            )
        return value

    return parse


def utf8_text(max_bytes: int, what: str = "text") -> Callable[[str], str]:
    """argparse type: text that is valid UTF-8 (the shell can pass any bytes) and at most
    ``max_bytes`` long once encoded."""

    def parse(text: str) -> str:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
            raise argparse.ArgumentTypeError(f"the {what} is not valid UTF-8") from None
        if size > max_bytes:
            raise argparse.ArgumentTypeError(
                f"the {what} is {size} bytes long, at most {max_bytes} are allowed"
            )
        return text

    return parse


MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 40  # u64 has 20; this leaves room for a clear range error from the codec


def load_json(text: str, what: str) -> Any:
    """Parse JSON given by the user, within limits: at most MAX_JSON_BYTES, nested at most
    MAX_JSON_DEPTH deep, integers of at most MAX_INT_DIGITS digits. UsageError otherwise."""
    if len(text) > MAX_JSON_BYTES:
        raise UsageError(f"{what} is longer than {MAX_JSON_BYTES} characters")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:  # the nesting, before the recursive parser sees it
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise UsageError(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise UsageError(f"{what} holds an integer longer than {MAX_INT_DIGITS} digits")
        return int(digits)

    def parse_float(digits: str) -> float:
        value = float(digits)
        if math.isinf(value):
            raise UsageError(f"{what} holds a number too large: {digits[:20]}")
        return value

    def parse_constant(name: str) -> float:
        raise UsageError(f"{what} holds {name}, which is not a JSON number")

    try:
        return json.loads(
            text, parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant
        )
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc.msg} at column {exc.colno}") from None
    except (RecursionError, ValueError) as exc:
        raise UsageError(f"{what} is not usable JSON: {exc}") from None
