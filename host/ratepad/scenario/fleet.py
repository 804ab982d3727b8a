"""Fleets: many simulated keypads over a working day, with human behaviour.

Each keypad is simulated on its own timeline (keypads do not share a link, so they are
independent): customers arrive (a Poisson process, per hour of the day), the clerk arms a
prompt, most customers answer after a few seconds with a score drawn from the profile, presses
have human durations and contact bounce, and there is occasional misuse (unprompted presses,
staff rating themselves in bursts). Everything runs through the real firmware core and the real
host session; stored ratings go to a sink (the agent's store, or a list).
"""

from __future__ import annotations

import json
import math
import random
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RatepadError
from .model import parse
from .schema import SchemaError, validate

HOUR = 3_600_000


class ProfileError(RatepadError):
    """A fleet profile that cannot be used."""


@dataclass(frozen=True)
class Profile:
    """How people behave at a counter (all rates per keypad)."""

    arrivals_per_hour: tuple[float, ...] = (20.0,)  # one value, or one per hour of the day
    response_rate: float = 0.85  # share of prompts answered
    answer_delay_ms: tuple[int, int] = (1500, 8000)  # uniform range after the prompt
    scores: tuple[float, ...] = (0.03, 0.04, 0.08, 0.25, 0.60)  # P(score 1..5)
    press_ms: tuple[float, float] = (150.0, 0.4)  # lognormal median and sigma
    bounce_ms_max: int = 4
    unprompted_per_hour: float = 0.5
    self_rating_bursts_per_day: float = 0.2  # staff pressing "very satisfied" repeatedly
    prompt_timeout_ms: int = 30_000
    settings: dict[str, Any] = field(
        default_factory=lambda: {"debounce_ms": 10, "status_ms": 600_000}
    )

    @staticmethod
    def load(path: str | Path | None) -> Profile:
        """Read a profile (JSON or TOML) checked against ``PROFILE_SCHEMA``."""
        if path is None:
            return Profile()
        p = Path(path)
        try:
            raw = p.read_bytes()
            data = tomllib.loads(raw.decode()) if p.suffix == ".toml" else json.loads(raw)
        except RecursionError:
            raise ProfileError(f"cannot read profile {path}: nested too deep") from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            if "integer string conversion" in reason:
                reason = "a number with more than 4300 digits"
            raise ProfileError(f"cannot read profile {path}: {reason}") from None
        try:
            validate(data, PROFILE_SCHEMA, "profile")
        except SchemaError as exc:
            raise ProfileError(str(exc)) from None
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        try:
            prof = Profile(**values)
        except TypeError as exc:
            raise ProfileError(f"profile: {exc}") from None
        if len(prof.scores) not in (3, 4, 5) or abs(sum(prof.scores) - 1) > 1e-6:
            raise ProfileError("profile: scores must be 3-5 probabilities summing to 1")
        if prof.answer_delay_ms[0] > prof.answer_delay_ms[1]:
            raise ProfileError("profile.answer_delay_ms: expected [low, high] with low <= high")
        from .model import ScenarioError, check_settings

        try:
            check_settings(prof.settings, "profile.settings", len(prof.scores))
        except ScenarioError as exc:
            raise ProfileError(str(exc)) from None
        return prof


_RATE = {"type": "number", "minimum": 0, "maximum": 10_000}
_MS = {"type": "integer", "minimum": 0, "maximum": 3_600_000}
PROFILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ratepad fleet profile",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "arrivals_per_hour": {
            "type": "array",
            "items": {**_RATE, "exclusiveMinimum": 0},
            "minItems": 1,
            "maxItems": 24,
        },
        "response_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "answer_delay_ms": {"type": "array", "items": _MS, "minItems": 2, "maxItems": 2},
        "scores": {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 1},
            "minItems": 3,
            "maxItems": 5,
        },
        "press_ms": {
            "type": "array",
            "prefixItems": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 60_000},
                {"type": "number", "minimum": 0, "maximum": 5},
            ],
            "minItems": 2,
            "maxItems": 2,
        },
        "bounce_ms_max": {"type": "integer", "minimum": 0, "maximum": 100},
        "unprompted_per_hour": _RATE,
        "self_rating_bursts_per_day": _RATE,
        "prompt_timeout_ms": _MS,
        "settings": {"type": "object", "additionalProperties": {"type": ["integer", "string"]}},
    },
}


