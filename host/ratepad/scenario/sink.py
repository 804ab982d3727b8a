"""Simulated ratings into an agent's store: the sink of ``ratepad sim --fleet --db`` and of tests
that need a store full of ratings without keypads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import flags as rating_flags
from ..agent.store import RatingItem, Store
from ..events import Rating
from ..sim import EPOCH0


def store_ratings(
    store: Store, ratings: Iterable[Mapping[str, Any]], epoch0_ms: int = EPOCH0
) -> None:
    """Store ratings in the scenario output format (``{"device", "seq", "score", "at_ms",
    "time_exact", "staff", "prompted", "flags"}``, see architecture.md) in one batch;
    ``at_ms`` counts from ``epoch0_ms``."""
    batch: list[RatingItem] = []
    for r in ratings:
        flags = rating_flags.bits(r.get("flags", ()))
        if not r.get("prompted", True):
            flags |= rating_flags.RatingFlags.UNPROMPTED
        rating = Rating(
            serial=str(r["device"]),
            journal_seq=int(r["seq"]),
            boot_id=int(r.get("boot_id", 0)),
            uptime_ms=int(r.get("uptime_ms", 0)),
            time_ms=epoch0_ms + int(r["at_ms"]),
            time_exact=bool(r.get("time_exact", False)),
            score=int(r["score"]),
            key_count=int(r.get("key_count", 5)),
            staff_id=str(r.get("staff", "")),
            prompt_id=int(r.get("prompt_id", 0)),
            flags=rating_flags.RatingFlags(flags),
        )
        batch.append(RatingItem(rating))
    store.apply(batch)
