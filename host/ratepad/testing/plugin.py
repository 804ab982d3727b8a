"""pytest plugin (entry point ``pytest11``): simulated keypads for your own tests.

Fixtures:

* ``ratepad_keypad`` — a connected ``ratepad.Keypad`` on a fresh simulated keypad (the real
  firmware core), or on real hardware with ``--ratepad-device=URL``;
* ``ratepad_customer`` — the customer at that simulated keypad: ``press(score)`` (by score,
  whatever the ``key_order``), ``press_key(n)``;
* ``ratepad_fleet`` — a factory: ``ratepad_fleet(n)`` gives n connected simulated keypads;
* ``ratepad_scenario`` — a factory: ``ratepad_scenario(path_or_dict, engine=...)`` runs a
  scenario file and returns its result (``.ratings``, ``.key_edges``, ``.stats``).

Marker ``@pytest.mark.micropython_engine`` runs the scenarios of a test on the MicroPython VM
(Node.js and the npm package), ``@pytest.mark.rp2040_engine`` on the MicroPython Pico image in
an emulated RP2040: where the engine cannot run, the test is skipped with the reason.
Tests that need a simulated keypad are skipped when ``--ratepad-device`` points at hardware and
they use ``ratepad_customer``.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import ratepad

FAST = {"debounce_ms": 5, "chord_ms": 20, "repeat_guard_ms": 0, "thanks_ms": 200}
_ids = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ratepad")
    group.addoption(
        "--ratepad-device",
        metavar="URL",
        default=None,
        help="run ratepad fixtures against this keypad instead of a simulated one",
    )


def _engine_markers() -> dict[str, str]:
    """Marker name -> engine, for every engine but the default (the first)."""
    from ..scenario.timeline import ENGINES

    return {f"{engine}_engine": engine for engine in ENGINES[1:]}


def pytest_configure(config: pytest.Config) -> None:
    for marker, engine in _engine_markers().items():
        config.addinivalue_line("markers", f"{marker}: run this test's scenarios on {engine}")


@functools.cache
def engine_missing(engine: str) -> str | None:
    """Why ``engine`` cannot run here (one line), or None; asked once per session."""
    if engine == "micropython":
        from ..tools.mpvm import missing

        return missing()
    if engine == "rp2040":
        from ..sim.rp2040 import missing as rp2040_missing

        return rp2040_missing()
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, with the reason, a test marked for an engine that cannot run here."""
    for marker, engine in _engine_markers().items():
        if item.get_closest_marker(marker) is not None:
            reason = engine_missing(engine)
            if reason is not None:
                pytest.skip(reason)


class Customer:
    """The person at a simulated keypad."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id

    def press(self, score: int, hold_ms: int = 120, bounce_ms: int = 0) -> None:
        """Give ``score``: press the key that the keypad's ``key_order`` maps to it."""
        sim = ratepad.sim.get(self.device_id)
        sim.press(sim.keypad.key_for_score(score), hold_ms=hold_ms, bounce_ms=bounce_ms)

    def press_key(self, key: int, hold_ms: int = 120, bounce_ms: int = 0) -> None:
        """Press key number ``key`` (1-based, left to right), whatever score it gives."""
        ratepad.sim.get(self.device_id).press(key, hold_ms=hold_ms, bounce_ms=bounce_ms)

    @property
    def unacked(self) -> int:
        """Ratings the keypad still holds (not yet ACKed by a host)."""
        unacked: int = ratepad.sim.get(self.device_id).keypad.core.journal.unacked()
        return unacked


def _sim_url(device_id: str, settings: dict[str, Any]) -> str:
    query = "&".join(f"{k}={v}" for k, v in settings.items())
    return f"sim://{device_id}" + (f"?{query}" if query else "")


@pytest.fixture
def ratepad_device_id() -> Iterator[str]:
    """A fresh simulated keypad id (``PT1``, ``PT2``...), removed after the test."""
    device_id = f"PT{next(_ids)}"
    yield device_id
    ratepad.sim.remove(device_id)


@pytest.fixture
def ratepad_keypad(request: pytest.FixtureRequest, ratepad_device_id: str) -> Iterator[Any]:
    """A connected ``ratepad.Keypad`` on a fresh simulated keypad (fast debounce and thanks
    settings), or on the keypad of ``--ratepad-device=URL``; closed after the test."""
    url = request.config.getoption("--ratepad-device") or _sim_url(ratepad_device_id, FAST)
    keypad = ratepad.open(url)
    try:
        yield keypad
    finally:
        keypad.close()


@pytest.fixture
def ratepad_customer(request: pytest.FixtureRequest, ratepad_device_id: str) -> Customer:
    """The customer at ``ratepad_keypad``: ``press(score)`` gives a score (whatever the
    keypad's ``key_order``), ``press_key(n)`` presses a key, ``unacked`` counts held ratings.
    Skipped with ``--ratepad-device`` (a real keypad needs a real customer)."""
    if request.config.getoption("--ratepad-device"):
        pytest.skip("a real keypad needs a real customer")
    return Customer(ratepad_device_id)


@pytest.fixture
def ratepad_fleet() -> Iterator[Callable[..., list[Any]]]:
    """A factory: ``ratepad_fleet(n, **settings)`` opens n fresh simulated keypads and returns
    their connected ``Keypad`` objects (closed and removed after the test)."""
    opened: list[tuple[str, Any]] = []

    def make(n: int, **settings: Any) -> list[Any]:
        keypads = []
        for _ in range(n):
            device_id = f"PT{next(_ids)}"
            kp = ratepad.open(_sim_url(device_id, {**FAST, **settings}))
            opened.append((device_id, kp))
            keypads.append(kp)
        return keypads

    yield make
    for device_id, kp in opened:
        kp.close()
        ratepad.sim.remove(device_id)


@pytest.fixture
def ratepad_scenario(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """A factory: ``ratepad_scenario(path_or_dict, engine=None)`` runs a scenario on the
    virtual clock and returns its result (``.ratings``, ``.key_edges``, ``.stats``); the engine
    is the one the test's ``<engine>_engine`` marker names, CPython otherwise."""
    from ..scenario import Runner, load, parse
    from ..scenario.timeline import ENGINES

    marked = [e for m, e in _engine_markers().items() if request.node.get_closest_marker(m)]
    default_engine = marked[0] if marked else ENGINES[0]

    def run(source: str | Path | dict[str, Any], engine: str | None = None) -> Any:
        if isinstance(source, dict):
            scenario = parse(json.loads(json.dumps(source)))
        else:
            scenario = load(source)
        return Runner(scenario, engine=engine or default_engine).run()

    return run
