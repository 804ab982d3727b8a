"""Run a scenario on virtual time: simulated keypads (the real firmware core), the real host
session, a link with seeded faults, and a store that keeps every rating once.

Same scenario and seed give the same output, byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ..capture.pcapng import CaptureWriter
from ..events import Rating
from ..sim.keypad import SimulatedKeypad
from ..sim.mpkeypad import MicroPythonEngine, MicroPythonKeypad
from ..transports.base import to_reports
from ..wire import codec
from ..wire.session import Session
from .model import STALL_MS, Action, Scenario, ScenarioError

EPOCH0 = 1_800_000_000_000  # the host's wall clock at scenario time 0 (ms since 1970)
POWER_RETURN_MS = 50  # a power cut lasts this long


Keypad = SimulatedKeypad | MicroPythonKeypad


@dataclass
class _Device:
    id: str
    keypad: Keypad
    linked: bool = False
    session: Session | None = None
    edges: list[tuple[int, int, int, int]] = field(default_factory=list)  # (t, order, key, lvl)
    held_in: list[tuple[int, bytes]] = field(default_factory=list)  # stalled keypad->host bytes
    power_on_at: int | None = None
    last_prompt: int = 0
    cuts_seen: int = 0


@dataclass
class Result:
    ratings: list[dict[str, Any]]
    key_edges: list[dict[str, Any]]
    stats: dict[str, int]


class Runner:
    def __init__(
        self,
        scenario: Scenario,
        engine: str = "cpython",
        capture: CaptureWriter | None = None,
    ) -> None:
        if engine not in ("cpython", "micropython"):
            raise ScenarioError(f"unknown engine {engine!r} (cpython or micropython)")
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.capture = capture
        self.now = 0
        self.clock_offset = 0  # host_clock_jump: the host's wall clock is off by this much
        self._order = 0
        self._prompt_ids = 0
        self.store: dict[tuple[str, int], dict[str, Any]] = {}
        self.stats = {
            "reports_dropped": 0,
            "reports_corrupted": 0,
            "reports_duplicated": 0,
            "duplicates_ignored": 0,
            "bad_spans": 0,
        }
        self.devices: dict[str, _Device] = {}
        self._engine: MicroPythonEngine | None = None
        if engine == "micropython":
            self._engine = MicroPythonEngine()
        for d in scenario.devices:
            settings = {"keys": d.keys, **d.config}
            keypad: Keypad
            if self._engine is not None:
                keypad = self._engine.keypad(d.id, settings, ticks_offset=d.ticks_start_ms)
            else:
                keypad = SimulatedKeypad(d.id, settings=settings, ticks_offset=d.ticks_start_ms)
            self.devices[d.id] = _Device(d.id, keypad)

    # -- host clock and link ----------------------------------------------------------------
    def clock(self) -> int:
        return EPOCH0 + self.now + self.clock_offset

    def _faulty(self, reports: list[bytes]) -> list[bytes]:
        return link_faults(reports, self.scenario.link, self.rng, self.stats)

    def _stalled(self) -> bool:
        p = self.scenario.link.get("stall", 0.0)
        return p > 0 and self.rng.random() < p

    def _to_keypad(self, dev: _Device, data: bytes) -> None:
        if not data or not (dev.linked and dev.keypad.powered):
            return
        split = self.scenario.link.get("split", 0.0)
        for report in self._faulty(to_reports(data)):
            if self.capture:
                self.capture.write(dev.id, "out", report, self.clock() * 1000)
            if split and self.rng.random() < split:  # one report arrives in two pieces
                cut = self.rng.randrange(1, len(report))
                dev.keypad.write(report[:cut], self.now)
                dev.keypad.write(report[cut:], self.now)
            else:
                dev.keypad.write(report, self.now)
            self._check_power(dev)

    @staticmethod
    def _drop_link(dev: _Device) -> None:
        """The host's side of the link is gone: its session and anything still in flight."""
        dev.session = None
        dev.held_in.clear()

    def _open_session(self, dev: _Device) -> None:
        dev.session = Session(clock=self.clock, software="ratepad-sim")
        self._to_keypad(dev, dev.session.open())

    def _exchange(self, dev: _Device) -> bool:
        """Move the keypad's reports to the host and the host's answers back; True if any."""
        moved = False
        for _ in range(1000):
            if not (dev.linked and dev.keypad.powered) or dev.session is None:
                return moved
            reports = dev.keypad.read_reports()
            replies = dev.session.poll()
            due = bool(dev.held_in) and dev.held_in[0][0] <= self.now
            if not reports and not replies and not due:
                return moved
            moved = True
            delivered = self._faulty(reports)
            if self.capture:
                for report in delivered:
                    self.capture.write(dev.id, "in", report, self.clock() * 1000)
            data = b"".join(delivered)
            if data and self._stalled():
                dev.held_in.append((self.now + STALL_MS, data))
                data = b""
            while dev.held_in and dev.held_in[0][0] <= self.now:
                data = dev.held_in.pop(0)[1] + data
            replies += self._to_host(dev, data)
            while (event := dev.session.next_event()) is not None:
                if isinstance(event, Rating):
                    replies += self._store(dev, event)
            self._to_keypad(dev, replies)
        raise ScenarioError(f"{dev.id}: the link does not settle at {self.now} ms")

    def _to_host(self, dev: _Device, data: bytes) -> bytes:
        """Bytes reach the host session, possibly in two pieces (split)."""
        if not data or dev.session is None:
            return b""
        split = self.scenario.link.get("split", 0.0)
        if split and len(data) > 1 and self.rng.random() < split:
            cut = self.rng.randrange(1, len(data))
            return dev.session.receive_data(data[:cut]) + dev.session.receive_data(data[cut:])
        return dev.session.receive_data(data)

    def _store(self, dev: _Device, r: Rating) -> bytes:
        key = (dev.id, r.journal_seq)
        if key in self.store:
            self.stats["duplicates_ignored"] += 1
        else:
            self.store[key] = {
                "device": dev.id,
                "seq": r.journal_seq,
                "score": r.score,
                "at_ms": r.time_ms - EPOCH0,
                "time_exact": r.time_exact,
                "staff": r.staff_id,
                "prompted": r.prompted,
                "flags": r.flag_names,
            }
        assert dev.session is not None
        return dev.session.confirm(r)

    # -- power --------------------------------------------------------------------------------
    def _check_power(self, dev: _Device) -> None:
        cuts = dev.keypad.power_cuts
        if len(cuts) > dev.cuts_seen:
            dev.cuts_seen = len(cuts)
            self._drop_link(dev)
            dev.power_on_at = cuts[-1] + POWER_RETURN_MS

    def _power_on(self, dev: _Device) -> None:
        dev.power_on_at = None
        dev.keypad.power_on(self.now)
        if dev.linked:  # the keypad re-enumerates; the host reconnects by itself
            self._open_session(dev)

    # -- actions ------------------------------------------------------------------------------
    def _edge(self, dev: _Device, t: int, key: int, level: int) -> None:
        self._order += 1
        dev.edges.append((t, self._order, key, level))
        dev.edges.sort()

    def _command(self, dev: _Device, message: codec.HostMessage) -> None:
        if dev.session is not None:
            self._to_keypad(dev, dev.session.request(message)[1])

    def _apply(self, a: Action) -> None:
        dev = self.devices[a.device] if a.device else None
        if a.do == "host_clock_jump":
            self.clock_offset += a.args["by_ms"]
            return
        if a.do == "host_restart":
            for d in self.devices.values():
                self._drop_link(d)
            for d in self.devices.values():
                if d.linked and d.keypad.powered:
                    self._open_session(d)
            return
        assert dev is not None
        kp = dev.keypad
        if a.do == "connect":
            if not dev.linked:
                dev.linked = True
                kp.connect(self.now)
                if kp.powered:
                    self._open_session(dev)
        elif a.do == "disconnect":
            dev.linked = False
            self._drop_link(dev)
            kp.disconnect(self.now)
        elif a.do == "power_off":
            kp.power_off()
            self._drop_link(dev)
        elif a.do == "power_on":
            if not kp.powered:
                self._power_on(dev)
        elif a.do == "power_cycle":
            kp.power_off()
            self._drop_link(dev)
            self._power_on(dev)
        elif a.do == "power_cut":
            kp.plan_power_cut()
        elif a.do == "prompt":
            self._prompt_ids += 1
            dev.last_prompt = self._prompt_ids
            self._command(
                dev,
                codec.Prompt(
                    self._prompt_ids, a.args.get("timeout_ms", 30000), a.args.get("staff", "")
                ),
            )
        elif a.do == "cancel_prompt":
            self._command(dev, codec.CancelPrompt(0))
        elif a.do == "login":
            self._command(dev, codec.Login(a.args.get("staff", ""), a.args.get("name", "")))
        elif a.do == "logout":
            self._command(dev, codec.Logout(a.args.get("staff", "")))
        elif a.do == "set_config":
            for k, v in a.args["config"].items():
                self._command(dev, codec.SetConfig(k, str(v)))
        elif a.do == "press":
            key = kp.key_for_score(a.args["score"])
            hold = a.args.get("hold_ms", 120)
            bounce = a.args.get("bounce_ms", 0)
            for t, level in press_edges(hold, bounce):
                self._edge(dev, self.now + t, key, level)
        elif a.do == "raw":
            for offset, level in a.args["edges"]:
                self._edge(dev, self.now + offset, a.args["key"], level)

    def _apply_edges(self, dev: _Device, t: int) -> None:
        """Raw edges due by ``t``: the pins change first, then what is due at t (one scan)."""
        raw = take_edges(dev.edges, dev.keypad.raw, t)
        if raw is not None:
            dev.keypad.set_keys(raw, t)
            self._check_power(dev)

    # -- the clock ----------------------------------------------------------------------------
    def _next_time(self, actions: list[Action], i: int) -> int | None:
        times = []
        if i < len(actions):
            times.append(actions[i].at_ms)
        for dev in self.devices.values():
            if dev.edges:
                times.append(dev.edges[0][0])
            if dev.power_on_at is not None:
                times.append(dev.power_on_at)
            if dev.held_in:
                times.append(dev.held_in[0][0])
            if dev.session is not None and dev.linked and dev.keypad.powered:
                due = dev.session.next_deadline()
                if due is not None:  # host clock -> scenario time
                    times.append(max(due - EPOCH0 - self.clock_offset, self.now))
            d = dev.keypad.next_deadline_ms()
            if d is not None:
                times.append(max(d, self.now))
        return min(times) if times else None

    def run(self) -> Result:
        try:
            return self._run()
        finally:
            if self._engine is not None:
                self._engine.close()

    def _run(self) -> Result:
        actions = list(self.scenario.events)
        i = 0
        until = self.scenario.until_ms
        while True:
            t = self._next_time(actions, i)
            if t is None or t > until:
                break
            self.now = t
            for dev in self.devices.values():
                if dev.power_on_at is not None and dev.power_on_at <= t:
                    self._power_on(dev)
                self._apply_edges(dev, t)
            while i < len(actions) and actions[i].at_ms == t:
                self._apply(actions[i])
                i += 1
                for dev in self.devices.values():  # a press's first edge lands at once
                    self._apply_edges(dev, t)
            for dev in self.devices.values():
                dev.keypad.advance_to(t)
                self._check_power(dev)
                self._exchange(dev)
        self.now = until
        for dev in self.devices.values():
            dev.keypad.advance_to(until)
            self._exchange(dev)
        for dev in self.devices.values():
            if dev.session is not None:
                self.stats["bad_spans"] += dev.session.bad_spans
            self.stats["power_cuts"] = self.stats.get("power_cuts", 0) + len(dev.keypad.power_cuts)
        ratings = [self.store[k] for k in sorted(self.store)]
        edges = [
            {"device": dev.id, "key": key, "down": down, "at_ms": at}
            for dev in sorted(self.devices.values(), key=lambda d: d.id)
            for at, key, down in dev.keypad.key_edges
        ]
        return Result(ratings, edges, self.stats)


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


def run(
    scenario: Scenario, engine: str = "cpython", capture: CaptureWriter | None = None
) -> Result:
    return Runner(scenario, engine, capture).run()
