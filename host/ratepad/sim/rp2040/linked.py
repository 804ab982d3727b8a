"""An emulated Pico with the host's protocol session on its HID interface: what the keypad
looks like to the agent. The session (``ratepad.wire.session.Session``, the real one) opens
each time the emulated host has enumerated the keypad, every report the keypad sends reaches it
at the simulated time it arrives, and its replies go back as OUT reports::

    link = LinkedPico(EmulatedPico(h, flashfs.fs_image("K1")))
    link.run_until(lambda: link.hello is not None)
    link.command(codec.Prompt(1, 30000, "S001"))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...events import Connected, Rating, Status
from ...transports.base import to_reports
from ...wire import codec
from ...wire.session import Session
from ...wire.stream import Frame, StreamDecoder
from .. import EPOCH0
from .pico import MS, EmulatedPico

__all__ = ["EPOCH0", "LinkedPico"]


class LinkedPico:
    """``pico`` and a host session that confirms (ACKs) every rating unless told not to."""

    def __init__(self, pico: EmulatedPico, *, confirm: bool = True) -> None:
        self.pico = pico
        self.confirm = confirm
        self.session: Session | None = None
        self.sessions = 0
        self.events: list[Any] = []
        self.frames: list[Frame] = []  # every frame the keypad sent, decoded, with its header
        self._decoder = StreamDecoder()
        self._link_ups = 0
        self.on_step: Callable[[], None] | None = None  # called after every step of time

    def clock(self) -> int:
        return EPOCH0 + self.pico.now // MS

    @property
    def hello(self) -> Connected | None:
        return self.session.hello if self.session is not None else None

    def ratings(self) -> list[Rating]:
        return [e for e in self.events if isinstance(e, Rating)]

    def statuses(self) -> list[Status]:
        return [e for e in self.events if isinstance(e, Status)]

    def send(self, data: bytes) -> None:
        for report in to_reports(data):
            self.pico.write_hid(report)

    def command(self, message: codec.HostMessage) -> int:
        assert self.session is not None, "no session: the keypad is not enumerated"
        rid, data = self.session.request(message)
        self.send(data)
        return rid

    def _pump(self) -> None:
        if self.on_step is not None:
            self.on_step()
        ups = int(self.pico.state.get("linkUps", 0))
        if ups != self._link_ups:  # enumerated again: a new device to the host
            self._link_ups = ups
            self.session = None
            self._decoder = StreamDecoder()
            if self.pico.hid_ready:
                self.session = Session(clock=self.clock, software="ratepad-test")
                self.sessions += 1
                self.send(self.session.open())
        reports = self.pico.take_reports()
        if self.session is None:
            return
        data = b"".join(reports)
        for item in self._decoder.feed(data) if data else []:
            if isinstance(item, Frame):
                self.frames.append(item)
        out = self.session.receive_data(data) if data else b""
        out += self.session.poll()
        while (event := self.session.next_event()) is not None:
            self.events.append(event)
            if isinstance(event, Rating) and self.confirm:
                out += self.session.confirm(event)
        if out:
            self.send(out)

    def run_for(self, ms: int, step_ms: int = 1) -> None:
        end = self.pico.now + ms * MS
        while self.pico.now < end:
            self.pico.run_to(min(end, self.pico.now + step_ms * MS))
            self._pump()

    def run_until(self, done: Callable[[], bool], timeout_ms: int = 5000, step_ms: int = 1) -> None:
        end = self.pico.now + timeout_ms * MS
        while not done():
            if self.pico.now >= end:
                raise AssertionError(f"not done after {timeout_ms} simulated ms")
            self.pico.run_to(min(end, self.pico.now + step_ms * MS))
            self._pump()

    def press(self, keys: int, hold_ms: int = 120, bounce_ms: int = 0) -> None:
        """Press ``keys`` (bit i = key i + 1) for ``hold_ms``, the contacts chattering every
        millisecond for ``bounce_ms`` on press and on release, then release."""
        for i in range(bounce_ms):
            self.pico.press_keys(keys if i % 2 == 0 else 0)
            self.run_for(1)
        self.pico.press_keys(keys)
        self.run_for(hold_ms)
        for i in range(bounce_ms):
            self.pico.press_keys(0 if i % 2 == 0 else keys)
            self.run_for(1)
        self.pico.press_keys(0)
