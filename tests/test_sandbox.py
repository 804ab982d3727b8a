"""The sandbox's simulated customers: one press per prompt, never one unasked."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ratepad
from ratepad.agent.sandbox import FAST, Customer
from ratepad.events import Rating


def _tick_for(customer: Customer, seconds: float, until: Callable[[], bool]) -> None:
    """Let the customer watch its keypad (on the wall clock, as in the sandbox) for at most
    ``seconds``, or until ``until()``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        customer.tick(time.monotonic())
        time.sleep(0.02)


def test_ratings_equal_answered_prompts() -> None:
    query = "&".join(f"{k}={v}" for k, v in FAST.items())
    keypad = ratepad.open(f"sim://SBT1?{query}")
    try:
        customer = Customer("SBT1", random.Random(1), (0.0, 0.0), 0.0, (1, 1, 1, 1, 1))
        prompts = 3
        for _ in range(prompts):
            handle = keypad.start_prompt("S1", timeout=10)
            _tick_for(customer, 5.0, lambda h=handle: h.answered)
            keypad.confirm(handle.wait(1))
            # after the answer, past the customer's 0.5 s second look: no press of its own
            _tick_for(customer, 1.2, lambda: False)
        events = keypad.events(timeout=0.5)
        unprompted = [e for e in events if isinstance(e, Rating) and not e.prompted]
        assert unprompted == [] and customer.answered == prompts
    finally:
        keypad.close()
        ratepad.sim.remove("SBT1")


def test_the_sandbox_keeps_its_token_in_the_file_given(tmp_path: Path) -> None:
    token_file = tmp_path / "sandbox.token"
    token_file.write_text("a-token-kept-between-runs\n")
    token_file.chmod(0o600)
    done = subprocess.run(
        [sys.executable, "-m", "ratepad", "sandbox", "--listen", "127.0.0.1:0", "--seconds",
         "0.5", "--keypads", "1", "--token", str(token_file)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "#token=a-token-kept-between-runs" in done.stdout
    assert "new on every run" not in done.stdout
