"""One back-to-back suite for every way of reaching a keypad (in the style of python-can's
test/back2back_test.py): the same tests run through ``ratepad.open(url)`` against

* ``sim://``  the simulated keypad in-process,
* ``usb://``  pyusb driving the simulated keypad through its simulated backend
              (``usb://ID?backend=sim``: ``usbsim.SimulatedUsbBackend``; real pyusb code, real
              descriptors, interrupt transfers of 64-byte reports),
* ``hid://``  the hidapi API over its simulated backend (``hid://ID?api=sim``:
              ``hidsim.SimulatedHidApi``),
* a real keypad, when ``RATEPAD_DEVICE=URL`` is set (``TestDevice``; tests needing a customer,
  a cable to pull or the keypad's journal skip there).

A subclass of ``Back2Back`` says how to reach the keypad (``url``) and provides the hooks it can:
``press`` (the customer), ``unplug``/``replug`` (the cable), ``unacked`` (the keypad's journal).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

import ratepad
from ratepad.events import CommandResult, Connected, KeyEvent, Lost, Rating
from ratepad.sim.transport import SimTransport
from ratepad.sim.usb.hidsim import registry_bus
from ratepad.transports import open_transport
from ratepad.wire import codec
from ratepad.wire.session import Session

FAST = {"debounce_ms": 5, "chord_ms": 20, "repeat_guard_ms": 0, "thanks_ms": 200}
WAIT = 5.0  # s: generous; waits end as soon as what they wait for happens


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def next_of(kp: ratepad.Keypad, kind: type, match: Callable[[Any], bool] = bool) -> Any:
    """The next event of type ``kind`` (for which ``match`` holds), skipping others."""
    end = time.monotonic() + WAIT
    while (left := end - time.monotonic()) > 0:
        event = kp.next_event(left)
        if isinstance(event, kind) and match(event):
            return event
    raise AssertionError(f"no {kind.__name__} event within {WAIT} s")


def events_until(kp: ratepad.Keypad, done: Callable[[list[Any]], bool]) -> list[Any]:
    """Every event until ``done(events so far)`` holds."""
    events: list[Any] = []
    end = time.monotonic() + WAIT
    while not done(events):
        left = end - time.monotonic()
        assert left > 0, f"not done within {WAIT} s: {events}"
        event = kp.next_event(left)
        if event is not None:
            events.append(event)
    return events


class Back2Back:
    """The suite. Subclasses (``Test*``) name the transport; this class is not collected."""

    serial: ClassVar[str] = "RP-0001"
    can_press: ClassVar[bool] = True
    can_unplug: ClassVar[bool] = True

    # -- hooks ------------------------------------------------------------------------------
    def url(self) -> str:
        raise NotImplementedError

    def setup_rig(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Before each test: make the keypad reachable."""

    def teardown_rig(self) -> None:
        """After each test."""

    def press(self, key: int, hold_ms: int = 120, bounce_ms: int = 0) -> None:
        pytest.skip("nobody to press the keys")

    def unplug(self) -> None:
        pytest.skip("no cable to pull")

    def replug(self) -> None:
        pytest.skip("no cable to pull")

    def unacked(self) -> int | None:
        """Ratings in the keypad's journal not ACKed yet (None: cannot look inside)."""
        return None

    # -- fixtures ---------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def rig(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        self.setup_rig(monkeypatch)
        try:
            yield
        finally:
            self.teardown_rig()

    @pytest.fixture
    def kp(self) -> Iterator[ratepad.Keypad]:
        with ratepad.open(self.url()) as keypad:
            yield keypad

    def needs(self, flag: bool, why: str) -> None:
        if not flag:
            pytest.skip(why)

    # -- the tests --------------------------------------------------------------------------
    def test_hello_and_info(self, kp: ratepad.Keypad) -> None:
        info = kp.info
        assert isinstance(info, Connected)
        assert info.protocol_version == codec.PROTOCOL_VERSION and info.schema_matches
        assert 3 <= info.key_count <= 5 and info.firmware_version
        if self.serial:
            assert info.serial == self.serial

    def test_prompt_press_rating_and_confirm(self, kp: ratepad.Keypad) -> None:
        self.needs(self.can_press, "nobody to press the keys")
        handle = kp.start_prompt("S001", timeout=WAIT)
        self.press(3, bounce_ms=2)
        rating = handle.wait()
        assert (rating.score, rating.staff_id, rating.prompt_id) == (3, "S001", handle.prompt_id)
        assert rating.prompted and not rating.retransmit
        assert kp.info is not None and rating.serial == kp.info.serial
        if self.unacked() is not None:
            assert self.unacked() == 1  # kept on the keypad until confirmed
            kp.confirm(rating)
            assert wait_for(lambda: self.unacked() == 0)  # ACKed: the journal is empty
        else:
            kp.confirm(rating)

    def test_unprompted_press_is_flagged(self, kp: ratepad.Keypad) -> None:
        self.needs(self.can_press, "nobody to press the keys")
        self.press(1)
        rating = next_of(kp, Rating)
        assert rating.score == 1 and rating.prompt_id == 0
        assert not rating.prompted and "unprompted" in rating.flag_names
        kp.confirm(rating)

    def test_get_and_set_config(self, kp: ratepad.Keypad) -> None:
        everything = kp.get_config()  # many config_value frames: several IN reports
        assert len(everything) >= 10 and "debounce_ms" in everything
        old = everything["debounce"]
        new = "eager" if old != "eager" else "defer"
        try:
            kp.set_config("debounce", new)
            assert kp.get_config("debounce") == {"debounce": new}
        finally:
            kp.set_config("debounce", old)
        assert kp.get_config("debounce") == {"debounce": old}

    def test_bad_setting_is_a_command_error(self, kp: ratepad.Keypad) -> None:
        with pytest.raises(ratepad.CommandError, match="bad_value") as info:
            kp.set_config("debounce_ms", 9999)
        assert not info.value.result.ok
        with pytest.raises(ratepad.CommandError, match="not_found"):
            kp.get_config("no_such_setting")
        assert kp.get_config("debounce_ms")  # the link is still fine

    def test_prompt_timeout(self, kp: ratepad.Keypad) -> None:
        with pytest.raises(ratepad.RatepadTimeout) as info:
            kp.prompt("S002", timeout=0.3)
        assert isinstance(info.value, TimeoutError)
        assert kp.get_config("debounce_ms")

    def test_key_events_stream(self, kp: ratepad.Keypad) -> None:
        self.needs(self.can_press, "nobody to press the keys")
        kp.key_events(True)
        self.press(2, hold_ms=80)

        def edges(events: list[Any]) -> list[tuple[int, bool]]:
            return [(e.key, e.down) for e in events if isinstance(e, KeyEvent)]

        def ratings(events: list[Any]) -> list[Rating]:
            return [e for e in events if isinstance(e, Rating)]

        events = events_until(kp, lambda ev: len(edges(ev)) >= 2 and bool(ratings(ev)))
        assert edges(events) == [(2, True), (2, False)]
        down, up = (e for e in events if isinstance(e, KeyEvent))
        assert up.uptime_ms - down.uptime_ms >= 40
        kp.key_events(False)
        kp.confirm(ratings(events)[0])  # the press was also an (unprompted) rating

    def test_frames_spanning_several_reports(self) -> None:
        """Raw transport: one write of several frames (> 64 bytes: several OUT reports, the
        last zero-padded) and the answers, split over IN reports, all come through."""
        transport = open_transport(self.url())
        transport.open()
        try:
            session = Session()
            ids = []
            burst = session.open()
            for key in ("debounce_ms", "chord_ms", "thanks_ms", "keys", "stuck_ms", "buzzer"):
                request_id, frame = session.request(codec.GetConfig(key))
                ids.append(request_id)
                burst += frame
            assert len(burst) > 2 * 64
            transport.write(burst)
            results: dict[int, CommandResult] = {}
            end = time.monotonic() + WAIT
            while len(results) < len(ids) and time.monotonic() < end:
                transport.write(session.receive_data(transport.read(0.2)))
                while (event := session.next_event()) is not None:
                    if isinstance(event, CommandResult):
                        results[event.request_id] = event
            assert sorted(results) == sorted(ids)
            assert all(r.ok and len(r.values) == 1 for r in results.values())
            assert session.hello is not None and session.bad_spans == 0
        finally:
            transport.close()

    def test_unplug_and_replug_loses_nothing(self, kp: ratepad.Keypad) -> None:
        self.needs(self.can_press and self.can_unplug, "no customer or no cable")
        handle = kp.start_prompt("S003", timeout=WAIT)
        self.press(4)
        first = handle.wait()  # stored by nobody: not confirmed
        self.unplug()
        lost = next_of(kp, Lost)
        assert lost.serial == first.serial
        time.sleep(0.4)  # a reconnect attempt or two fail while the keypad is away
        self.replug()
        next_of(kp, Connected)
        again = next_of(kp, Rating, lambda r: r.journal_seq == first.journal_seq)
        # the same journal record (the keypad rebooted: the flag "sent before" did not survive)
        assert (again.boot_id, again.uptime_ms) == (first.boot_id, first.uptime_ms)
        assert (again.score, again.staff_id, again.prompt_id) == (4, "S003", first.prompt_id)
        kp.confirm(again)
        if self.unacked() is not None:
            assert wait_for(lambda: self.unacked() == 0)
        assert kp.get_config("debounce_ms")  # and the link works as before


