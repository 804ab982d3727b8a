"""The ``ratepad`` command line (see :mod:`ratepad.cli.main` for the command table)."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
