"""``ratepad sim SCENARIO --serve HOST:PORT``: a scenario's keypads on the wall clock, over TCP.

The scenario's timeline runs on virtual time = (wall time since the start) * ``speed``; each keypad
is served as ``tcp://HOST:PORT/ID`` to whatever host connects (``ratepad.open(url)``, the agent).
One scheduler thread drives every keypad exactly as the virtual-time runner does (same presses,
raw edges, deadlines and power cuts, in the same order), only paced by the wall clock; the bytes
of the connected host are fed in at the virtual time they arrive.

Keypad-side actions apply at their times. The TCP connection is the USB link as the host sees it:

- ``connect`` / ``disconnect``: while the data link is down the server refuses the keypad
  (``ERR``) and drops a connected host, which sees it gone; after ``connect`` it accepts again.
- ``power_off`` / ``power_cycle`` / ``power_cut``: a bus-powered keypad vanishes: its connection
  drops and is refused until power is back; the host reconnects by itself.

The firmware's link is up while the scenario's link is up *and* a host is connected (one host
per keypad; another is refused while it is). Host-side actions (``prompt``, ``cancel_prompt``,
``login``, ``logout``, ``set_config``) are the connected host's business and ``host_restart`` has
no meaning here: they are skipped. The scenario's ``link`` faults apply to the reports in both
directions. After ``until_ms`` every connection is closed and ``run`` returns.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from ..sim.keypad import SimulatedKeypad
from ..sim.mpkeypad import MicroPythonEngine, MicroPythonKeypad
from ..sim.serve import Dropped, KeypadServer, Refused
from ..transports.base import to_reports
from .model import Action, Scenario, ScenarioError
from .runner import POWER_RETURN_MS, link_faults, press_edges, take_edges

__all__ = ["HOST_ACTIONS", "ScenarioServer", "ServeError", "parse_address", "skipped_notes"]

HOST_ACTIONS = ("prompt", "cancel_prompt", "login", "logout", "set_config", "host_restart")

Keypad = SimulatedKeypad | MicroPythonKeypad


class ServeError(ScenarioError):
    """The server cannot start (bad address, port in use)."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; port 0 picks a free one)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ServeError(f"--serve {text!r}: expected HOST:PORT, e.g. 127.0.0.1:7000")
    return host, int(port)


def skipped_notes(scenario: Scenario) -> list[str]:
    """One line per kind of host-side action the server skips."""
    counts = Counter(a.do for a in scenario.events if a.do in HOST_ACTIONS)
    notes = []
    for do in HOST_ACTIONS:
        n = counts.get(do, 0)
        if not n:
            continue
        what = f"{n} '{do}' event{'s' if n > 1 else ''}"
        if do == "host_restart":
            notes.append(f"skipping {what}: host_restart has no meaning with --serve")
        else:
            notes.append(f"skipping {what}: host actions are up to the host that connects")
    return notes


@dataclass
class _Device:
    id: str
    keypad: Keypad
    linked: bool = False  # the scenario's data link
    fw_linked: bool = False  # the firmware's link: scenario link up and a host attached
    owner: int = 0  # the attached connection (0: none)
    out: bytearray = field(default_factory=bytearray)  # stream bytes for the attached host
    edges: list[tuple[int, int, int, int]] = field(default_factory=list)  # (t, order, key, lvl)
    power_on_at: int | None = None
    cuts_seen: int = 0