# -- simulated keypads ------------------------------------------------------------------------
class SimulatedBack2Back(Back2Back):
    """The keypad is ``ratepad.sim.get(serial, FAST)``, factory-fresh for every test."""

    sim: ratepad.sim.RealtimeKeypad

    def setup_rig(self, monkeypatch: pytest.MonkeyPatch) -> None:
        ratepad.sim.reset()
        self.sim = ratepad.sim.get(self.serial, FAST)

    def teardown_rig(self) -> None:
        ratepad.sim.reset()

    def press(self, key: int, hold_ms: int = 120, bounce_ms: int = 0) -> None:
        self.sim.press(key, hold_ms, bounce_ms)

    def unacked(self) -> int:
        core = self.sim.keypad.core
        return int(core.journal.unacked()) if core is not None else -1


class TestSim(SimulatedBack2Back):
    """``sim://``; its cable is a stand-in: the transport fails while "unplugged"."""

    def url(self) -> str:
        return f"sim://{self.serial}"

    def setup_rig(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().setup_rig(monkeypatch)
        self.unplugged = False
        rig = self
        plain_open, plain_read, plain_write = (
            SimTransport.open,
            SimTransport.read,
            SimTransport.write,
        )

        def open_(t: SimTransport) -> None:
            if rig.unplugged:
                raise ratepad.DeviceNotFoundError(f"{t.url}: unplugged")
            plain_open(t)

        def read(t: SimTransport, timeout: float) -> bytes:
            if rig.unplugged:
                raise ratepad.DisconnectedError(f"{t.url}: unplugged")
            return plain_read(t, timeout)

        def write(t: SimTransport, data: bytes) -> None:
            if rig.unplugged:
                raise ratepad.DisconnectedError(f"{t.url}: unplugged")
            plain_write(t, data)

        monkeypatch.setattr(SimTransport, "open", open_)
        monkeypatch.setattr(SimTransport, "read", read)
        monkeypatch.setattr(SimTransport, "write", write)

    def unplug(self) -> None:
        self.unplugged = True
        self.sim.disconnect()

    def replug(self) -> None:
        self.sim.power_cycle()  # bus powered: it boots again
        self.unplugged = False


class SimulatedBusBack2Back(SimulatedBack2Back):
    """The keypad on the simulated USB bus of the ``ratepad.sim`` registry; its cable is that
    bus's."""

    def unplug(self) -> None:
        registry_bus().unplug(self.serial)

    def replug(self) -> None:
        registry_bus().replug(self.serial)


class TestUsb(SimulatedBusBack2Back):
    """``usb://`` through pyusb and the simulated backend."""

    def url(self) -> str:
        return f"usb://{self.serial}?backend=sim"

    def setup_rig(self, monkeypatch: pytest.MonkeyPatch) -> None:
        pytest.importorskip("usb.core")
        super().setup_rig(monkeypatch)


class TestHid(SimulatedBusBack2Back):
    """``hid://`` through the hidapi API over simulated keypads."""

    def url(self) -> str:
        return f"hid://{self.serial}?api=sim"


class TestHidDefaultUrl(TestHid):
    """``hid://`` without a serial: the only keypad plugged in (and the same one after a
    replug)."""

    def url(self) -> str:
        return "hid://?api=sim"


# -- a real keypad ----------------------------------------------------------------------------
@pytest.mark.skipif(not os.environ.get("RATEPAD_DEVICE"), reason="set RATEPAD_DEVICE=URL")
class TestDevice(Back2Back):
    """A keypad on this machine: ``RATEPAD_DEVICE=hid://RP-0001 pytest tests/test_back2back.py
    -k TestDevice``. Only what needs no customer and no cable runs; settings are restored."""

    serial = ""
    can_press = False
    can_unplug = False

    def url(self) -> str:
        return os.environ["RATEPAD_DEVICE"]
