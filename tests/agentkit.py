"""A running agent with simulated keypads and its bridge on a free port, for the bridge tests."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ratepad
from ratepad.agent import Agent, AgentConfig

FAST = "debounce_ms=5&chord_ms=20&repeat_guard_ms=0&thanks_ms=200&status_ms=1000"


@contextlib.contextmanager
def running_agent(tmp_path: Path, *serials: str, **settings: Any) -> Iterator[Agent]:
    """``sim://SERIAL?FAST`` keypads, all connected before it yields; the simulator is reset
    before and after."""
    ratepad.sim.reset()
    cfg = AgentConfig(
        devices=tuple(f"sim://{s}?{FAST}" for s in serials),
        db=tmp_path / "r.db",
        listen=("127.0.0.1", 0),
        hello_check_s=0.5,
        **settings,
    )
    try:
        with Agent(cfg) as agent:
            end = time.monotonic() + 5
            while not all(w.connected for w in agent.workers):
                assert time.monotonic() < end, "keypads did not connect"
                time.sleep(0.01)
            yield agent
    finally:
        ratepad.sim.reset()
