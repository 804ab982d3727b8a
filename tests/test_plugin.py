"""The pytest plugin's fixtures: the customer gives scores, whatever the key order."""

from __future__ import annotations

import os
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


def test_an_engine_that_cannot_run_skips_its_tests_with_the_reason(tmp_path: Path) -> None:
    # the README's promise: without the npm package a micropython_engine test is skipped
    (tmp_path / "test_engine.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.micropython_engine\n"
        "def test_on_the_vm(ratepad_scenario):\n"
        "    raise AssertionError('ran although the VM is missing')\n"
    )
    env = {**os.environ, "RATEPAD_NODE_MODULES": str(tmp_path)}  # no npm package there
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # ours only (not locust's, say): quick to start
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "-p",
         "ratepad.testing.plugin", "test_engine.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "micropython engine cannot run" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
