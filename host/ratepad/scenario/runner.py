"""Run a scenario on virtual time: simulated keypads (the real firmware core), the real host
driver (``ratepad.driver.core``: the rules ``Keypad``, ``aio`` and the agent run, on the
scenario's clock), a link with seeded faults, and a store that keeps every rating once.

Same scenario and seed give the same output, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..capture.pcapng import CaptureWriter
from ..driver import core
from ..driver.core import OPEN_STATES, DriverCore, Prompt
from ..events import Rating
from ..sim import EPOCH0
from ..sim.rp2040.engine import Rp2040Keypad
from ..sim.simulated import SimulatedKeypad
from ..transports.base import to_reports
from ..wire import codec
from .model import STALL_MS, Action, Scenario, ScenarioError
from .timeline import POWER_RETURN_MS, Keypad, Lane, Timeline, link_faults, press_edges, take_edges

__all__ = [
    "EPOCH0",
    "POWER_RETURN_MS",
    "Result",
    "Runner",
    "link_faults",
    "press_edges",
    "run",
    "take_edges",
]


@dataclass
class _Device(Lane):
    driver: DriverCore | None = None  # the host's, for this keypad (a host restart: a new one)
    held_in: list[tuple[int, bytes]] = field(default_factory=list)  # stalled keypad->host bytes
    link_ups: int = 0  # the keypad's enumerations seen (rp2040: the host opens each one)


COUNTERS = ("presses", "unprompted", "repeats", "multi_key")  # the firmware's rules counters


@dataclass
class Result:
    ratings: list[dict[str, Any]]
    key_edges: list[dict[str, Any]]
    stats: dict[str, int]
    confirmed: dict[str, int] = field(default_factory=dict)  # per device: ratings thanked for
    counters: dict[str, dict[str, int]] = field(default_factory=dict)  # per device
    latency_ms: list[int] = field(default_factory=list)  # key down -> stored, per rating


class Runner(Timeline[_Device]):
    """The scenario on virtual time with the host's driver core per keypad and a store."""

    def __init__(
        self,
        scenario: Scenario,
        engine: str = "cpython",
        capture: CaptureWriter | None = None,
    ) -> None:
        super().__init__(scenario, engine)
        self.capture = capture
        self.clock_offset = 0  # host_clock_jump: the host's wall clock is off by this much
        self._prompt_ids = 0
        self.store: dict[tuple[str, int], dict[str, Any]] = {}
        self.latency_ms: list[int] = []
        self.stats = {
            "reports_dropped": 0,
            "reports_corrupted": 0,
            "reports_duplicated": 0,
            "duplicates_ignored": 0,
            "bad_spans": 0,
        }
        self.devices = self.lanes

    def make_lane(self, device_id: str, keypad: Keypad) -> _Device:
        return _Device(device_id, keypad)

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
            self.check_power(dev, self.now)

    def on_link_lost(self, lane: _Device, t: int) -> None:
        """The host's side of the link is gone: its connection and anything still in flight.
        (The link comes back when the scenario says: the driver's reconnect delays are not
        this host's.)"""
        if lane.driver is not None:
            lane.driver.link_lost("link down")
        lane.held_in.clear()

    def _driver(self, dev: _Device) -> DriverCore:
        if dev.driver is None:
            dev.driver = DriverCore(
                url=f"sim://{dev.id}",
                clock=self.clock,
                timer=lambda: self.now / 1000,
                software="ratepad-sim",
            )
        return dev.driver

    def _linked(self, dev: _Device) -> DriverCore | None:
        """The driver, if the host's side of the link is open."""
        d = dev.driver
        return d if d is not None and d.state in OPEN_STATES else None

    def _open_session(self, dev: _Device) -> None:
        if isinstance(dev.keypad, Rp2040Keypad) and not dev.keypad.link_ready:
            return  # opened once the host has enumerated it (_follow_enumeration)
        driver = self._driver(dev)
        if driver.state in OPEN_STATES:
            driver.link_lost("link reopened")
        self._to_keypad(dev, self._carry_out(dev, driver.link_up()))

    def _carry_out(self, dev: _Device, actions: list[core.Action]) -> bytes:
        """The driver's actions on this host: the bytes to send (in order), then ratings
        stored (and their ACKs after those bytes), prompts the keypad armed."""
        assert dev.driver is not None
        out = _sent(actions)
        for a in actions:
            if isinstance(a, core.Deliver) and isinstance(a.event, Rating):
                out += self._store(dev, a.event)
            elif isinstance(a, core.Resolve) and isinstance(a.command.waiter, Prompt):
                prompt = a.command.waiter
                if a.result.ok:
                    dev.driver.armed(prompt)
                else:
                    dev.driver.forget_prompt(prompt)
        return out

    def _follow_enumeration(self, dev: _Device) -> None:
        """An emulated keypad that enumerated again (the cable, a power-up, a reboot) is a new
        device to the host: it opens a new session on it."""
        kp = dev.keypad
        if isinstance(kp, Rp2040Keypad) and kp.link_ups != dev.link_ups:
            dev.link_ups = kp.link_ups
            if kp.link_ready:
                self.on_link_lost(dev, self.now)
                self._open_session(dev)

    def _exchange(self, dev: _Device) -> bool:
        """Move the keypad's reports to the host and the host's answers back; True if any."""
        moved = False
        for _ in range(1000):
            driver = dev.driver
            if not (dev.linked and dev.keypad.powered) or driver is None:
                return moved
            if driver.state not in OPEN_STATES:
                return moved
            reports = dev.keypad.read_reports()
            polled = driver.poll()
            replies = _sent(polled) if polled else b""
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
            if data:
                replies += self._carry_out(dev, self._to_host(driver, data))
            self._to_keypad(dev, replies)
        raise ScenarioError(f"{dev.id}: the link does not settle at {self.now} ms")

    def _to_host(self, driver: DriverCore, data: bytes) -> list[core.Action]:
        """Bytes reach the host's driver, possibly in two pieces (split)."""
        if not data:
            return []
        split = self.scenario.link.get("split", 0.0)
        if split and len(data) > 1 and self.rng.random() < split:
            cut = self.rng.randrange(1, len(data))
            return driver.receive(data[:cut]) + driver.receive(data[cut:])
        return driver.receive(data)

    def _store(self, dev: _Device, r: Rating) -> bytes:
        key = (dev.id, r.journal_seq)
        if key in self.store:
            self.stats["duplicates_ignored"] += 1
        else:
            self.latency_ms.append(self.now - (r.time_ms - EPOCH0 - self.clock_offset))
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
        assert dev.driver is not None
        return _sent(dev.driver.confirm(r))

    # -- the timeline's hooks -------------------------------------------------------------------
    def on_power_on(self, lane: _Device, t: int) -> None:
        if lane.linked:  # the keypad re-enumerates; the host reconnects by itself
            self._open_session(lane)

    def on_connect(self, lane: _Device, t: int) -> None:
        if not lane.linked:
            lane.linked = True
            lane.keypad.connect(t)
            if lane.keypad.powered:
                self._open_session(lane)

    def on_disconnect(self, lane: _Device, t: int) -> None:
        lane.linked = False
        self.on_link_lost(lane, t)
        lane.keypad.disconnect(t)

    def on_settle(self, lane: _Device, t: int) -> None:
        self._follow_enumeration(lane)
        self._exchange(lane)

    def link_times(self) -> list[int]:
        times = []
        for dev in self.lanes.values():
            if dev.held_in:
                times.append(dev.held_in[0][0])
            driver = self._linked(dev)
            session = driver.session if driver is not None else None
            if session is not None and dev.linked and dev.keypad.powered:
                due = session.next_deadline()
                if due is not None:  # host clock -> scenario time
                    times.append(max(due - EPOCH0 - self.clock_offset, self.now))
        return times

    @staticmethod
    def _bad_spans(driver: DriverCore) -> int:
        """Undecodable spans the host saw on the link open at the end."""
        open_ = driver.state in OPEN_STATES and driver.session is not None
        return driver.session.bad_spans if open_ and driver.session is not None else 0

    def _command(self, dev: _Device, message: codec.HostMessage, waiter: object = None) -> None:
        driver = self._linked(dev)
        if driver is not None:
            _, actions = driver.request(message, waiter)
            self._to_keypad(dev, self._carry_out(dev, actions))

    def on_host_action(self, a: Action, t: int) -> None:
        if a.do == "host_clock_jump":
            self.clock_offset += a.args["by_ms"]
            return
        if a.do == "host_restart":
            for d in self.lanes.values():
                self.on_link_lost(d, t)
                d.driver = None  # the host's memory is gone
            for d in self.lanes.values():
                if d.linked and d.keypad.powered:
                    self._open_session(d)
            return
        assert a.device is not None
        dev = self.lanes[a.device]
        if a.do == "prompt":
            self._prompt_ids += 1
            driver = self._linked(dev)
            if driver is not None:
                # claim=False: the answering rating is stored like any other (as the agent does)
                prompt, message = driver.new_prompt(
                    a.args.get("staff", ""),
                    a.args.get("timeout_ms", 30000),
                    claim=False,
                    prompt_id=self._prompt_ids,
                )
                self._command(dev, message, prompt)
        elif a.do == "cancel_prompt":
            self._command(dev, codec.CancelPrompt(0))
            if (driver := self._linked(dev)) is not None:
                driver.cancelled(0)
        elif a.do == "login":
            self._command(dev, codec.Login(a.args.get("staff", ""), a.args.get("name", "")))
        elif a.do == "logout":
            self._command(dev, codec.Logout(a.args.get("staff", "")))
        elif a.do == "set_config":
            for k, v in a.args["config"].items():
                self._command(dev, codec.SetConfig(k, str(v)))

    # -- running ------------------------------------------------------------------------------
    def run(self, progress: bool = False) -> Result:
        """Run to ``until_ms``; ``progress``: a progress bar of virtual time on stderr (shown on
        a terminal only)."""
        try:
            return self._run(progress)
        finally:
            self.close_engine()

    def _run(self, progress: bool) -> Result:
        until = self.scenario.until_ms
        if progress:
            import sys

            from tqdm import tqdm

            step = max(until // 200, 1)
            with tqdm(
                total=until, unit="ms", file=sys.stderr, disable=not sys.stderr.isatty()
            ) as bar:
                for t in range(step, until + step, step):
                    self.run_until(min(t, until))
                    bar.update(min(t, until) - bar.n)
        else:
            self.run_until(until)
        for dev in self.lanes.values():
            dev.keypad.advance_to(until)
            self._exchange(dev)
        for dev in self.lanes.values():
            if dev.driver is not None:
                self.stats["bad_spans"] += self._bad_spans(dev.driver)
            self.stats["power_cuts"] = self.stats.get("power_cuts", 0) + len(dev.keypad.power_cuts)
        ratings = [self.store[k] for k in sorted(self.store)]
        edges = [
            {"device": dev.id, "key": key, "down": down, "at_ms": at}
            for dev in sorted(self.lanes.values(), key=lambda d: d.id)
            for at, key, down in dev.keypad.key_edges
        ]
        confirmed = {d.id: d.keypad.journal_next_seq() - 1 for d in self.lanes.values()}
        counters = {d.id: keypad_counters(d.keypad) for d in self.lanes.values()}
        return Result(ratings, edges, self.stats, confirmed, counters, self.latency_ms)


def _sent(actions: list[core.Action]) -> bytes:
    """The bytes the driver's actions send, in order."""
    if not actions:
        return b""
    return b"".join(a.data for a in actions if isinstance(a, core.Send))


def keypad_counters(kp: Keypad) -> dict[str, int]:
    """The firmware's press counters (``rpfw.rules.Rules``) of a simulated keypad."""
    if isinstance(kp, SimulatedKeypad):
        rules = kp.core.rules
        return {name: int(getattr(rules, name)) for name in COUNTERS}
    if isinstance(kp, Rp2040Keypad):
        return {}  # in the emulated chip's RAM: not read
    ref = kp._ref  # the keypad's name in the VM (MicroPythonKeypad), one round trip for all
    values = kp.vm.eval("[" + ", ".join(f"{ref}.core.rules.{n}" for n in COUNTERS) + "]")
    return {name: int(v) for name, v in zip(COUNTERS, values, strict=True)}


def run(
    scenario: Scenario, engine: str = "cpython", capture: CaptureWriter | None = None
) -> Result:
    return Runner(scenario, engine, capture).run()
