"""The outputs of every scenario in the repository, recorded on each engine, so that a change to
the host's driver or the runner that moves a single byte of an engine's output is seen.

``python tests/scenario_outputs.py record [--engines cpython,micropython,rp2040]`` runs them and
writes ``tests/scenarios/recorded.json``; ``tests/test_scenario_outputs.py`` runs them again and
compares. Recorded are the scenario files under ``tests/scenarios``, the scenario blocks of the
README and ``docs/``, soak scenarios of a few seeds, a fleet's keypads, and the scenarios the
scenario tests build in code (collected once, at recording time, into the recorded file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "tests" / "scenarios" / "recorded.json"


def scenario_dict(s: Any) -> dict[str, Any]:
    """A parsed ``Scenario`` as the JSON it can be parsed from again."""
    return {
        "seed": s.seed,
        "until_ms": s.until_ms,
        "devices": [
            {"id": d.id, "keys": d.keys, "config": d.config, "ticks_start_ms": d.ticks_start_ms}
            for d in s.devices
        ],
        "link": s.link,
        "events": [
            {"at_ms": a.at_ms, "do": a.do, **({"device": a.device} if a.device else {}), **a.args}
            for a in sorted(s.events, key=lambda a: a.index)
        ],
    }


KEEP_TEXT = 12_000  # outputs up to this long are kept as text (a readable diff), longer: a hash


def outcome(result: Any) -> dict[str, Any]:
    """What an engine gave: the ``--json --keys`` lines byte for byte (their SHA-256, and the text
    if short), and the run's figures."""
    lines = [json.dumps(x, ensure_ascii=False) for x in [*result.ratings, *result.key_edges]]
    text = "\n".join(lines) + ("\n" if lines else "")
    out: dict[str, Any] = {
        "stats": dict(sorted(result.stats.items())),
        "confirmed": result.confirmed,
        "counters": result.counters,
        "output_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "output_lines": len(lines),
    }
    if len(text) <= KEEP_TEXT:
        out["output"] = text
    return out


def run(data: dict[str, Any], engine: str) -> dict[str, Any]:
    from ratepad.scenario.model import parse
    from ratepad.scenario.runner import Runner

    return outcome(Runner(parse(data, schema=False), engine=engine).run())


def _doc_scenarios() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for n, block in enumerate(re.findall(r"```json\n(.*?)```", text, re.S)):
            try:
                data = json.loads(block)
            except ValueError:
                continue
            if isinstance(data, dict) and "devices" in data and "events" in data:
                found[f"{doc.relative_to(ROOT)}#{n}"] = data
    return found


def repository_scenarios() -> dict[str, dict[str, Any]]:
    """Scenarios that live in files and docs, or are made by code from a seed."""
    from ratepad.scenario.fleet import Profile, day_events
    from ratepad.scenario.model import load, parse
    from ratepad.scenario.soak import soak_scenario

    out: dict[str, dict[str, Any]] = {}
    for path in sorted((ROOT / "tests" / "scenarios").rglob("*")):
        if path.suffix in (".json", ".toml") and path.name != RECORDED.name:
            out[str(path.relative_to(ROOT))] = scenario_dict(load(path))
    for name, data in _doc_scenarios().items():
        out[name] = scenario_dict(parse(data, name))
    for seed in (1, 2, 3):
        out[f"soak seed {seed}"] = scenario_dict(parse(soak_scenario(seed, 40), schema=False))
    import random

    profile = Profile.load(None)
    for i in range(3):
        device = f"F{i + 1:05d}"
        rng = random.Random(7 * 1_000_003 + i)
        events = day_events(device, profile, 0.5, rng, staff=f"S{i + 1:04d}")
        data = {
            "seed": 7 + i,
            "until_ms": 1_800_000 + 120_000,
            "devices": [{"id": device, "keys": len(profile.scores), "config": profile.settings}],
            "events": events,
        }
        out[f"fleet keypad {i}"] = scenario_dict(parse(data, schema=False))
    return out


def record(engines: list[str], collected: Path | None, rp2040_max: int) -> None:
    scenarios = repository_scenarios()
    if collected is not None:  # scenarios the tests build in code (see the plugin below)
        for line in collected.read_text().splitlines():
            entry = json.loads(line)
            key = json.dumps(entry["scenario"], sort_keys=True)
            if not any(json.dumps(s, sort_keys=True) == key for s in scenarios.values()):
                scenarios[f"{entry['test']} #{len(scenarios)}"] = entry["scenario"]
    recorded: dict[str, Any] = {"scenarios": {}}
    for name, data in scenarios.items():
        outputs: dict[str, Any] = {}
        for engine in engines:
            if (
                engine == "rp2040"
                and sum("rp2040" in s["outputs"] for s in recorded["scenarios"].values())
                >= rp2040_max
            ):
                continue
            if engine == "rp2040" and len(data["events"]) > 40:
                continue
            try:
                outputs[engine] = run(data, engine)
            except Exception as exc:  # an error is an outcome too
                outputs[engine] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{name} [{engine}]", file=sys.stderr, flush=True)
        recorded["scenarios"][name] = {"scenario": data, "outputs": outputs}
    write(recorded)


def write(recorded: dict[str, Any]) -> None:
    """One line per scenario (the file stays diffable and small)."""
    entries = [
        f"  {json.dumps(name, ensure_ascii=False)}: {json.dumps(entry, ensure_ascii=False)}"
        for name, entry in recorded["scenarios"].items()
    ]
    RECORDED.write_text('{"scenarios": {\n' + ",\n".join(entries) + "\n}}\n", encoding="utf-8")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["record"])
    p.add_argument("--engines", default="cpython,micropython")
    p.add_argument("--collected", type=Path, help="JSON lines of scenarios collected from tests")
    p.add_argument("--rp2040-max", type=int, default=4)
    args = p.parse_args()
    record(args.engines.split(","), args.collected, args.rp2040_max)
    return 0


if __name__ == "__main__":
    sys.exit(main())
