"""A scenario's ``expect`` section, checked against what the run gave.

Each expectation that fails is one line saying which and why, e.g.
``expect.ratings: expected 3, got 2`` or ``expect.no_loss: K1 lost seqs [4]``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .model import Scenario
from .runner import Result

__all__ = ["check"]


def _count(name: str, want: Any, got: int) -> list[str]:
    if isinstance(want, int):
        return [] if got == want else [f"{name}: expected {want}, got {got}"]
    low, high = want.get("min"), want.get("max")
    if low is not None and got < low:
        return [f"{name}: expected at least {low}, got {got}"]
    if high is not None and got > high:
        return [f"{name}: expected at most {high}, got {got}"]
    return []


def check(scenario: Scenario, result: Result) -> list[str]:
    """Every failed expectation of ``scenario`` in ``result``, one line each (none: passed)."""
    exp = scenario.expect
    out: list[str] = []
    ratings = result.ratings
    if "ratings" in exp:
        out += _count("expect.ratings", exp["ratings"], len(ratings))
    per_device = Counter(r["device"] for r in ratings)
    for dev, want in exp.get("ratings_per_device", {}).items():
        out += _count(f"expect.ratings_per_device.{dev}", want, per_device.get(dev, 0))
    if "scores" in exp:
        got = [r["score"] for r in ratings]
        if got != exp["scores"]:
            out.append(f"expect.scores: expected {exp['scores']}, got {got}")
    flags = Counter(f for r in ratings for f in r["flags"])
    for flag, want in exp.get("flags", {}).items():
        out += _count(f"expect.flags.{flag}", want, flags.get(flag, 0))
    if "prompted" in exp:
        out += _count("expect.prompted", exp["prompted"], sum(r["prompted"] for r in ratings))
    staff = Counter(r["staff"] for r in ratings)
    for who, want in exp.get("staff", {}).items():
        out += _count(f"expect.staff.{who}", want, staff.get(who, 0))
    stored: dict[str, list[int]] = {}
    for r in ratings:
        stored.setdefault(r["device"], []).append(r["seq"])
    if exp.get("no_loss"):
        for dev, confirmed in sorted(result.confirmed.items()):
            lost = sorted(set(range(1, confirmed + 1)) - set(stored.get(dev, [])))
            if lost:
                more = f" (and {len(lost) - 10} more)" if len(lost) > 10 else ""
                out.append(f"expect.no_loss: {dev} lost seqs {lost[:10]}{more}")
    if exp.get("no_duplicates"):
        for dev, seqs in sorted(stored.items()):
            dups = sorted(s for s, n in Counter(seqs).items() if n > 1)
            if dups:
                out.append(f"expect.no_duplicates: {dev} stored seqs {dups[:10]} twice")
    if exp.get("times_exact") and ratings and not result.key_edges:
        # the rp2040 engine: debounced edges stay in the emulated chip's RAM
        out.append("expect.times_exact: cannot be checked: this engine reports no key edges")
    elif exp.get("times_exact"):
        downs = {(e["device"], e["at_ms"]) for e in result.key_edges if e["down"]}
        wrong = [
            r for r in ratings if not r["time_exact"] or (r["device"], r["at_ms"]) not in downs
        ]
        if wrong:
            w = wrong[0]
            why = "approximate" if not w["time_exact"] else "not the moment its key went down"
            out.append(
                f"expect.times_exact: {len(wrong)} of {len(ratings)} ratings, e.g. "
                f"{w['device']} seq {w['seq']} at {w['at_ms']} ms ({why})"
            )
    for name, want in exp.get("stats", {}).items():
        out += _count(f"expect.stats.{name}", want, int(result.stats.get(name, 0)))
    summed: Counter[str] = Counter()
    for counters in result.counters.values():
        summed.update(counters)
    for name, want in exp.get("counters", {}).items():
        if name not in summed and result.counters:
            out.append(f"expect.counters.{name}: no such counter (known: {', '.join(summed)})")
            continue
        out += _count(f"expect.counters.{name}", want, summed.get(name, 0))
    return out
