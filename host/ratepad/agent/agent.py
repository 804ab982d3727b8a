"""The window agent: keypads in, durable store, ACKs out, a local bridge on the side.

    keypad --(Keypad reader)--> DeviceWorker --queue--> Writer: commit batch, THEN confirm (ACK)
                                     |                     \\--> Hub (stored ratings, status ...)
                                     \\--> status snapshots   --> bridge (HTTP, SSE), demo

* One ``DeviceWorker`` per configured URL owns one ``Keypad`` (which reconnects by itself),
  turns its events into store items and keeps the latest status.
* One ``Writer`` thread batches items from every keypad (group commit: whatever is queued, up to
  ``batch_max`` items collected for at most ``batch_ms``), commits the batch, and only then
  confirms its ratings, which ACKs them. Killed at any moment, the agent loses nothing that was
  ACKed (it was committed first) and duplicates nothing (the store's UNIQUE key): the keypad
  sends unACKed ratings again, and a stored one is simply ACKed again.
* Link watchdog: a keypad that said hello but then sent nothing (no status, no rating) within
  ``hello_check_s``, or was silent for ``stall_s``, gets its link closed so that the Keypad
  reconnects and says host_hello again (a keypad that re-enumerated by itself, after a power
  cycle or replug on a link that never reported an error, waits for that host_hello).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..cli_device import event_json
from ..errors import LocalProtocolError, RatepadError
from ..events import Connected, Event, Lost, Rating, Status
from ..keypad import Keypad, PromptHandle
from ..transports import open_transport
from .config import AgentConfig, ConfigError
from .hub import AgentEvent, Hub
from .store import (
    DeviceSnapshot,
    Item,
    PromptClosed,
    PromptIssued,
    RatingItem,
    Store,
    StoreError,
    now_ms,
)
from .tap import CaptureTap, device_label

if TYPE_CHECKING:
    from .bridge import Bridge
    from .upload import Uploader

__all__ = ["Agent", "DeviceUnavailable", "DeviceWorker", "UnknownDevice", "Writer"]

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class UnknownDevice(RatepadError):
    """No configured keypad has this serial."""


class DeviceUnavailable(RatepadError):
    """The keypad is configured but not connected now."""


# -- the writer ----------------------------------------------------------------------------------


class Writer:
    """Batches items from every keypad into transactions; ACKs ratings after each commit."""

    def __init__(
        self,
        store: Store,
        hub: Hub | None = None,
        *,
        batch_max: int = 500,
        batch_ms: float = 20.0,
        log: Log = _quiet,
    ) -> None:
        self.store = store
        self.hub = hub or Hub()
        self.batch_max = batch_max
        self.batch_ms = batch_ms
        self.log = log
        self._queue: queue.Queue[Item | None] = queue.Queue()  # None: stop
        self._thread = threading.Thread(target=self._run, name="ratepad-writer", daemon=True)
        self._last_sweep = 0.0
        # counters (read by the bench and tests)
        self.batches = 0
        self.stored = 0
        self.duplicates = 0
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: Item) -> None:
        self._queue.put(item)

    def stop(self, timeout: float = 10.0) -> None:
        """Commit (and ACK) whatever is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        q = self._queue
        while True:
            try:
                first = q.get(timeout=0.5)
            except queue.Empty:
                self._sweep()
                continue
            stopping = first is None
            batch: list[Item] = [] if first is None else [first]
            deadline = time.monotonic() + self.batch_ms / 1000
            # group commit: take what is queued now (it arrived during the last commit); the
            # time bound only matters while producers keep trickling items in
            while len(batch) < self.batch_max and time.monotonic() < deadline:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    continue
                batch.append(item)
            if batch:
                self.commit(batch)
            if stopping and q.empty():
                return
            if stopping:
                q.put(None)
            self._sweep()

    def commit(self, batch: list[Item]) -> None:
        """Store ``batch`` in one transaction, then confirm its ratings (never before)."""
        conflicts = self.store.conflicts
        try:
            rows = self.store.apply(batch)
        except StoreError as exc:
            # nothing is ACKed: the keypads keep these ratings and send them again
            self.failures += 1
            self.log(f"store error, {len(batch)} items not stored (they will come again): {exc}")
            time.sleep(0.2)
            return
        self.batches += 1
        if self.store.conflicts > conflicts:
            self.log(
                f"{self.store.conflicts - conflicts} ratings differ from stored ratings with the "
                "same keypad serial and journal seq (journal reset?): kept in rating_conflicts"
            )
        for item, row in zip(batch, rows, strict=True):
            if not isinstance(item, RatingItem):
                continue
            if row is None:
                self.duplicates += 1
            else:
                self.stored += 1
            if item.source is not None:
                # link down: the rating stays unACKed on the keypad, comes again, is deduped
                with contextlib.suppress(RatepadError):
                    item.source.confirm(item.rating)
        for row in rows:
            if row is not None:
                self.hub.publish(AgentEvent("rating", row.as_json(), row.id))

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= 1.0:
            self._last_sweep = now
            with contextlib.suppress(StoreError):
                self.store.expire_prompts()


