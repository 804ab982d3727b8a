"""The driver, agent and bridge tests wait for what they wait for, not for a while: the rules run
on virtual time (``test_driver_core.py``, the scenario runner), and the facades' tests wait for an
event, an answer or a thread. This test lists every sleep and every wall-clock timing assertion
left in those files and fails on a new one; the few that stay are allowed below, each with why.

A sleep: a call of ``time.sleep``/``asyncio.sleep`` (``asyncio.sleep(0)``, a yield to the loop,
is not one). A timing assertion: an ``assert`` that reads the wall clock (``time.monotonic``,
``time.perf_counter``, ``time.time``) or a duration measured with it (``elapsed``, ``*_s``).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
FILES = (
    "test_driver*.py",
    "test_keypad*.py",
    "test_aio*.py",
    "test_record_replay.py",
    "test_runner*.py",
    "test_agent*.py",
    "test_browser_bridge.py",
    "agentkit.py",
)
CLOCKS = {"monotonic", "perf_counter", "time"}

SIMULATED_KEYPAD = "sim:// keypads run the firmware on the wall clock in a thread"
SUBPROCESS = "a real process (an agent, a recorder) on the wall clock, waited for"
NOT_YET = "not moved to virtual time yet (the agent's tests, being reworked with its store)"

# (file, kind) -> (how many at most, why they stay)
ALLOWED: dict[tuple[str, str], tuple[int, str]] = {
    ("test_driver.py", "sleep"): (1, SIMULATED_KEYPAD + ": presses after the thanks display"),
    ("test_aio.py", "sleep"): (1, SIMULATED_KEYPAD + ": a press after the thanks display"),
    ("test_record_replay.py", "sleep"): (2, SUBPROCESS + ": `ratepad record` until Ctrl-C"),
    ("test_record_replay.py", "timing"): (1, "wall-clock capture stamps are the wall clock's"),
    ("test_driver.py", "timing"): (1, "a rating's time is the host's wall clock: checked near it"),
    ("agentkit.py", "sleep"): (1, NOT_YET),
    ("agentkit.py", "timing"): (1, NOT_YET),
    ("test_agent.py", "sleep"): (8, NOT_YET),
    ("test_agent_bridge.py", "sleep"): (8, NOT_YET),
    ("test_agent_bridge.py", "timing"): (4, NOT_YET),
    ("test_agent_bridge_http.py", "sleep"): (14, NOT_YET),
    ("test_agent_bridge_http.py", "timing"): (5, NOT_YET),
    ("test_agent_bridge_streams.py", "sleep"): (4, NOT_YET),
    ("test_agent_bridge_streams.py", "timing"): (3, NOT_YET),
    ("test_agent_bridge_ws.py", "sleep"): (3, NOT_YET),
    ("test_agent_kill.py", "sleep"): (3, SUBPROCESS),
    ("test_agent_kill.py", "timing"): (1, SUBPROCESS),
    ("test_agent_poison.py", "sleep"): (1, NOT_YET),
}


def _is_sleep(node: ast.Call) -> bool:
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    if name != "sleep":
        return False
    arg = node.args[0] if node.args else None
    return not (isinstance(arg, ast.Constant) and arg.value == 0)


def _reads_the_clock(node: ast.Assert) -> bool:
    for sub in ast.walk(node.test):
        if (
            isinstance(sub, ast.Attribute)
            and sub.attr in CLOCKS
            and isinstance(sub.value, ast.Name)
            and sub.value.id == "time"
        ):
            return True
        if isinstance(sub, ast.Name) and (sub.id == "elapsed" or sub.id.endswith("_elapsed")):
            return True
    return False


def found() -> dict[tuple[str, str], list[int]]:
    """(file, "sleep" | "timing") -> the lines."""
    out: dict[tuple[str, str], list[int]] = {}
    for pattern in FILES:
        for path in sorted(TESTS.glob(pattern)):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and _is_sleep(node):
                    out.setdefault((path.name, "sleep"), []).append(node.lineno)
                elif isinstance(node, ast.Assert) and _reads_the_clock(node):
                    out.setdefault((path.name, "timing"), []).append(node.lineno)
    return out


def test_no_new_sleeps_or_timing_assertions() -> None:
    over = {
        f"{name}:{','.join(map(str, lines))} ({kind})": ALLOWED.get((name, kind), (0, ""))[0]
        for (name, kind), lines in found().items()
        if len(lines) > ALLOWED.get((name, kind), (0, ""))[0]
    }
    assert not over, f"sleeps or wall-clock timing assertions beyond those allowed: {over}"


def test_the_finder_sees_a_sleep_and_a_timing_assertion(tmp_path: Path) -> None:
    source = (
        "import asyncio, time\n"
        "def test_x():\n"
        "    start = time.monotonic()\n"
        "    time.sleep(0.1)\n"
        "    asyncio.sleep(0)\n"
        "    assert time.monotonic() - start < 1\n"
    )
    tree = ast.parse(source)
    sleeps = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_sleep(n)]
    timings = [
        n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert) and _reads_the_clock(n)
    ]
    assert sleeps == [4] and timings == [6]
