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
* The writer cannot be stopped by what a keypad sends: the store range-checks every rating and
  quarantines one it cannot store as a rating (ACKed after that commit, like any other); a batch
  the database refuses is retried item by item, so one bad item is isolated (a rating goes to
  the quarantine, anything else is logged and dropped) and the rest is stored. Should the writer
  thread die all the same, ``Writer.failure`` says why, ``Agent.health()`` reports it, a
  ``health`` event goes to the hub, and ``ratepad agent`` exits non-zero so that its supervisor
  restarts it: never an agent that runs on without storing.
* Link watchdog (the driver core's ``Watchdog``): a keypad that said hello but then sent nothing
  (no status, no rating) within ``hello_check_s``, or was silent for ``stall_s``, gets its link
  closed so that the Keypad reconnects and says host_hello again (a keypad that re-enumerated by
  itself, after a power cycle or replug on a link that never reported an error, waits for that
  host_hello).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

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
from .config import AgentConfig, ConfigError, create_private_file, load_or_create_token
from .hub import AgentEvent, Hub
from .store import (
    DeviceSnapshot,
    Item,
    PromptClosed,
    PromptIssued,
    Quarantined,
    RatingItem,
    Store,
    StoredRating,
    StoreError,
    StoreRowError,
    now_ms,
)

if TYPE_CHECKING:
    from .bridge import Bridge
    from .upload import Uploader

__all__ = ["Agent", "DeviceWorker", "Writer"]

Log = Callable[[str], None]

# a keypad URL that cannot be opened (absent, or an incompatible keypad): try again, backing off
OPEN_RETRY = ReconnectPolicy("backoff", delay=0.5, max_delay=5.0)


def _quiet(_: str) -> None:
    pass


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
        self.quarantined = 0
        self.dropped = 0  # non-rating items the database refused (status snapshots, prompts)
        self.failure: str | None = None  # why the thread died (None while it runs)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.failure is None

    def submit(self, item: Item) -> None:
        self._queue.put(item)

    def stop(self, timeout: float = 10.0) -> None:
        """Commit (and ACK) whatever is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug: say so loudly, never run on without storing
            self.failure = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                self.log(f"writer stopped: {self.failure}; no rating is stored any more")
            with contextlib.suppress(Exception):
                self.hub.publish(AgentEvent("health", {"ok": False, "writer": self.failure}))

    def _loop(self) -> None:
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
        except StoreRowError as exc:
            # the database refused one item's values: store the batch item by item instead,
            # so that one bad item does not hold back (or, resent forever, block) the others
            self.log(f"store refused a batch ({exc}): storing its {len(batch)} items one by one")
            self._commit_one_by_one(batch)
            return
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
        self._confirm(batch, rows)

    def _commit_one_by_one(self, batch: list[Item]) -> None:
        for item in batch:
            try:
                rows = self.store.apply([item])
            except StoreRowError as exc:
                if not isinstance(item, RatingItem):
                    self.dropped += 1
                    self.log(f"dropped a {type(item).__name__} the store refuses: {exc}")
                    continue
                try:  # kept raw with the reason, then ACKed: nothing lost, nothing resent
                    rows = [self.store.quarantine(item.rating, str(exc))]
                except StoreError as again:
                    self.failures += 1
                    self.log(f"store error, a rating not stored (it will come again): {again}")
                    continue
            except StoreError as exc:
                self.failures += 1
                self.log(f"store error, an item not stored (it will come again): {exc}")
                continue
            self.batches += 1
            self._confirm([item], rows)

    def _confirm(self, batch: list[Item], rows: list[StoredRating | Quarantined | None]) -> None:
        for item, row in zip(batch, rows, strict=True):
            if not isinstance(item, RatingItem):
                continue
            if row is None:
                self.duplicates += 1
            elif isinstance(row, Quarantined):
                self.quarantined += 1
                r = item.rating
                self.log(
                    f"rating {r.serial!r} seq {r.journal_seq} kept in quarantine: {row.reason} "
                    "(see `ratepad export --quarantine`)"
                )
            else:
                self.stored += 1
            if item.source is not None:
                # link down: the rating stays unACKed on the keypad, comes again, is deduped
                try:
                    item.source.confirm(item.rating)
                except RatepadError:
                    pass
                except Exception as exc:  # a confirmer's bug must not stop the writer
                    self.log(f"cannot ACK rating seq {item.rating.journal_seq}: {exc}")
        for row in rows:
            if isinstance(row, StoredRating):
                self.hub.publish(AgentEvent("rating", row.as_json(), row.id))

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= 1.0:
            self._last_sweep = now
            with contextlib.suppress(StoreError):
                self.store.expire_prompts()

    def health(self) -> dict[str, object]:
        """For status and health endpoints: ``ok`` is False once the writer has stopped."""
        running = self.alive
        return {
            "ok": running,
            "writer": "running" if running else (self.failure or "stopped"),
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "store_errors": self.failures,
        }


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
        self.bridge: Bridge | None = None
        self.uploader: Uploader | None = None
        self.token: str | None = None
        self._started = False
        self._stopped = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Agent:
        self._started = True
        self.writer.start()
        for w in self.workers:
            w.start()
        if self.config.listen is not None:
            from .bridge import Bridge

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

    def health(self) -> dict[str, object]:
        """The agent's health (``GET /v1/health``): is the writer storing, how many keypads
        are connected, and, when uploading, how much waits and why the last try failed."""
        out = self.writer.health()
        out["devices"] = len(self.workers)
        out["connected"] = sum(1 for w in self.workers if w.connected)
        up = self.uploader
        out["upload"] = None
        if up is not None:
            try:
                pending: int | None = self.store.upload_pending()
            except StoreError:
                pending = None
            out["upload"] = {
                "pending": pending,
                "batches": up.batches,
                "ratings": up.ratings,
                "failures": up.failures,
                "rejected": up.rejected,
                "heartbeats": up.heartbeats,
                "last_error": up.last_error,
            }
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
