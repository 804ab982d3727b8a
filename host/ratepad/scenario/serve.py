"""``ratepad sim SCENARIO --serve HOST:PORT``: a scenario's keypads on the wall clock, over TCP.

The scenario's timeline runs on virtual time = (wall time since the start) * ``speed``; each keypad
is served as ``tcp://HOST:PORT/ID`` to whatever host connects (``ratepad.open(url)``, the agent).
One scheduler thread drives every keypad on the timeline the virtual-time runner uses (same presses,
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

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from ..sim.serve import Dropped, KeypadServer, Refused
from ..transports.base import to_reports
from .model import Scenario, ScenarioError
from .timeline import HOST_ACTIONS, Keypad, Lane, Timeline, check_engine, link_faults

__all__ = ["HOST_ACTIONS", "ScenarioServer", "ServeError", "parse_address", "skipped_notes"]


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
        if do in ("host_restart", "host_clock_jump"):
            notes.append(f"skipping {what}: {do} has no meaning with --serve")
        else:
            notes.append(f"skipping {what}: host actions are up to the host that connects")
    return notes


@dataclass
class _Device(Lane):
    fw_linked: bool = False  # the firmware's link: scenario link up and a host attached
    owner: int = 0  # the attached connection (0: none)
    out: bytearray = field(default_factory=bytearray)  # stream bytes for the attached host


class ScenarioServer(Timeline[_Device]):
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
        check_engine(engine)
        self.speed = speed
        self.stats: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._tokens = 0
        self._t0 = 0.0
        self._stopped = False
        self._thread: threading.Thread | None = None
        try:
            self.server = KeypadServer(address, self._lookup)
        except OSError as exc:
            host, port = address
            raise ServeError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        try:
            super().__init__(scenario, engine)
        except BaseException:
            self.server.server_close()
            raise
        self.devices = self.lanes

    def make_lane(self, device_id: str, keypad: Keypad) -> _Device:
        return _Device(device_id, keypad)

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
            self.run_until(0)
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
            for dev in self.lanes.values():
                self._drop(dev, self.now)
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self.server.shutdown()
        self.server.server_close()
        self.close_engine()

    def _schedule(self) -> None:
        until = self.scenario.until_ms
        with self._cond:
            while not self._stopped:
                now = min(self.now_ms(), until)
                self.run_until(now)
                if now >= until:
                    break
                t = self.next_time()
                target = until if t is None else min(t, until)
                wait = self._t0 + target / (1000 * self.speed) - time.monotonic()
                self._cond.wait(min(max(wait, 0.0005), 0.5))
            self._stopped = True
            for dev in self.lanes.values():
                self._drop(dev, self.now)
            self._cond.notify_all()

    # -- the timeline's hooks: the TCP connection is the USB link ------------------------------
    def on_disconnect(self, lane: _Device, t: int) -> None:
        lane.linked = False  # refused until connect; the firmware unlinks with the host
        self._drop(lane, t)

    def on_link_lost(self, lane: _Device, t: int) -> None:
        self._drop(lane, t)

    def on_power_on(self, lane: _Device, t: int) -> None:
        """Unlinked: it re-enumerates when the host reconnects."""

    def on_output(self, lane: _Device, t: int) -> None:
        self._collect(lane)

    def on_settle(self, lane: _Device, t: int) -> None:
        self._collect(lane)

    def _drop(self, dev: _Device, t: int) -> None:
        """The attached host loses the keypad (its connection is shut down)."""
        if dev.fw_linked:
            dev.fw_linked = False
            dev.keypad.disconnect(max(t, self.now))
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
            self.check_power(dev, now)
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
            self.run_until(min(self.now_ms(), self.scenario.until_ms))
        return self.now

    def _from_host(self, dev: _Device, token: int, data: bytes, rx: bytearray) -> None:
        with self._cond:
            if dev.owner != token:
                return
            now = self._sync()
            if dev.owner != token:  # the timeline just took the keypad away
                return
            if not any(self.scenario.link.values()):
                dev.keypad.write(data, now)
                self.check_power(dev, now)
            else:  # faults act on reports: whole frames, cut as the runner cuts them
                rx.extend(data)
                end = rx.rfind(0) + 1
                chunk = bytes(rx[:end])
                del rx[:end]
                for report in self._faulty(to_reports(chunk)):
                    if dev.owner != token:
                        break
                    dev.keypad.write(report, now)
                    self.check_power(dev, now)
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
