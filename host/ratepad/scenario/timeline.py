"""The keypad side of a scenario's timeline, written once for the virtual-time runner and for
``--serve``.

A ``Timeline`` owns the scenario's keypads (the real firmware core, on either engine, each
started at its ``ticks_start_ms``), the actions still to come, the raw key edges still to
land and the power that is out. ``step(t)`` applies everything due at ``t`` in one order:
power coming back, raw edges, the actions at ``t`` (a press's first edge lands at once), then
every keypad's deadlines. What the link and the host do is up to the subclass, through hooks:
the runner moves bytes to its sans-IO host sessions, the server to the TCP connection of
whatever host is attached.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..sim.mpkeypad import MicroPythonEngine, MicroPythonKeypad
from ..sim.rp2040.engine import Rp2040Engine, Rp2040Keypad
from ..sim.simulated import SimulatedKeypad
from .model import Action, Scenario, ScenarioError

__all__ = [
    "ENGINES",
    "HOST_ACTIONS",
    "POWER_RETURN_MS",
    "Keypad",
    "Lane",
    "Timeline",
    "check_engine",
    "link_faults",
    "press_edges",
    "take_edges",
]

POWER_RETURN_MS = 50  # a power cut lasts this long
HOST_ACTIONS = (
    "prompt",
    "cancel_prompt",
    "login",
    "logout",
    "set_config",
    "host_restart",
    "host_clock_jump",
)
"""Actions of the host, not of the keypad or its cable: the subclass decides what they do."""

ENGINES = ("cpython", "micropython", "rp2040")
"""Where the firmware runs: the core on CPython, the core on the MicroPython VM (WebAssembly), the
whole firmware on the real MicroPython image in an emulated RP2040."""

Keypad = SimulatedKeypad | MicroPythonKeypad | Rp2040Keypad


def check_engine(engine: str) -> None:
    """ScenarioError unless ``engine`` is one of ``ENGINES``."""
    if engine not in ENGINES:
        raise ScenarioError(f"unknown engine {engine!r} ({', '.join(ENGINES)})")


@dataclass
class Lane:
    """One keypad on the timeline, and what is pending for it."""

    id: str
    keypad: Keypad
    linked: bool = False  # the scenario's data link (connect / disconnect)
    edges: list[tuple[int, int, int, int]] = field(default_factory=list)  # (t, order, key, lvl)
    power_on_at: int | None = None
    cuts_seen: int = 0


L = TypeVar("L", bound=Lane)


class Timeline(Generic[L]):
    """A scenario's keypads and their timeline; subclasses supply the link (see the hooks)."""

    def __init__(self, scenario: Scenario, engine: str = "cpython") -> None:
        check_engine(engine)
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.now = 0
        self.actions = list(scenario.events)
        self.next_action = 0
        self._order = 0
        self.engine: MicroPythonEngine | Rp2040Engine | None = None
        if engine == "micropython":
            self.engine = MicroPythonEngine()
        elif engine == "rp2040":
            self.engine = Rp2040Engine()
        self.lanes: dict[str, L] = {}
        try:
            for d in scenario.devices:
                settings = {"keys": d.keys, **d.config}
                keypad: Keypad
                if self.engine is not None:
                    keypad = self.engine.keypad(d.id, settings, ticks_offset=d.ticks_start_ms)
                else:
                    keypad = SimulatedKeypad(d.id, settings=settings, ticks_offset=d.ticks_start_ms)
                self.lanes[d.id] = self.make_lane(d.id, keypad)
        except BaseException:
            self.close_engine()
            raise

    def make_lane(self, device_id: str, keypad: Keypad) -> L:
        raise NotImplementedError

    def close_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    # -- hooks --------------------------------------------------------------------------------
    def link_times(self) -> list[int]:
        """Times the link or the host side needs a step at (besides the keypads' own)."""
        return []

    def on_host_action(self, action: Action, t: int) -> None:
        """A host action (``HOST_ACTIONS``) is due."""

    def on_connect(self, lane: L, t: int) -> None:
        lane.linked = True

    def on_disconnect(self, lane: L, t: int) -> None:
        lane.linked = False
        self.on_link_lost(lane, t)

    def on_link_lost(self, lane: L, t: int) -> None:
        """The keypad lost power or its cable: the host's side of the link goes."""

    def on_power_on(self, lane: L, t: int) -> None:
        """Power is back on a keypad."""

    def on_output(self, lane: L, t: int) -> None:
        """The keypad may have queued reports (after an edge)."""

    def on_settle(self, lane: L, t: int) -> None:
        """End of a step: the keypad has run everything due at ``t``."""

    # -- the keypad side ----------------------------------------------------------------------
    def check_power(self, lane: L, t: int) -> None:
        """A power cut planned by ``power_cut`` may just have happened."""
        cuts = lane.keypad.power_cuts
        if len(cuts) > lane.cuts_seen:
            lane.cuts_seen = len(cuts)
            self.on_link_lost(lane, t)
            lane.power_on_at = cuts[-1] + POWER_RETURN_MS

    def power_on(self, lane: L, t: int) -> None:
        lane.power_on_at = None
        lane.keypad.power_on(t)
        self.on_power_on(lane, t)

    def power_off(self, lane: L, t: int) -> None:
        lane.keypad.power_off()
        self.on_link_lost(lane, t)

    def add_edge(self, lane: L, t: int, key: int, level: int) -> None:
        self._order += 1
        lane.edges.append((t, self._order, key, level))
        lane.edges.sort()

    def apply_edges(self, lane: L, t: int) -> None:
        """Raw edges due by ``t``: the pins change first, then what is due at t (one scan)."""
        raw = take_edges(lane.edges, lane.keypad.raw, t)
        if raw is not None:
            lane.keypad.set_keys(raw, t)
            self.check_power(lane, t)
            self.on_output(lane, t)

    def apply(self, a: Action, t: int) -> None:
        if a.do in HOST_ACTIONS or a.device is None:
            self.on_host_action(a, t)
            return
        lane = self.lanes[a.device]
        kp = lane.keypad
        if a.do == "connect":
            self.on_connect(lane, t)
        elif a.do == "disconnect":
            self.on_disconnect(lane, t)
        elif a.do == "power_off":
            self.power_off(lane, t)
        elif a.do == "power_on":
            if not kp.powered:
                self.power_on(lane, t)
        elif a.do == "power_cycle":
            self.power_off(lane, t)
            self.power_on(lane, t)
        elif a.do == "power_cut":
            kp.plan_power_cut()
        elif a.do == "press":
            key = kp.key_for_score(a.args["score"])
            edges = press_edges(a.args.get("hold_ms", 120), a.args.get("bounce_ms", 0))
            for offset, level in edges:
                self.add_edge(lane, t + offset, key, level)
        elif a.do == "raw":
            for offset, level in a.args["edges"]:
                self.add_edge(lane, t + offset, a.args["key"], level)

    # -- the clock ----------------------------------------------------------------------------
    def next_time(self) -> int | None:
        """The next time anything is due, or None."""
        times = self.link_times()
        if self.next_action < len(self.actions):
            times.append(self.actions[self.next_action].at_ms)
        for lane in self.lanes.values():
            if lane.edges:
                times.append(lane.edges[0][0])
            if lane.power_on_at is not None:
                times.append(lane.power_on_at)
            d = lane.keypad.next_deadline_ms()
            if d is not None:
                times.append(max(d, self.now))
        return min(times) if times else None

    def step(self, t: int) -> None:
        """Apply everything due at ``t`` (the next time, see ``next_time``)."""
        self.now = t
        for lane in self.lanes.values():
            if lane.power_on_at is not None and lane.power_on_at <= t:
                self.power_on(lane, t)
            self.apply_edges(lane, t)
        while self.next_action < len(self.actions) and self.actions[self.next_action].at_ms <= t:
            self.apply(self.actions[self.next_action], t)
            self.next_action += 1
            for lane in self.lanes.values():  # a press's first edge lands at once
                self.apply_edges(lane, t)
        for lane in self.lanes.values():
            lane.keypad.advance_to(t)
            self.check_power(lane, t)
            self.on_settle(lane, t)

    def run_until(self, until: int) -> None:
        """Step through everything due up to ``until``; then the clock stands at ``until``."""
        while (t := self.next_time()) is not None and t <= until:
            self.step(max(t, self.now))
        self.now = max(self.now, until)