class ScenarioServer:
    """Serve a scenario's keypads on ``address``; ``run()`` plays the timeline to ``until_ms``.

    Raises ``ServeError`` when the address cannot be served.
    """

    def __init__(
        self,
        scenario: Scenario,
        address: tuple[str, int],
        speed: float = 1.0,
        engine: str = "cpython",
    ) -> None:
        if not speed > 0:
            raise ServeError("--speed must be more than 0")
        if engine not in ("cpython", "micropython"):
            raise ScenarioError(f"unknown engine {engine!r} (cpython or micropython)")
        self.scenario = scenario
        self.speed = speed
        self.rng = random.Random(scenario.seed)
        self.stats: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._actions = list(scenario.events)
        self._i = 0
        self._order = 0
        self._tokens = 0
        self._now = 0  # the latest virtual time applied
        self._t0 = 0.0
        self._stopped = False
        self._thread: threading.Thread | None = None
        try:
            self.server = KeypadServer(address, self._lookup)
        except OSError as exc:
            host, port = address
            raise ServeError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        self._engine: MicroPythonEngine | None = None
        try:
            if engine == "micropython":
                self._engine = MicroPythonEngine()
            self.devices: dict[str, _Device] = {}
            for d in scenario.devices:
                settings = {"keys": d.keys, **d.config}
                keypad: Keypad
                if self._engine is not None:
                    keypad = self._engine.keypad(d.id, settings)
                else:
                    keypad = SimulatedKeypad(d.id, settings=settings)
                self.devices[d.id] = _Device(d.id, keypad)
        except BaseException:
            self.server.server_close()
            if self._engine is not None:
                self._engine.close()
            raise

    # -- what is served ---------------------------------------------------------------------
    @property
    def url_base(self) -> str:
        return self.server.url_base

    def urls(self) -> dict[str, str]:
        """``tcp://HOST:PORT/ID`` of each keypad, in scenario order."""
        return {d.id: f"{self.url_base}/{d.id}" for d in self.scenario.devices}

    def now_ms(self) -> int:
        """Virtual time now (ms since the start)."""
        return int((time.monotonic() - self._t0) * 1000 * self.speed)

    # -- running ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the clock: what is due at 0 ms applies before this returns."""
        with self._cond:
            self._t0 = time.monotonic()
            self._catch_up(0)
        threading.Thread(
            target=self.server.serve_forever, args=(0.1,), name="scenario-server", daemon=True
        ).start()
        self._thread = threading.Thread(target=self._schedule, name="scenario-clock", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the end of the timeline (``until_ms``); True once it is reached."""
        if self._thread is None:
            raise RuntimeError("start() first")
        end = None if timeout is None else time.monotonic() + timeout
        while self._thread.is_alive():  # in slices: Ctrl-C stays responsive
            left = 0.2 if end is None else min(0.2, end - time.monotonic())
            if left <= 0:
                return False
            self._thread.join(left)
        return True

    def run(self) -> None:
        """Start, play the timeline to ``until_ms``, close."""
        try:
            self.start()
            self.wait()
        finally:
            self.close()

    def close(self) -> None:
        """Drop every connection and stop serving."""
        with self._cond:
            self._stopped = True
            for dev in self.devices.values():
                self._drop(dev, self._now)
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self.server.shutdown()
        self.server.server_close()
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def _schedule(self) -> None:
        until = self.scenario.until_ms
        with self._cond:
            while not self._stopped:
                now = min(self.now_ms(), until)
                self._catch_up(now)
                if now >= until:
                    break
                t = self._next_time()
                target = until if t is None else min(t, until)
                wait = self._t0 + target / (1000 * self.speed) - time.monotonic()
                self._cond.wait(min(max(wait, 0.0005), 0.5))
            self._stopped = True
            for dev in self.devices.values():
                self._drop(dev, self._now)
            self._cond.notify_all()

    # -- the timeline (the runner's steps, on the same keypads) -----------------------------
    def _next_time(self) -> int | None:
        times = []
        if self._i < len(self._actions):
            times.append(self._actions[self._i].at_ms)
        for dev in self.devices.values():
            if dev.edges:
                times.append(dev.edges[0][0])
            if dev.power_on_at is not None:
                times.append(dev.power_on_at)
            d = dev.keypad.next_deadline_ms()
            if d is not None:
                times.append(max(d, self._now))
        return min(times) if times else None

    def _catch_up(self, now: int) -> None:
        """Apply everything due up to virtual time ``now``, in time order."""
        while (t := self._next_time()) is not None and t <= now:
            self._step(max(t, self._now))
        self._now = max(self._now, now)

    def _step(self, t: int) -> None:
        self._now = t
        for dev in self.devices.values():
            if dev.power_on_at is not None and dev.power_on_at <= t:
                self._power_on(dev, t)
            self._apply_edges(dev, t)
        while self._i < len(self._actions) and self._actions[self._i].at_ms <= t:
            self._apply(self._actions[self._i], t)
            self._i += 1
            for dev in self.devices.values():  # a press's first edge lands at once
                self._apply_edges(dev, t)
        for dev in self.devices.values():
            dev.keypad.advance_to(t)
            self._check_power(dev, t)
            self._collect(dev)

    def _edge(self, dev: _Device, t: int, key: int, level: int) -> None:
        self._order += 1
        dev.edges.append((t, self._order, key, level))
        dev.edges.sort()

    def _apply_edges(self, dev: _Device, t: int) -> None:
        """Raw edges due by ``t``: the pins change first, then what is due at t (one scan)."""
        raw = take_edges(dev.edges, dev.keypad.raw, t)
        if raw is not None:
            dev.keypad.set_keys(raw, t)
            self._check_power(dev, t)
            self._collect(dev)

    def _apply(self, a: Action, t: int) -> None:
        if a.do in HOST_ACTIONS or a.device is None:
            return
        dev = self.devices[a.device]
        kp = dev.keypad
        if a.do == "connect":
            dev.linked = True  # accepted again; the firmware links when a host attaches
        elif a.do == "disconnect":
            dev.linked = False
            self._drop(dev, t)
        elif a.do == "power_off":
            self._power_off(dev, t)
        elif a.do == "power_on":
            if not kp.powered:
                self._power_on(dev, t)
        elif a.do == "power_cycle":
            self._power_off(dev, t)
            self._power_on(dev, t)
        elif a.do == "power_cut":
            kp.plan_power_cut()
        elif a.do == "press":
            key = kp.key_for_score(a.args["score"])
            edges = press_edges(a.args.get("hold_ms", 120), a.args.get("bounce_ms", 0))
            for offset, level in edges:
                self._edge(dev, t + offset, key, level)
        elif a.do == "raw":
            for offset, level in a.args["edges"]:
                self._edge(dev, t + offset, a.args["key"], level)

    # -- power and link -----------------------------------------------------------------------
    def _power_off(self, dev: _Device, t: int) -> None:
        dev.keypad.power_off()
        self._drop(dev, t)

    def _power_on(self, dev: _Device, t: int) -> None:
        dev.power_on_at = None
        dev.keypad.power_on(t)  # unlinked: it re-enumerates when the host reconnects

    def _check_power(self, dev: _Device, t: int) -> None:
        cuts = dev.keypad.power_cuts
        if len(cuts) > dev.cuts_seen:
            dev.cuts_seen = len(cuts)
            self._drop(dev, t)
            dev.power_on_at = cuts[-1] + POWER_RETURN_MS

    def _drop(self, dev: _Device, t: int) -> None:
        """The attached host loses the keypad (its connection is shut down)."""
        if dev.fw_linked:
            dev.fw_linked = False
            dev.keypad.disconnect(max(t, self._now))
        if dev.owner:
            dev.owner = 0
            dev.out.clear()
            self._cond.notify_all()

    def _collect(self, dev: _Device) -> None:
        if not dev.fw_linked:
            return
        reports = dev.keypad.read_reports()
        if reports:
            for report in self._faulty(reports):
                dev.out.extend(report)
            self._cond.notify_all()

    def _faulty(self, reports: list[bytes]) -> list[bytes]:
        """The scenario's link faults (as in the runner: same kinds, same rates)."""
        link = self.scenario.link
        if not any(link.values()):
            return reports
        return link_faults(reports, link, self.rng, self.stats)

    # -- the host side, one connection at a time --------------------------------------------
    def _lookup(self, device_id: str) -> _Connection | None:
        dev = self.devices.get(device_id)
        return None if dev is None else _Connection(self, dev)

    def _attach(self, dev: _Device) -> int:
        with self._cond:
            if self._stopped:
                raise Refused(f"{dev.id}: the scenario is over")
            now = self._sync()
            if not dev.linked:
                raise Refused(f"{dev.id} is not connected (data link down at {now} ms)")
            if not dev.keypad.powered:
                raise Refused(f"{dev.id} has no power (at {now} ms)")
            if dev.owner:
                raise Refused(f"{dev.id} is in use by another host")
            self._tokens += 1
            dev.owner = self._tokens
            dev.out.clear()
            dev.fw_linked = True
            dev.keypad.connect(now)
            self._check_power(dev, now)
            self._collect(dev)
            self._cond.notify_all()  # the scheduler's next wake-up may have changed
            return dev.owner

    def _detach(self, dev: _Device, token: int) -> None:
        with self._cond:
            if dev.owner == token:
                self._drop(dev, self._sync())

    def _sync(self) -> int:
        """Catch the timeline up to now (never past ``until_ms``); the virtual time now."""
        if not self._stopped:
            self._catch_up(min(self.now_ms(), self.scenario.until_ms))
        return self._now

    def _from_host(self, dev: _Device, token: int, data: bytes, rx: bytearray) -> None:
        with self._cond:
            if dev.owner != token:
                return
            now = self._sync()
            if dev.owner != token:  # the timeline just took the keypad away
                return
            if not any(self.scenario.link.values()):
                dev.keypad.write(data, now)
                self._check_power(dev, now)
            else:  # faults act on reports: whole frames, cut as the runner cuts them
                rx.extend(data)
                end = rx.rfind(0) + 1
                chunk = bytes(rx[:end])
                del rx[:end]
                for report in self._faulty(to_reports(chunk)):
                    if dev.owner != token:
                        break
                    dev.keypad.write(report, now)
                    self._check_power(dev, now)
            self._collect(dev)
            self._cond.notify_all()

    def _to_host(self, dev: _Device, token: int, timeout: float | None) -> bytes:
        with self._cond:

            def gone() -> bool:
                return dev.owner != token or self._stopped

            if not dev.out and not gone():
                self._cond.wait_for(lambda: bool(dev.out) or gone(), timeout)
            if gone():
                raise Dropped(dev.id)
            data = bytes(dev.out)
            dev.out.clear()
            return data


class _Connection:
    """One TCP connection's view of a keypad (what ``KeypadServer`` serves)."""

    def __init__(self, server: ScenarioServer, dev: _Device) -> None:
        self._server = server
        self._dev = dev
        self._token = 0
        self._rx = bytearray()

    def connect(self) -> None:
        self._token = self._server._attach(self._dev)

    def disconnect(self) -> None:
        self._server._detach(self._dev, self._token)

    def read(self, timeout: float | None) -> bytes:
        return self._server._to_host(self._dev, self._token, timeout)

    def write(self, data: bytes) -> None:
        self._server._from_host(self._dev, self._token, data, self._rx)
