"""What one simulated window agent uploads, and when: the fleet simulator's customer profile
(``ratepad.scenario.fleet``: arrivals per hour, answer share and delay, scores, unprompted
presses, self-rating bursts) turned into the items a real agent's outbox would send.

Pure (no Locust, no Django): the locustfile plays these timelines against a server, the tests
read them directly. Times are seconds from the agent's start; ``items`` are the upload batch's
lists exactly as ``ratepad.agent.upload`` sends them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ratepad.agent.levels import DEFAULT_VALUES
from ratepad.scenario.fleet import HOUR, Profile, day_events

UNPROMPTED, REPEAT = 0x1, 0x2  # ratepad.wire.values.Flag: the keypad's own flags
REPEAT_MS = 3_000  # a press this soon after a rating is a repeat (the firmware's guard)


@dataclass
class Send:
    """One moment the agent's outbox gets something to send."""

    at: float  # seconds from the agent's start
    ratings: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AgentPlan:
    """One window agent of the load test: its key and its keypad."""

    key: str
    serial: str
    staff: str


def timeline(
    agent: AgentPlan,
    profile: Profile,
    seconds: float,
    rng: random.Random,
    *,
    start_ms: int,
    seq_base: int,
) -> list[Send]:
    """The agent's sends over ``seconds``, the first (device and staff session) within the
    first minute. ``start_ms``: the wall clock of second 0; journal sequences and prompt ids
    count up from ``seq_base`` (a new run continues where no earlier run went)."""
    keys = len(profile.scores)
    values = DEFAULT_VALUES.get(keys, tuple(range(keys)))
    # a random moment of the working day, so that agents started together are out of step
    offset = rng.uniform(0, HOUR)
    events = day_events(agent.serial, profile, (offset + seconds * 1000) / HOUR, rng, agent.staff)
    first = rng.uniform(0, min(60.0, seconds / 4))

    def wall(t_ms: float) -> int:
        return start_ms + int(t_ms)

    sends = [
        Send(
            first,
            sessions=[{"serial": agent.serial, "staff_id": agent.staff,
                       "started_at_ms": wall(first * 1000)}],
            devices=[{"serial": agent.serial, "connected": True, "firmware": "loadtest",
                      "state": "idle", "faults": [], "unacked": 0, "presses": 0,
                      "staff_id": agent.staff, "updated_at_ms": wall(first * 1000)}],
        )
    ]  # fmt: skip
    seq = prompt_id = seq_base
    armed: dict[str, Any] | None = None  # the open prompt
    last_rating_ms = -float("inf")

    def close(prompt: dict[str, Any], state: str, at_ms: float, rating: int | None) -> None:
        closed = {**prompt, "state": state, "closed_at_ms": wall(at_ms), "rating_seq": rating}
        if at_ms / 1000 >= first:
            sends.append(Send(at_ms / 1000, prompts=[closed]))

    for event in events:
        t_ms = event["at_ms"] - offset
        if t_ms < 0 or event["do"] not in ("prompt", "press"):
            continue
        t = t_ms / 1000
        if t < first:
            continue  # the agent was not running yet
        if armed is not None and t_ms > armed["_deadline"]:
            close(_public(armed), "timed_out", armed["_deadline"], None)
            armed = None
        if event["do"] == "prompt":
            if armed is not None:
                close(_public(armed), "cancelled", t_ms, None)
            prompt_id += 1
            armed = {"serial": agent.serial, "prompt_id": prompt_id, "staff_id": agent.staff,
                     "state": "issued", "issued_at_ms": wall(t_ms),
                     "timeout_ms": profile.prompt_timeout_ms, "closed_at_ms": None,
                     "rating_seq": None, "_deadline": t_ms + profile.prompt_timeout_ms}  # fmt: skip
            sends.append(Send(t, prompts=[_public(armed)]))
            continue
        seq += 1
        score = int(event["score"])
        flags = 0 if armed is not None else UNPROMPTED
        if armed is None and t_ms - last_rating_ms < REPEAT_MS:
            flags |= REPEAT
        rating = {"serial": agent.serial, "journal_seq": seq, "boot_id": 1,
                  "uptime_ms": int(offset + t_ms), "time_ms": wall(t_ms), "time_exact": True,
                  "score": score, "key_count": keys, "level_value": values[score - 1],
                  "staff_id": agent.staff, "prompt_id": armed["prompt_id"] if armed else 0,
                  "flags": flags}  # fmt: skip
        send = Send(t, ratings=[rating])
        if armed is not None:
            send.prompts.append({**_public(armed), "state": "answered",
                                 "closed_at_ms": wall(t_ms), "rating_seq": seq})  # fmt: skip
            armed = None
        sends.append(send)
        last_rating_ms = t_ms
    sends.sort(key=lambda s: s.at)
    return [s for s in sends if s.at < seconds]


def _public(prompt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prompt.items() if not k.startswith("_")}