def take_edges(edges: list[tuple[int, int, int, int]], raw: int, t: int) -> int | None:
    """Pop the raw edges (time, order, key, level) due by ``t`` off the sorted ``edges`` and
    return the pins after them, or None if none was due."""
    if not edges or edges[0][0] > t:
        return None
    while edges and edges[0][0] <= t:
        _, _, key, level = edges.pop(0)
        raw = raw | (1 << (key - 1)) if level else raw & ~(1 << (key - 1))
    return raw


def link_faults(
    reports: list[bytes], link: dict[str, float], rng: random.Random, stats: dict[str, int]
) -> list[bytes]:
    """The 64-byte reports of one burst after the link's faults (drop, corrupt, duplicate,
    reorder), drawn from ``rng``; counted in ``stats``."""
    out: list[bytes] = []
    for r in reports:
        if link.get("drop") and rng.random() < link["drop"]:
            stats["reports_dropped"] = stats.get("reports_dropped", 0) + 1
            continue
        if link.get("corrupt") and rng.random() < link["corrupt"]:
            b = bytearray(r)
            i = rng.randrange(len(b) * 8)
            b[i // 8] ^= 1 << (i % 8)
            r = bytes(b)
            stats["reports_corrupted"] = stats.get("reports_corrupted", 0) + 1
        out.append(r)
        if link.get("duplicate") and rng.random() < link["duplicate"]:
            out.append(r)
            stats["reports_duplicated"] = stats.get("reports_duplicated", 0) + 1
    if link.get("reorder") and len(out) > 1 and rng.random() < link["reorder"]:
        i = rng.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


def press_edges(hold_ms: int, bounce_ms: int) -> list[tuple[int, int]]:
    """(offset, level) of a press held ``hold_ms`` with ``bounce_ms`` of chatter on press and
    on release: the contact toggles every millisecond until it settles."""
    edges = [(0, 1)]
    for i in range(1, bounce_ms + 1):
        edges.append((i, 0 if i % 2 else 1))
    if bounce_ms % 2:
        edges.append((bounce_ms + 1, 1))
    release = max(hold_ms, edges[-1][0] + 1)
    edges.append((release, 0))
    for i in range(1, bounce_ms + 1):
        edges.append((release + i, 1 if i % 2 else 0))
    if bounce_ms % 2:
        edges.append((release + bounce_ms + 1, 0))
    return edges
