"""Every scenario of the repository gives, on each engine, the output it gave when it was recorded
(``tests/scenarios/recorded.json``, made by ``python tests/scenario_outputs.py record``): the
host's driver and the runner may change shape, never one byte of what an engine outputs.

The cpython engine runs every recorded scenario; the micropython engine the short ones (the long
soaks are compared on cpython, and the engines with each other by ``test_scenario.py``); the
rp2040 engine the ones recorded for it, when its image is at hand.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from scenario_outputs import RECORDED, run

from ratepad.sim.rp2040.harness import IMAGE_ENV

RECORDS: dict[str, Any] = json.loads(RECORDED.read_text(encoding="utf-8"))["scenarios"]
MICROPYTHON_MAX_EVENTS = 10  # longer ones: on cpython only (their engines agree, see above)


def _cases() -> list[Any]:
    cases = []
    for name, entry in RECORDS.items():
        for engine in entry["outputs"]:
            if "error" in entry["outputs"][engine]:
                continue
            marks: list[Any] = []
            long = len(entry["scenario"]["events"]) > MICROPYTHON_MAX_EVENTS
            if engine == "micropython" and long:
                continue
            if engine == "rp2040":
                marks = [
                    pytest.mark.skipif(not os.environ.get(IMAGE_ENV), reason=f"${IMAGE_ENV} unset"),
                ]
            cases.append(pytest.param(name, engine, id=f"{engine}:{name}", marks=marks))
    return cases


@pytest.mark.parametrize(("name", "engine"), _cases())
def test_an_engine_gives_the_recorded_output(name: str, engine: str) -> None:
    entry = RECORDS[name]
    expected = entry["outputs"][engine]
    got = run(entry["scenario"], engine)
    if "output" in expected:
        assert got.get("output") == expected["output"]
    assert got["output_sha256"] == expected["output_sha256"]
    assert got["stats"] == expected["stats"]
    assert got["confirmed"] == expected["confirmed"]
    assert got["counters"] == expected["counters"]


def test_every_scenario_file_is_recorded() -> None:
    from scenario_outputs import repository_scenarios

    assert set(repository_scenarios()) <= set(RECORDS)
