"""The pytest plugin's fixtures: the customer gives scores, whatever the key order."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ratepad


def test_customer_presses_by_score_with_a_custom_key_order(
    ratepad_keypad: ratepad.Keypad, ratepad_customer: Any
) -> None:
    ratepad_keypad.set_config("key_order", "54321")
    handle = ratepad_keypad.start_prompt("S1", timeout=5)
    ratepad_customer.press(5)  # the leftmost key on this keypad
    assert handle.wait().score == 5
    time.sleep(0.4)  # past the thanks display
    handle = ratepad_keypad.start_prompt("S1", timeout=5)
    ratepad_customer.press_key(5)  # the rightmost key gives 1
    assert handle.wait().score == 1


def test_every_fixture_has_a_docstring(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    text = out.stdout
    for name in ("ratepad_keypad", "ratepad_customer", "ratepad_fleet", "ratepad_scenario",
                 "ratepad_device_id"):  # fmt: skip
        assert name in text
        block = text.split(name, 1)[1].split("\n", 2)
        assert "no docstring available" not in block[1], name
