"""Scenario files and the virtual-time runner behind ``ratepad sim SCENARIO``."""

from __future__ import annotations

from .model import Scenario, ScenarioError, load, parse
from .runner import EPOCH0, Result, Runner, run

__all__ = ["EPOCH0", "Result", "Runner", "Scenario", "ScenarioError", "load", "parse", "run"]
