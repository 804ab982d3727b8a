"""Keypads in your own tests: `pytest` in this folder (the ratepad plugin is installed with
ratepad; `pip install 'ratepad[testing]'` brings pytest)."""

from pathlib import Path
from typing import Any

import ratepad

HERE = Path(__file__).parent


def test_a_prompted_rating(ratepad_keypad: ratepad.Keypad, ratepad_customer: Any) -> None:
    handle = ratepad_keypad.start_prompt("S001", timeout=5)
    ratepad_customer.press(4)
    rating = handle.wait(timeout=5)
    assert rating.score == 4 and rating.prompted


def test_the_scenario_keeps_every_rating(ratepad_scenario: Any) -> None:
    run = ratepad_scenario(HERE / "scenario.json")
    assert [r["score"] for r in run.ratings] == [5, 2, 4]
