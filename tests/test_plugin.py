"""The pytest plugin's fixtures: the customer gives scores, whatever the key order."""

from __future__ import annotations

import time
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


def test_every_fixture_has_a_docstring() -> None:
    # what `pytest --fixtures` shows: the docstring of each fixture function
    import ast
    import inspect

    import ratepad.testing.plugin as plugin

    tree = ast.parse(inspect.getsource(plugin))
    fixtures = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any("fixture" in ast.unparse(d) for d in node.decorator_list)
    ]
    assert {f.name for f in fixtures} >= {"ratepad_keypad", "ratepad_customer", "ratepad_fleet",
                                         "ratepad_scenario", "ratepad_device_id"}  # fmt: skip
    for f in fixtures:
        assert ast.get_docstring(f), f"fixture {f.name} has no docstring"
