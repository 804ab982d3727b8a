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
        if path is None:
            return Profile()
        p = Path(path)
        try:
            raw = p.read_bytes()
            data = tomllib.loads(raw.decode()) if p.suffix == ".toml" else json.loads(raw)
        except (OSError, ValueError) as exc:
            raise ProfileError(f"cannot read profile {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ProfileError("a profile is an object")
        known = set(Profile.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProfileError(f"profile: unknown keys {unknown}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        try:
            prof = Profile(**values)
        except TypeError as exc:
            raise ProfileError(f"profile: {exc}") from None
        if len(prof.scores) not in (3, 4, 5) or abs(sum(prof.scores) - 1) > 1e-6:
            raise ProfileError("profile: scores must be 3-5 probabilities summing to 1")
        return prof


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


@dataclass
class FleetResult:
    keypads: int
    hours: float
    ratings: int
    prompts: int
    stats: dict[str, int]


def run_fleet(
    n: int,
    hours: float,
    profile: Profile | None = None,
    seed: int = 1,
    sink: Callable[[Iterable[dict[str, Any]]], None] | None = None,
    engine: str = "cpython",
) -> FleetResult:
    """Simulate ``n`` keypads for ``hours`` each; stored ratings go to ``sink`` (in batches)."""
    from . import Runner, parse

    profile = profile or Profile()
    total = prompts = 0
    stats: dict[str, int] = {}
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        device = f"F{i + 1:05d}"
        events = day_events(device, profile, hours, rng, staff=f"S{i % 9999 + 1:04d}")
        prompts += sum(1 for e in events if e["do"] == "prompt")
        scenario = parse(
            {
                "seed": seed + i,
                "until_ms": int(hours * HOUR) + 120_000,
                "devices": [
                    {"id": device, "keys": len(profile.scores), "config": profile.settings}
                ],
                "events": events,
            }
        )
        result = Runner(scenario, engine=engine).run()
        total += len(result.ratings)
        for k, v in result.stats.items():
            stats[k] = stats.get(k, 0) + v
        if sink is not None:
            sink(result.ratings)
    return FleetResult(n, hours, total, prompts, stats)