# -- one keypad ----------------------------------------------------------------------------------
class DeviceWorker:
    """Connects one keypad URL (retrying), feeds its events to the writer, watches the link."""

    def __init__(self, agent: Agent, url: str) -> None:
        self.agent = agent
        self.url = url
        self.label = device_label(url)
        self.keypad: Keypad | None = None
        self.info: Connected | None = None
        self.status: Status | None = None
        self.connected = False
        self.last_error = ""
        self._stop = threading.Event()
        self._last_event = time.monotonic()
        self._hello_at: float | None = None
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
            raise DeviceUnavailable(f"keypad {self.serial or self.url} is not connected")
        return kp

    # -- the loop -----------------------------------------------------------------------------
    def _open(self) -> Keypad | None:
        agent = self.agent
        try:
            transport = open_transport(self.url)
            if agent.tap is not None:
                transport = agent.tap.wrap(transport, self.label)
            return Keypad(transport, software="ratepad-agent")
        except RatepadError as exc:
            if str(exc) != self.last_error:
                agent.log(f"{self.label}: cannot connect: {exc} (retrying)")
            self.last_error = str(exc)
            return None

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            kp = self.keypad
            if kp is None:
                kp = self._open()
                if kp is None:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.5
                self.last_error = ""
                self.keypad = kp
                self._last_event = time.monotonic()
            event = kp.next_event(0.1)
            if event is not None:
                self._handle(kp, event)
            self._watchdog(kp)

    def _handle(self, kp: Keypad, event: Event) -> None:
        agent = self.agent
        self._last_event = time.monotonic()
        if isinstance(event, Rating):
            self._hello_at = None
            agent.writer.submit(RatingItem(event, kp))
        elif isinstance(event, Status):
            self._hello_at = None
            self.status = event
            agent.writer.submit(DeviceSnapshot(event.serial, self.url, True, status=event))
            agent.publish("status", event)
        elif isinstance(event, Connected):
            self._hello_at = self._last_event
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

    def _watchdog(self, kp: Keypad) -> None:
        now = time.monotonic()
        cfg = self.agent.config
        reason = ""
        if self._hello_at is not None and now - self._hello_at > cfg.hello_check_s:
            reason = "hello without status"
        elif now - self._last_event > cfg.stall_s:
            reason = f"silent for {cfg.stall_s:g} s"
        if reason:
            self.agent.log(f"{self.label}: link stalled ({reason}), reconnecting")
            self._hello_at = None
            self._last_event = now
            with contextlib.suppress(RatepadError, OSError):
                kp.transport.close()  # the reader sees the link gone and reconnects


# -- the agent -----------------------------------------------------------------------------------
class Agent:
    """Runs the keypads of ``config``, the writer and (if ``listen``) the HTTP bridge."""

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
        self.tap = CaptureTap(config.capture) if config.capture else None
        self.writer = Writer(
            self.store, self.hub, batch_max=config.batch_max, batch_ms=config.batch_ms, log=log
        )
        self.workers = [DeviceWorker(self, url) for url in dict.fromkeys(config.devices)]
        self.bridge: Bridge | None = None
        self.uploader: Uploader | None = None
        self.token: str | None = None
        self._last_prompt: dict[str, int] = {}
        self._started = False
        self._stopped = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Agent:
        self._started = True
        self.writer.start()
        for w in self.workers:
            w.start()
        if self.config.listen is not None:
            from .bridge import Bridge, load_or_create_token

            self.token = self.config.token or load_or_create_token(self.config.token_file)
            bridge = Bridge(self, self.config.listen, self.token)
            bridge.start()
            self.bridge = bridge
        if self.config.upload is not None:
            from .upload import Uploader

            self.uploader = Uploader(self.store.path, self.config.upload, log=self.log).start()
        return self

    @property
    def bridge_url(self) -> str | None:
        return self.bridge.url if self.bridge is not None else None

    def stop(self) -> None:
        """Graceful stop: no new requests, commit and ACK what was received, close the links."""
        if self._stopped:
            return
        self._stopped = True
        if self.bridge is not None:
            self.bridge.stop()
        for w in self.workers:
            w.stop_reading(wait=False)
        for w in self.workers:
            w.stop_reading()
        if self._started:
            self.writer.stop()
        if self.uploader is not None:
            self.uploader.stop()  # whatever it had not sent yet goes next time
        closers = [threading.Thread(target=w.close) for w in self.workers]
        for t in closers:
            t.start()
        for t in closers:
            t.join()
        self.hub.close()
        if self.tap is not None:
            self.tap.close()
        self.store.close()

    def __enter__(self) -> Agent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def publish(self, kind: str, event: Event) -> None:
        data = event_json(event)
        data.pop("event", None)
        self.hub.publish(AgentEvent(kind, data))

    # -- keypads, for the bridge and the demo ---------------------------------------------------
    def device(self, serial: str) -> DeviceWorker:
        for w in self.workers:
            if w.serial == serial:
                return w
        raise UnknownDevice(f"no keypad {serial!r}")

    def prompt(self, serial: str, staff: str = "", timeout: float = 30.0) -> PromptHandle:
        """Arm keypad ``serial``; the prompt is recorded (for response rates)."""
        kp = self.device(serial).require()
        handle = kp.start_prompt(staff, timeout)
        self._last_prompt[serial] = handle.prompt_id
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
        self.device(serial).require().cancel_prompt(prompt_id)
        # 0 cancels whatever is armed: most likely the last prompt this agent issued
        closed = prompt_id or self._last_prompt.get(serial, 0)
        if closed:
            self.writer.submit(PromptClosed(serial, closed, "cancelled", now_ms()))

    def login(self, serial: str, staff: str, name: str = "") -> None:
        self.device(serial).require().login(staff, name)

    def logout(self, serial: str, staff: str = "") -> None:
        self.device(serial).require().logout(staff)
