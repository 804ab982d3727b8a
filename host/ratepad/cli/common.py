"""What every `ratepad` command shares: exit statuses, the usage error, argument types."""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

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
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


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