def day_events(
    device: str, profile: Profile, hours: float, rng: random.Random, staff: str
) -> list[dict[str, Any]]:
    """Scenario events of one keypad for ``hours`` of work."""
    events: list[dict[str, Any]] = [
        {"at_ms": 0, "device": device, "do": "connect"},
        {"at_ms": 1, "device": device, "do": "login", "staff": staff},
    ]
    end = int(hours * HOUR)
    keys = len(profile.scores)

    def press(t: int, score: int) -> None:
        median, sigma = profile.press_ms
        hold = max(40, int(rng.lognormvariate(math.log(median), sigma)))
        events.append(
            {
                "at_ms": t,
                "device": device,
                "do": "press",
                "score": score,
                "hold_ms": hold,
                "bounce_ms": rng.randint(0, profile.bounce_ms_max),
            }
        )

    t = 5_000
    while True:
        rate = profile.arrivals_per_hour[(t // HOUR) % len(profile.arrivals_per_hour)]
        t += int(rng.expovariate(rate / HOUR)) + 30_000  # service takes at least 30 s
        if t >= end:
            break
        events.append(
            {
                "at_ms": t,
                "device": device,
                "do": "prompt",
                "staff": staff,
                "timeout_ms": profile.prompt_timeout_ms,
            }
        )
        if rng.random() < profile.response_rate:
            delay = rng.randint(*profile.answer_delay_ms)
            score = rng.choices(range(1, keys + 1), weights=profile.scores)[0]
            press(t + delay, score)
    n_unprompted = _poisson(rng, profile.unprompted_per_hour * hours)
    for _ in range(n_unprompted):
        press(rng.randrange(5_000, max(end, 5_001)), rng.randint(1, keys))
    for _ in range(_poisson(rng, profile.self_rating_bursts_per_day * hours / 8)):
        t0 = rng.randrange(5_000, max(end, 5_001))
        for i in range(rng.randint(3, 8)):
            press(t0 + i * rng.randint(400, 1500), keys)
    events.sort(key=lambda e: e["at_ms"])
    return events


def _poisson(rng: random.Random, mean: float) -> int:
    n, p, limit = 0, 1.0, math.exp(-mean)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


MAX_KEYPAD_HOURS = 100_000  # fleet size x hours: about 2 hours of CPU on one core
MAX_HOURS = 24 * 7


@dataclass
class FleetResult:
    keypads: int
    hours: float
    ratings: int
    prompts: int
    stats: dict[str, int]
    report: dict[str, Any] = field(default_factory=dict)


def check_size(n: int, hours: float) -> None:
    """Refuse fleets that would run for hours (ProfileError says the limit)."""
    if not (math.isfinite(hours) and 0 < hours <= MAX_HOURS):
        raise ProfileError(f"--hours must be more than 0 and at most {MAX_HOURS}, got {hours}")
    if n < 1:
        raise ProfileError("--fleet needs at least 1 keypad")
    if n * hours > MAX_KEYPAD_HOURS:
        raise ProfileError(
            f"--fleet {n} x --hours {hours:g} = {n * hours:,.0f} keypad-hours, more than the "
            f"limit of {MAX_KEYPAD_HOURS:,}"
        )


_Keypad = tuple[list[dict[str, Any]], int, dict[str, int], dict[str, Any], list[int]]


def _keypad(i: int, hours: float, profile: Profile, seed: int, engine: str) -> _Keypad:
    """One keypad's day: (stored ratings, prompts, counters, report summary, latencies)."""
    from .report import keypad_summary
    from .runner import Runner

    rng = random.Random(seed * 1_000_003 + i)
    device = f"F{i + 1:05d}"
    events = day_events(device, profile, hours, rng, staff=f"S{i % 9999 + 1:04d}")
    prompts = sum(1 for e in events if e["do"] == "prompt")
    keys = len(profile.scores)
    scenario = parse(
        {
            "seed": seed + i,
            "until_ms": int(hours * HOUR) + 120_000,
            "devices": [{"id": device, "keys": keys, "config": profile.settings}],
            "events": events,
        },
        schema=False,  # made here, by day_events
    )
    result = Runner(scenario, engine=engine).run()
    summary = keypad_summary(device, result, prompts, keys)
    return result.ratings, prompts, dict(result.stats), summary, result.latency_ms


def _keypads(task: tuple[range, float, Profile, int, str]) -> list[_Keypad]:
    """A worker process's share of the fleet (a picklable top-level function)."""
    indices, hours, profile, seed, engine = task
    return [_keypad(i, hours, profile, seed, engine) for i in indices]


def run_fleet(
    n: int,
    hours: float,
    profile: Profile | None = None,
    seed: int = 1,
    sink: Callable[[Iterable[dict[str, Any]]], None] | None = None,
    engine: str = "cpython",
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> FleetResult:
    """Simulate ``n`` keypads for ``hours`` each; stored ratings go to ``sink`` (in batches).

    With ``jobs`` > 1 the keypads run in that many processes; keypads are independent (each
    has its own seeded timeline), and results are taken in keypad order, so the result is the
    same as with one process. ``progress(k)`` is told of every ``k`` keypads done.
    """
    from .report import build

    check_size(n, hours)
    profile = profile or Profile()
    total = prompts = 0
    stats: dict[str, int] = {}
    summaries: list[dict[str, Any]] = []
    latency: list[int] = []

    def results() -> Iterable[list[_Keypad]]:
        if jobs <= 1:
            for i in range(n):
                yield [_keypad(i, hours, profile, seed, engine)]
            return
        from concurrent.futures import ProcessPoolExecutor

        size = max(1, min(50, n // (jobs * 8)))
        tasks = [
            (range(i, min(i + size, n)), hours, profile, seed, engine) for i in range(0, n, size)
        ]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            yield from pool.map(_keypads, tasks)

    for batch in results():
        for ratings, p, st, summary, lat in batch:
            total += len(ratings)
            prompts += p
            for k, v in st.items():
                stats[k] = stats.get(k, 0) + v
            summaries.append(summary)
            latency.extend(lat)
            if sink is not None:
                sink(ratings)
        if progress is not None:
            progress(len(batch))
    report = build(
        summaries,
        stats,
        latency,
        f"Fleet of {n} keypads, {hours:g} h (seed {seed})",
        {"hours": hours, "seed": seed},
    )
    return FleetResult(n, hours, total, prompts, stats, report)
