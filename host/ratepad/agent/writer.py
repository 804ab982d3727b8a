"""The writer: batches items from every keypad into transactions; ACKs ratings after each commit.

* Group commit: whatever is queued, up to ``batch_max`` items collected for at most
  ``batch_ms``, in one transaction; only then are its ratings confirmed, which ACKs them.
* The writer cannot be stopped by what a keypad sends: the store range-checks every rating and
  quarantines one it cannot store as a rating (ACKed after that commit, like any other); a batch
  the database refuses is retried item by item, so one bad item is isolated (a rating goes to
  the quarantine, anything else is logged and dropped) and the rest is stored. Should the writer
  thread die all the same, ``Writer.failure`` says why, ``health()`` reports it and a ``health``
  event goes to the hub: never an agent that runs on without storing.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable

from ..errors import RatepadError
from .hub import AgentEvent, Hub
from .store import Item, Quarantined, RatingItem, Store, StoredRating, StoreError, StoreRowError

__all__ = ["Writer"]

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


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
