"""The agent's uploader: its store is the outbox, the ratepad server the destination.

    store (SQLite)                              ratepad server
    ratings with id > upload_cursor ──┐
    outbox rows (prompts, staff       ├─ batch ─► POST /api/v1/ingest/batch ─► COMMIT ─► 200
      sessions, devices; triggers)  ──┘                                               │
    mark uploaded (cursor forward, outbox rows of the sent versions gone) ◄───────────┘

* **At least once, stored once.** A batch is marked uploaded only after the server answered
  that it committed it. Killed before that, or the answer lost, the agent sends the same rows
  again and the server, deduping on (serial, journal_seq), stores nothing twice.
* **Resumable after days offline.** The cursor and the outbox are in the store; a restarted
  agent carries on where the last committed batch ended, oldest first, in batches.
* **Backoff.** A failed request (no answer, or 503 while the server's database fails over)
  waits 0.5 s, doubling to ``max_backoff_s`` with jitter (a branch's agents coming back
  together do not hammer the server in step); when the server names a ``Retry-After`` (429,
  503), that, spread by up to half again, capped at ``max_backoff_s``.
* **One batch on the wire at a time**, whether the background thread or ``drain`` sends it.
* TLS: the server's certificate is verified, against ``ca`` when given (a bank's own CA).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import RatepadError
from .config import UploadConfig
from .store import Outbox, Queued, StoreError

__all__ = ["Batch", "UploadError", "Uploader"]

Log = Callable[[str], None]
INGEST_PATH = "api/v1/ingest/batch"


class UploadError(RatepadError):
    """A batch was not committed by the server (network, server down, refused)."""

    def __init__(
        self,
        message: str,
        *,
        refused: bool = False,
        status: int = 0,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.refused = refused  # the server said no (bad key, bad batch): retrying slowly
        self.status = status  # the HTTP status, 0 if there was no answer
        self.retry_after = retry_after  # seconds the server asked for (429, 503), if any


def retry_after(header: str | None) -> float | None:
    """A ``Retry-After`` of delay-seconds (the form the server sends); None if absent or not
    a number of seconds (an HTTP date is left to the agent's own backoff)."""
    try:
        seconds = float(header) if header else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 86_400 else None


def next_delay(exc: UploadError, backoff: float, max_backoff_s: float, jitter: float) -> float:
    """How long to wait after ``exc``: the server's Retry-After when it gave one (a failover,
    a limit), spread by up to half again so a branch's agents do not all come back at once;
    else the doubling backoff; never more than ``max_backoff_s``. ``jitter`` is in [0, 1)."""
    if exc.retry_after is not None:
        return min(exc.retry_after * (1 + jitter / 2), max_backoff_s)
    delay = max_backoff_s if exc.refused else backoff
    return min(delay * (0.5 + jitter / 2), max_backoff_s)


def _quiet(_: str) -> None:
    pass


SPLIT_ON = (413, 422)  # the server cannot take something in the batch: send it in halves
KINDS = {"prompt": "prompts", "session": "sessions", "device": "devices"}


@dataclass
class Batch:
    """What one request carries, and how to mark it uploaded."""

    body: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rating_ids: list[int] = field(default_factory=list)  # of body["ratings"], in order
    items: list[Queued] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        ratings: list[tuple[int, dict[str, Any]]],
        items: list[Queued],
    ) -> Batch:
        batch = cls(rating_ids=[i for i, _ in ratings], items=items)
        batch.body["ratings"] = [r for _, r in ratings]
        for name in KINDS.values():
            batch.body[name] = []
        for kind, _, _, item in items:
            if item is not None:
                batch.body[KINDS[kind]].append(item)
        return batch

    @property
    def last_rating_id(self) -> int | None:
        """Where the ratings cursor moves once the server committed this batch."""
        return self.rating_ids[-1] if self.rating_ids else None

    @property
    def outbox(self) -> list[tuple[str, str, int]]:
        """The outbox rows (kind, key, seq) this batch clears once committed."""
        return [(kind, key, seq) for kind, key, seq, _ in self.items]

    @property
    def empty(self) -> bool:
        return not any(self.body.values())

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.body.values())

    def halves(self) -> list[Batch] | None:
        """Smaller batches carrying the same items in the same order (ratings first), or None
        if this one carries a single item."""
        ratings = list(zip(self.rating_ids, self.body.get("ratings", []), strict=True))
        if len(ratings) + len(self.items) <= 1:
            return None
        out = []
        r_mid, o_mid = (len(ratings) + 1) // 2, (len(self.items) + 1) // 2
        for part in (ratings[:r_mid], ratings[r_mid:]):
            if part:
                out.append(Batch.of(part, []))
        for items in (self.items[:o_mid], self.items[o_mid:]):
            if items:
                out.append(Batch.of([], items))
        return out


