"""The agent's durable store: SQLite (stdlib), one writer, batched transactions; the only
place that speaks SQL to the agent's file.

    record.py   a stored rating, once: columns, JSON, export and upload fields derive from it
    schema.py   the tables as numbered migrations; migrating a store file
    writes.py   the items the writer stores (ratings, prompts, keypad snapshots), quarantine
    reads.py    what readers ask (the bridge, ``export``, the summary)
    outbox.py   what the uploader reads and marks as sent
    db.py       ``Store``: the writer's connection and transactions, readers' connections

Rules kept here:

* **Commit, then ACK.** ``Store.apply(batch)`` writes a whole batch in one transaction and
  returns only once it is committed; the caller ACKs the batch's ratings after that. A rating is
  deleted from the keypad's journal only after the ACK, so whatever happens to this process
  (``kill -9``, power loss) every ACKed rating is on disk.
* **Exactly once.** ``UNIQUE(serial, journal_seq)``, inserts that ignore a conflict on that key:
  a rating sent again (after a lost ACK, a reconnect, a restart of the agent) is ACKed again but
  stored once. A *different* rating under a stored key (a keypad whose journal was wiped starts
  again at seq 1) is not dropped: it goes to ``rating_conflicts``, flagged for analysis.
* **Durability settings.** WAL journal with ``synchronous=FULL``: every commit fsyncs the WAL, so
  a committed batch survives a power failure as well as a crash. ``NORMAL`` in WAL mode would
  only fsync at checkpoints: a commit would survive ``kill -9`` (the data is in the OS cache) but
  the last commits could roll back on power loss, *after* their ratings were ACKed and deleted
  from the keypad: a lost rating. FULL costs one fsync per commit, which batching amortises
  (hundreds of ratings per fsync under load).
* Readers (the bridge, ``export``) use their own connections; WAL lets them read while the writer
  writes.
* ``schema_version`` records applied migrations; a store written by a newer ratepad is refused;
  one written by an older one is migrated in place when opened for writing.
* **Nothing from the wire reaches SQL unchecked.** Every value of a rating is range-checked
  first (``events.Rating.problem``); a rating that cannot be stored as a rating (an
  ``epoch_ms`` past year 9999, a score above the key count ...) goes to the ``quarantine``
  table, raw (the frame,
  re-encoded from the message exactly as received) with the reason, in the same transaction, and
  is ACKed after that commit like any other: the keypad stops resending it and nothing is lost.
* **Owner-only files.** The store is created with mode 0600 (an existing one is narrowed to
  it); SQLite gives its ``-wal`` and ``-shm`` files the store's mode.
"""

from __future__ import annotations

from ... import flags as rating_flags
from .db import Store
from .errors import BadStoreError, StoreError, StoreRowError
from .outbox import Outbox, Queued
from .record import EXPORT_FIELDS, RATING_FIELDS, UPLOAD_FIELDS, RatingField, StoredRating
from .schema import SCHEMA_VERSION
from .writes import (
    Confirmer,
    DeviceSnapshot,
    Item,
    PromptClosed,
    PromptIssued,
    Quarantined,
    RatingItem,
    now_ms,
)

__all__ = [
    "EXPORT_FIELDS",
    "RATING_FIELDS",
    "SCHEMA_VERSION",
    "UPLOAD_FIELDS",
    "BadStoreError",
    "Confirmer",
    "DeviceSnapshot",
    "Item",
    "Outbox",
    "PromptClosed",
    "PromptIssued",
    "Quarantined",
    "Queued",
    "RatingField",
    "RatingItem",
    "Store",
    "StoreError",
    "StoreRowError",
    "StoredRating",
    "flag_names",
    "now_ms",
]


def flag_names(flags: int) -> list[str]:
    return rating_flags.names(flags)
