"""Suites: many scenario files run, each checked against its ``expect`` section.

``collect`` finds the scenario files of the paths given (folders: every ``*.json`` and
``*.toml`` in them, sorted); ``load_each`` loads them, a file that is not a valid scenario
becoming an outcome with its error (the suite goes on without it); ``run_suite`` runs them
(``jobs`` processes; results in file order whatever the number of processes) and ``junit_xml``
writes the outcome as JUnit XML (an invalid file is a test case in error).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import Scenario, ScenarioError, load

__all__ = ["Outcome", "collect", "junit_xml", "load_each", "run_suite", "suite_report"]

SUFFIXES = (".json", ".toml")


@dataclass
class Outcome:
    """What one scenario of a suite gave."""

    name: str
    source: str
    failures: list[str]
    ratings: int
    seconds: float
    keypads: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    latency_ms: list[int] = field(default_factory=list)
    error: str | None = None
    """Why the scenario could not run (an invalid file); None if it ran."""

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None

    @classmethod
    def invalid(cls, path: Path, error: str) -> Outcome:
        return cls(path.stem, str(path), [], 0, 0.0, error=error)


def collect(paths: Iterable[str]) -> list[Path]:
    """The scenario files named by ``paths`` (files as given, folders searched)."""
    out: list[Path] = []
    for text in paths:
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in SUFFIXES and f.is_file())
            if not found:
                raise ScenarioError(f"{text}: no scenario files (*.json, *.toml) in this folder")
            out.extend(found)
        else:
            out.append(p)
    return out


def run_one(scenario: Scenario, engine: str) -> Outcome:
    """Run one scenario and check its expectations."""
    from .expect import check
    from .report import keypad_summary
    from .runner import Runner

    started = time.perf_counter()
    result = Runner(scenario, engine=engine).run()
    failures = check(scenario, result)
    keypads = [
        keypad_summary(d.id, result, prompts(scenario, d.id), d.keys) for d in scenario.devices
    ]
    return Outcome(
        scenario.name,
        scenario.source,
        failures,
        len(result.ratings),
        round(time.perf_counter() - started, 3),
        keypads,
        dict(result.stats),
        result.latency_ms,
    )


def prompts(scenario: Scenario, device: str) -> int:
    """The prompts the scenario issues to ``device`` (its ``prompt`` events)."""
    return sum(1 for e in scenario.events if e.do == "prompt" and e.device == device)


def _run(task: tuple[Scenario, str]) -> Outcome:
    return run_one(*task)


def run_suite(
    scenarios: list[Scenario | Outcome],
    engine: str = "cpython",
    jobs: int = 1,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run every scenario (in ``jobs`` processes); outcomes in the order given. An Outcome
    among them (an invalid file, see ``load_each``) is passed on as it is."""
    runnable = [s for s in scenarios if isinstance(s, Scenario)]
    if jobs <= 1 or len(runnable) < 2:
        ran: Iterable[Outcome] = (run_one(s, engine) for s in runnable)
        return _in_order(scenarios, ran, progress)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return _in_order(scenarios, pool.map(_run, [(s, engine) for s in runnable]), progress)


def _in_order(
    items: list[Scenario | Outcome],
    ran: Iterable[Outcome],
    progress: Callable[[Outcome], None] | None,
) -> list[Outcome]:
    """The outcomes of ``items``: the runnable ones from ``ran`` (lazily, in order)."""
    outcomes: list[Outcome] = []
    results = iter(ran)
    for item in items:
        outcomes.append(item if isinstance(item, Outcome) else next(results))
        if progress is not None:
            progress(outcomes[-1])
    return outcomes


def junit_xml(outcomes: list[Outcome], suite: str = "ratepad sim") -> bytes:
    """The outcomes as a JUnit XML document (one testsuite, one testcase per scenario)."""
    errors = sum(1 for o in outcomes if o.error is not None)
    failed = sum(1 for o in outcomes if not o.passed) - errors
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(outcomes)),
        failures=str(failed),
        errors=str(errors),
        skipped="0",
        time=f"{sum(o.seconds for o in outcomes):.3f}",
    )
    for o in outcomes:
        case = ET.SubElement(
            root, "testcase", classname="ratepad.scenario", name=o.name, time=f"{o.seconds:.3f}"
        )
        case.set("file", o.source)
        if o.error is not None:
            error = ET.SubElement(case, "error", message=o.error, type="invalid scenario")
            error.text = o.error
        elif not o.passed:
            failure = ET.SubElement(case, "failure", message=o.failures[0], type="expectation")
            failure.text = "\n".join(o.failures)
        out = ET.SubElement(case, "system-out")
        out.text = f"{o.ratings} ratings stored"
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def suite_report(outcomes: list[Outcome]) -> dict[str, Any]:
    """The suite's report (``report.build``) with a pass/fail line per scenario."""
    from .report import build

    keypads = []
    stats: dict[str, int] = {}
    latency: list[int] = []
    for o in outcomes:
        for k in o.keypads:
            keypads.append({**k, "device": f"{o.name}/{k['device']}"})
        for name, v in o.stats.items():
            stats[name] = stats.get(name, 0) + v
        latency.extend(o.latency_ms)
    passed = sum(o.passed for o in outcomes)
    return build(
        keypads,
        stats,
        latency,
        f"Suite of {len(outcomes)} scenarios: {passed} passed, {len(outcomes) - passed} failed",
        {
            "scenarios": [
                {
                    "name": o.name,
                    "file": o.source,
                    "passed": o.passed,
                    "failures": o.failures if o.error is None else [o.error],
                    "ratings": o.ratings,
                }
                for o in outcomes
            ]
        },
    )


def load_all(paths: list[Path]) -> list[Scenario]:
    """Every scenario, loaded and checked before any runs (a bad file stops them all)."""
    return [load(p) for p in paths]


def load_each(paths: list[Path]) -> list[Scenario | Outcome]:
    """Every scenario loaded and checked before any runs; a file that is not a valid scenario
    is an Outcome with its error in its place, and the others run."""
    items: list[Scenario | Outcome] = []
    for path in paths:
        try:
            items.append(load(path))
        except ScenarioError as exc:
            items.append(Outcome.invalid(path, str(exc)))
    return items
