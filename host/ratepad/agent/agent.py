"""The window agent's core: keypads in, durable store, ACKs out (``app.py`` wires the local
bridge and the uploader beside it).

    keypad --(Keypad reader)--> DeviceWorker --queue--> Writer: commit batch, THEN confirm (ACK)
                                     |                     \\--> Hub (stored ratings, status ...)
                                     \\--> status snapshots   --> bridge (HTTP, SSE), demo

* One ``DeviceWorker`` per configured URL owns one ``Keypad`` (which reconnects by itself),
  turns its events into store items and keeps the latest status.
* One ``Writer`` thread (``writer.py``) batches items from every keypad, commits the batch, and
  only then confirms its ratings, which ACKs them. Killed at any moment, the agent loses nothing
  that was ACKed (it was committed first) and duplicates nothing (the store's UNIQUE key): the
  keypad sends unACKed ratings again, and a stored one is simply ACKed again. A writer that
  died makes ``health()`` say so and ``ratepad agent`` exit non-zero, so that its supervisor
  restarts it.
* Link watchdog (the driver core's ``Watchdog``): a keypad that said hello but then sent nothing
  (no status, no rating) within ``hello_check_s``, or was silent for ``stall_s``, gets its link
  closed so that the Keypad reconnects and says host_hello again (a keypad that re-enumerated by
  itself, after a power cycle or replug on a link that never reported an error, waits for that
  host_hello).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..capture.tap import CaptureTap, device_label
from ..errors import (
    DeviceUnavailableError,
    LocalProtocolError,
    RatepadError,
    UnknownDeviceError,
)
from ..eventformat import event_json
from ..events import Connected, Event, Lost, Rating, Status
from ..keypad import Keypad, PromptHandle, ReconnectPolicy, Watchdog
from ..transports import open_transport
from .config import AgentConfig, ConfigError, create_private_file
from .hub import AgentEvent, Hub
from .store import DeviceSnapshot, PromptClosed, PromptIssued, RatingItem, Store, now_ms
from .writer import Writer

__all__ = ["AgentCore", "DeviceWorker"]

Log = Callable[[str], None]

# a keypad URL that cannot be opened (absent, or an incompatible keypad): try again, backing off
OPEN_RETRY = ReconnectPolicy("backoff", delay=0.5, max_delay=5.0)


def _quiet(_: str) -> None:
    pass


# -- one keypad ----------------------------------------------------------------------------------
class DeviceWorker:
    """Connects one keypad URL (retrying), feeds its events to the writer, watches the link."""

    def __init__(self, agent: AgentCore, url: str) -> None:
        self.agent = agent
        self.url = url
        self.label = device_label(url)
        self.keypad: Keypad | None = None
        self.info: Connected | None = None
        self.status: Status | None = None
        self.connected = False
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"agent-{self.label}", daemon=True)

    @property
    def serial(self) -> str | None:
        return self.info.serial if self.info else None

    def start(self) -> None:
        self._thread.start()

    def stop_reading(self, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread.is_alive():
            self._thread.join(timeout=10)

    def close(self) -> None:
        kp, self.keypad = self.keypad, None
        if kp is not None:
            kp.close()

    def require(self) -> Keypad:
        kp = self.keypad
        if kp is None or not self.connected:
            raise DeviceUnavailableError(f"keypad {self.serial or self.url} is not connected")
        return kp

    # -- the loop -----------------------------------------------------------------------------
    def _open(self) -> Keypad | None:
        agent = self.agent
        try:
            transport = open_transport(self.url)
            if agent.tap is not None:
                transport = agent.tap.wrap(transport, self.label)
            cfg = agent.config
            watchdog = Watchdog(cfg.hello_check_s, cfg.stall_s)
            return Keypad(transport, software="ratepad-agent", watchdog=watchdog)
        except RatepadError as exc:
            if str(exc) != self.last_error:
                agent.log(f"{self.label}: cannot connect: {exc} (retrying)")
            self.last_error = str(exc)
            return None

    def _run(self) -> None:
        attempt = 0  # tries to open the keypad since it last opened (the policy's backoff)
        while not self._stop.is_set():
            kp = self.keypad
            if kp is None:
                kp = self._open()
                if kp is None:
                    self._stop.wait(OPEN_RETRY.delay_for(attempt) or 0)
                    attempt += 1
                    continue
                attempt = 0
                self.last_error = ""
                self.keypad = kp
            event = kp.next_event(0.1)
            if event is not None:
                self._handle(kp, event)
            elif kp.closed:  # the Keypad ended for good (an incompatible keypad): start over
                self.keypad = None
                kp.close()
                self._stop.wait(OPEN_RETRY.delay_for(attempt) or 0)
                attempt += 1
                continue

    def _handle(self, kp: Keypad, event: Event) -> None:
        agent = self.agent
        if isinstance(event, Rating):
            agent.writer.submit(RatingItem(event, kp))
        elif isinstance(event, Status):
            self.status = event
            agent.writer.submit(DeviceSnapshot(event.serial, self.url, True, status=event))
            agent.publish("status", event)
        elif isinstance(event, Connected):
            self.info = event
            agent.writer.submit(DeviceSnapshot(event.serial, self.url, True, hello=event))
            if not self.connected:
                self.connected = True
                agent.log(
                    f"{self.label}: connected, keypad {event.serial} firmware "
                    f"{event.firmware_version}, {event.journal_used} ratings waiting"
                )
                agent.publish("connected", event)
        elif isinstance(event, Lost) and self.connected:
            self.connected = False
            agent.log(f"{self.label}: link lost")
            agent.publish("lost", event)
            if self.serial:
                agent.writer.submit(DeviceSnapshot(self.serial, self.url, False))


# -- the agent ---------------------------------------------------------------------------------
class AgentCore:
    """Runs the keypads of ``config`` into the store through the writer; the hub tells the
    rest. The bridge and the uploader are wired beside it by ``app.Agent``."""

    def __init__(self, config: AgentConfig, *, log: Log = _quiet, store: Store | None = None):
        for url in config.devices:
            try:
                open_transport(url)  # checks the URL without opening anything
            except LocalProtocolError as exc:
                raise ConfigError(str(exc)) from None
        self.config = config
        self.log = log
        self.hub = Hub()
        self.store = store if store is not None else Store(config.db, config.mapping)
        self.tap = None
        if config.capture:
            try:
                self.tap = CaptureTap(create_private_file(config.capture, "capture file"))
            except (ConfigError, RatepadError, OSError) as exc:
                self.store.close()
                raise ConfigError(str(exc)) from None
        self.writer = Writer(
            self.store, self.hub, batch_max=config.batch_max, batch_ms=config.batch_ms, log=log
        )
        self.workers = [DeviceWorker(self, url) for url in dict.fromkeys(config.devices)]
        self._started = False
        self.stopped = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> AgentCore:
        self._started = True
        self.writer.start()
        for w in self.workers:
            w.start()
        return self

    def stop(self) -> None:
        """Graceful stop: commit and ACK what was received, close the links."""
        if self.stopped:
            return
        self.stopped = True
        for w in self.workers:
            w.stop_reading(wait=False)
        for w in self.workers:
            w.stop_reading()
        if self._started:
            self.writer.stop()
        closers = [threading.Thread(target=w.close) for w in self.workers]
        for t in closers:
            t.start()
        for t in closers:
            t.join()
        self.hub.close()
        if self.tap is not None:
            self.tap.close()
        self.store.close()

    def __enter__(self) -> AgentCore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def health(self) -> dict[str, object]:
        """Is the writer storing, how many keypads are connected."""
        out = self.writer.health()
        out["devices"] = len(self.workers)
        out["connected"] = sum(1 for w in self.workers if w.connected)
        return out

    def publish(self, kind: str, event: Event) -> None:
        data = event_json(event)
        data.pop("event", None)
        self.hub.publish(AgentEvent(kind, data))

    # -- keypads, for the bridge and the demo ---------------------------------------------------
    def device(self, serial: str) -> DeviceWorker:
        for w in self.workers:
            if w.serial == serial:
                return w
        raise UnknownDeviceError(f"no keypad {serial!r}")

    def prompt(
        self, serial: str, staff: str = "", timeout: float = 30.0, prompt_id: int | None = None
    ) -> PromptHandle:
        """Arm keypad ``serial``; the prompt is recorded (for response rates)."""
        kp = self.device(serial).require()
        # claim=False: the answering rating goes to events(), where the writer stores it
        handle = kp.start_prompt(staff, timeout, claim=False, prompt_id=prompt_id)
        self.writer.submit(
            PromptIssued(serial, handle.prompt_id, staff, int(timeout * 1000), now_ms())
        )
        return handle

    def wait_answer(self, serial: str, prompt_id: int, timeout: float) -> dict[str, object] | None:
        """The stored rating answering a prompt (None after ``timeout``)."""
        return self.hub.wait_answer(serial, prompt_id, timeout)

    def prompt_timed_out(self, serial: str, prompt_id: int) -> None:
        self.writer.submit(PromptClosed(serial, prompt_id, "timed_out", now_ms()))

    def cancel(self, serial: str, prompt_id: int = 0) -> None:
        kp = self.device(serial).require()
        kp.cancel_prompt(prompt_id)
        # 0 cancels whatever is armed: most likely the last prompt armed on it
        closed = prompt_id or kp.last_prompt_id
        if closed:
            self.writer.submit(PromptClosed(serial, closed, "cancelled", now_ms()))

    def login(self, serial: str, staff: str, name: str = "") -> None:
        self.device(serial).require().login(staff, name)

    def logout(self, serial: str, staff: str = "") -> None:
        self.device(serial).require().logout(staff)