class Uploader:
    """Uploads the store at ``db`` to ``config.url``; ``start()`` for a background thread."""

    def __init__(
        self,
        db: str | Path,
        config: UploadConfig,
        *,
        log: Log = _quiet,
        poll_s: float = 0.05,
        timeout_s: float = 30.0,
        max_backoff_s: float | None = None,
    ) -> None:
        self.db = Path(db)
        self.config = config
        self.log = log
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.max_backoff_s = config.max_backoff_s if max_backoff_s is None else max_backoff_s
        parts = urlsplit(config.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = (parts.path.rstrip("/") + "/" + INGEST_PATH).replace("//", "/")
        self._context: ssl.SSLContext | None = None
        if self._https:
            self._context = ssl.create_default_context(cafile=str(config.ca) if config.ca else None)
        self._http: http.client.HTTPConnection | None = None
        self.outbox = Outbox(self.db)
        self._stop = threading.Event()
        self._wake = threading.Event()
        # one batch on the wire at a time: ``drain`` beside the background thread would share
        # the HTTP connection (an answer read by the wrong thread, or the connection closed
        # under a read) and read the same batch from the store twice
        self._sending = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="ratepad-upload", daemon=True)
        # counters (tests, the bench, the log)
        self.batches = 0
        self.ratings = 0
        self.failures = 0
        self.last_error = ""
        self.committed_at: dict[tuple[str, int], float] = {}  # filled if track_commits
        self.track_commits = False
        self.heartbeats = 0
        self.rejected = 0
        self._last_sent = -float("inf")  # the first idle moment announces the agent

    # -- the outbox -----------------------------------------------------------------------------
    def next_batch(self) -> Batch:
        ratings = [(r.id, r.upload_json()) for r in self.outbox.next_ratings(self.config.batch)]
        return Batch.of(ratings, self.outbox.next_items(self.config.batch))

    def pending(self) -> int:
        """Ratings and outbox rows not yet committed by the server."""
        return self.outbox.pending()

    def mark_uploaded(self, batch: Batch, rejected: str | None = None) -> None:
        """After the server's commit answer: the cursor moves on, the sent outbox rows go.
        ``rejected``: the server refuses the batch's one item for good; it is kept in the
        store (``upload_rejected``)."""
        refused = None
        if rejected is not None:
            kind = "rating" if batch.rating_ids else batch.items[0][0]
            item: Any = batch.body["ratings"][0] if batch.rating_ids else batch.items[0][3]
            refused = (kind, item, rejected)
        self.outbox.mark_uploaded(batch.last_rating_id, batch.outbox, refused)

    # -- sending ------------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._http is None:
            if self._https:
                self._http = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout_s, context=self._context
                )
            else:
                self._http = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout_s
                )
        return self._http

    def _drop_connection(self) -> None:
        if self._http is not None:
            with contextlib.suppress(OSError):
                self._http.close()
            self._http = None

    def send(self, batch: Batch) -> dict[str, Any]:
        """POST the batch; the server's answer once it has committed it (else UploadError)."""
        body = json.dumps(batch.body, separators=(",", ":")).encode()
        headers = {
            "Authorization": f"Bearer {self.config.key}",
            "Content-Type": "application/json",
        }
        try:
            conn = self._connection()
            conn.request("POST", self._path, body, headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop_connection()
            reason = str(exc) or type(exc).__name__
            raise UploadError(f"cannot reach {self.config.url}: {reason}") from None
        if response.getheader("Connection", "").lower() == "close":
            self._drop_connection()
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {}
        if response.status == 200 and isinstance(answer, dict) and answer.get("committed"):
            return answer
        detail = answer.get("detail") if isinstance(answer, dict) else None
        refused = response.status in (400, 401, 403, 413, 422)
        raise UploadError(
            f"server answered {response.status}: {detail or data[:200]!r}",
            refused=refused,
            status=response.status,
            retry_after=retry_after(response.getheader("Retry-After")),
        )

    def upload_once(self) -> int:
        """Send one batch if anything is waiting; the number of items the server committed."""
        with self._sending:
            return self._upload_once()

    def _upload_once(self) -> int:
        batch = self.next_batch()
        if batch.empty and not batch.outbox:
            if time.monotonic() - self._last_sent >= self.config.heartbeat_s:
                self.send(batch)  # an empty batch: the server knows this agent is alive
                self._last_sent = time.monotonic()
                self.heartbeats += 1
            return 0
        self._send_or_split(batch)
        return batch.size

    def _send_or_split(self, batch: Batch) -> None:
        """Send and mark uploaded; if the server cannot take something in it (413, 422), send
        it in halves, down to the one item it refuses, which is kept in ``upload_rejected``
        so that everything after it still goes."""
        try:
            if not batch.empty:
                self.send(batch)
                self._last_sent = time.monotonic()
        except UploadError as exc:
            if exc.status not in SPLIT_ON:
                raise
            parts = batch.halves()
            if parts is not None:
                for part in parts:
                    self._send_or_split(part)
                return
            self.mark_uploaded(batch, rejected=str(exc))
            self.rejected += 1
            self.log(
                f"upload: the server refuses an item for good: {exc}; kept in the store "
                "(ratepad export --rejected)"
            )
            return
        self.mark_uploaded(batch)
        self.batches += 1
        self.ratings += len(batch.body["ratings"])
        if self.track_commits:
            now = time.monotonic()
            for r in batch.body["ratings"]:
                self.committed_at.setdefault((r["serial"], r["journal_seq"]), now)

    def drain(self, timeout: float = 60.0) -> bool:
        """Upload until nothing is pending (in this thread); False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        backoff = 0.2
        while time.monotonic() < deadline:
            try:
                if self.upload_once() == 0 and self.pending() == 0:
                    return True
                backoff = 0.2
            except UploadError as exc:
                self.failures += 1
                self.last_error = str(exc)
                time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff = min(backoff * 2, 2.0)
        return False

    # -- the background thread ----------------------------------------------------------------
    def start(self) -> Uploader:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Something was stored: look now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        # a send that outlasts ``timeout`` keeps its connection and the store's (the daemon
        # thread ends with the process; the batch, unanswered, goes again next time)
        if not self._sending.acquire(timeout=1.0):
            return
        try:
            self._drop_connection()
            self.outbox.close()
        finally:
            self._sending.release()

    def _run(self) -> None:
        backoff = 0.5
        reported = ""
        while not self._stop.is_set():
            try:
                sent = self.upload_once()
            except UploadError as exc:
                self.failures += 1
                self.last_error = str(exc)
                if str(exc) != reported:
                    self.log(f"upload: {exc} (retrying)")
                    reported = str(exc)
                self._stop.wait(next_delay(exc, backoff, self.max_backoff_s, random.random()))
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            except StoreError as exc:
                self.failures += 1
                self.log(f"upload: {exc} (retrying)")
                self._stop.wait(backoff)
                continue
            if reported:
                self.log("upload: the server takes uploads again")
                reported = ""
            backoff = 0.5
            if sent == 0:
                self._wake.wait(self.poll_s)
                self._wake.clear()
