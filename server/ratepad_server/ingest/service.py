"""Commit one upload batch, exactly once, before answering.

    keys first:  INSERT INTO ingest_ratingkey ... ON CONFLICT DO NOTHING RETURNING
                 → only the ratings whose key came back are new (a replayed batch, or one
                   whose answer was lost, stores nothing twice)
    then:        the new ratings (COPY on PostgreSQL), their quarantine rows, the rollup
                 deltas, prompts, staff sessions, device states — all in one transaction

The answer goes out after COMMIT; if the server dies before, the agent sends the batch again.
A rating is given the window its keypad was bound to at the rating's time, if that window is
in the uploading agent's branch; otherwise it is stored without a window and listed in
quarantine (never dropped).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from ..live.feed import feed
from ..org.models import Binding
from ..rollups.service import Deltas
from .models import AgentKey, Device, DeviceStatus, Prompt, Quarantine, StaffSession
from .partitions import ensure_months, month_of
from .schemas import BatchIn, BatchOut, DeviceIn, PromptIn, RatingIn, SessionIn

# sent inside each batch's transaction, after the rollups: ratings (the new rows, in
# RATING_COLUMNS order), devices ((DeviceIn, time) pairs), agent (the AgentKey); receivers (the
# alerts, the reports' flag rollups) write in the same transaction
batch_stored = Signal()

RATING_COLUMNS = (
    "serial",
    "journal_seq",
    "boot_id",
    "uptime_ms",
    "time",
    "time_exact",
    "score",
    "key_count",
    "level_value",
    "staff_id",
    "prompt_id",
    "flags",
    "window_id",
    "branch_id",
    "agent_id",
    "received_at",
)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class WindowResolver:
    """Which window a keypad was bound to at a given time, limited to one agent's branch."""

    def __init__(self, branch_id: int, serials: Iterable[str]) -> None:
        self.branch_id = branch_id
        self.bindings: dict[str, list[Binding]] = defaultdict(list)
        for b in Binding.objects.filter(serial__in=set(serials)).select_related("window"):
            self.bindings[b.serial].append(b)

    def resolve(self, serial: str, when: datetime) -> tuple[int | None, str]:
        """(window id, "") or (None, quarantine reason)."""
        for b in self.bindings.get(serial, ()):
            if b.covers(when):
                if b.window.branch_id != self.branch_id:
                    return None, Quarantine.OTHER_BRANCH
                return b.window_id, ""
        return None, Quarantine.NO_BINDING


def commit_batch(agent: AgentKey, batch: BatchIn) -> BatchOut:
    now = timezone.now()
    if not (batch.ratings or batch.prompts or batch.sessions or batch.devices):
        # an agent's heartbeat: it is alive (the silent-agent alerts and the live wall read
        # this); one UPDATE, nothing else
        AgentKey.objects.filter(pk=agent.pk).update(last_upload_at=now)
        return BatchOut(committed=True, stored=0, duplicates=0, quarantined=0, prompts=0,
                        sessions=0, devices=0)  # fmt: skip
    times = [from_ms(r.time_ms) for r in batch.ratings]
    device_times = [from_ms(d.updated_at_ms) for d in batch.devices]
    ensure_months("ingest_rating", {month_of(t) for t in times})
    ensure_months("ingest_devicestatus", {month_of(t) for t in device_times})
    serials = {r.serial for r in batch.ratings} | {p.serial for p in batch.prompts}
    serials |= {s.serial for s in batch.sessions} | {d.serial for d in batch.devices}
    with transaction.atomic():
        resolver = WindowResolver(agent.branch_id, serials)
        deltas = Deltas()
        stored, quarantined = _ratings(agent, batch.ratings, times, resolver, deltas, now)
        prompts = _prompts(agent, batch.prompts, resolver, deltas)
        deltas.write()
        sessions = _sessions(agent, batch.sessions, resolver)
        devices = _devices(agent, batch.devices, device_times, resolver)
        batch_stored.send(
            sender=AgentKey,
            agent=agent,
            ratings=stored,
            devices=list(zip(batch.devices, device_times, strict=True)),
        )
        AgentKey.objects.filter(pk=agent.pk).update(last_upload_at=now)
        if connection.vendor != "postgresql":
            # PostgreSQL: the triggers NOTIFY every instance; SQLite: this process only
            events = feed.events_for_sqlite(stored, batch.devices, agent.branch_id, resolver)
            transaction.on_commit(lambda: feed.publish_all(events))
    return BatchOut(
        committed=True,
        stored=len(stored),
        duplicates=len(batch.ratings) - len(stored),
        quarantined=quarantined,
        prompts=prompts,
        sessions=sessions,
        devices=devices,
    )


# -- ratings -------------------------------------------------------------------------------------
def _new_keys(ratings: Sequence[RatingIn]) -> set[tuple[str, int]]:
    keys = list(dict.fromkeys((r.serial, r.journal_seq) for r in ratings))
    if not keys:
        return set()
    new: set[tuple[str, int]] = set()
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "INSERT INTO ingest_ratingkey (serial, journal_seq)"
                " SELECT * FROM unnest(%s::text[], %s::bigint[])"
                " ON CONFLICT DO NOTHING RETURNING serial, journal_seq",
                [[k[0] for k in keys], [k[1] for k in keys]],
            )
            new.update((s, int(q)) for s, q in cur.fetchall())
        else:
            for i in range(0, len(keys), 400):  # SQLite: at most 32 766 parameters
                chunk = keys[i : i + 400]
                cur.execute(
                    "INSERT INTO ingest_ratingkey (serial, journal_seq) VALUES "
                    + ", ".join(["(%s, %s)"] * len(chunk))
                    + " ON CONFLICT DO NOTHING RETURNING serial, journal_seq",
                    [v for k in chunk for v in k],
                )
                new.update((s, int(q)) for s, q in cur.fetchall())
    return new


def _ratings(
    agent: AgentKey,
    ratings: Sequence[RatingIn],
    times: Sequence[datetime],
    resolver: WindowResolver,
    deltas: Deltas,
    now: datetime,
) -> tuple[list[list[Any]], int]:
    new = _new_keys(ratings)
    rows: list[list[Any]] = []
    quarantine: list[Quarantine] = []
    for r, when in zip(ratings, times, strict=True):
        key = (r.serial, r.journal_seq)
        if key not in new:
            continue
        new.discard(key)  # the same rating twice in one batch: stored once
        window_id, reason = resolver.resolve(r.serial, when)
        rows.append(
            [
                r.serial,
                r.journal_seq,
                r.boot_id,
                r.uptime_ms,
                when,
                r.time_exact,
                r.score,
                r.key_count,
                r.level_value,
                r.staff_id,
                r.prompt_id,
                r.flags,
                window_id,
                agent.branch_id,
                agent.pk,
                now,
            ]
        )
        if window_id is None:
            quarantine.append(
                Quarantine(
                    serial=r.serial,
                    journal_seq=r.journal_seq,
                    time=when,
                    reason=reason,
                    agent_id=agent.pk,
                    branch_id=agent.branch_id,
                    created_at=now,
                )
            )
        else:
            deltas.add_rating(
                when,
                window_id,
                agent.branch_id,
                r.staff_id,
                r.score,
                r.key_count,
                r.level_value,
                r.flags,
            )
    _insert_ratings(rows)
    Quarantine.objects.bulk_create(quarantine)
    return rows, len(quarantine)


def _insert_ratings(rows: list[list[Any]]) -> None:
    if not rows:
        return
    columns = ", ".join(RATING_COLUMNS)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            with cur.cursor.copy(f"COPY ingest_rating ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            adapt: Callable[[Any], Any] = connection.ops.adapt_datetimefield_value
            sqlite_rows = [[*r[:4], adapt(r[4]), *r[5:15], adapt(r[15])] for r in rows]
            cur.executemany(
                f"INSERT INTO ingest_rating ({columns}) VALUES "
                f"({', '.join(['%s'] * len(RATING_COLUMNS))})",
                sqlite_rows,
            )


# -- prompts, sessions, devices ------------------------------------------------------------------
def _counts(p: Prompt) -> tuple[int, int]:
    """What a prompt adds to the rollups: (issued, answered)."""
    if p.issued_at is None or p.window_id is None:
        return (0, 0)
    return (1, int(p.state == "answered"))


_FINAL = {"answered": 3, "timed_out": 2, "cancelled": 2, "issued": 1}


def _prompts(
    agent: AgentKey, prompts: Sequence[PromptIn], resolver: WindowResolver, deltas: Deltas
) -> int:
    """Merge prompt states in bulk: create the missing rows, lock them all (in key order),
    move each state forward, write the changed ones back, add what changed to the rollups."""
    if not prompts:
        return 0
    incoming = sorted(prompts, key=lambda p: (p.serial, p.prompt_id))
    Prompt.objects.bulk_create(
        [Prompt(serial=p.serial, prompt_id=p.prompt_id, state=p.state,
                branch_id=agent.branch_id) for p in incoming],
        ignore_conflicts=True,
    )  # fmt: skip
    keys = {(p.serial, p.prompt_id) for p in incoming}
    rows: dict[tuple[str, int], Prompt] = {}
    for serial in sorted({p.serial for p in incoming}):
        ids = sorted(k[1] for k in keys if k[0] == serial)
        for row in (
            Prompt.objects.select_for_update()
            .filter(serial=serial, prompt_id__in=ids)
            .order_by("prompt_id")
        ):
            rows[(row.serial, row.prompt_id)] = row
    before = {k: _counts(r) for k, r in rows.items()}
    for p in incoming:
        row = rows[(p.serial, p.prompt_id)]
        if row.branch_id != agent.branch_id:
            continue  # another branch's agent owns this prompt key
        if p.issued_at_ms is not None:
            row.issued_at = from_ms(p.issued_at_ms)
            row.timeout_ms = p.timeout_ms
            row.window_id = resolver.resolve(p.serial, row.issued_at)[0]
        if p.staff_id:
            row.staff_id = p.staff_id
        # a state only moves forward (an answer beats a timeout that was sent first)
        if _FINAL[p.state] >= _FINAL.get(row.state, 0):
            row.state = p.state
            if p.closed_at_ms is not None:
                row.closed_at = from_ms(p.closed_at_ms)
            if p.rating_seq is not None:
                row.rating_seq = p.rating_seq
    mine = [r for r in rows.values() if r.branch_id == agent.branch_id]
    Prompt.objects.bulk_update(
        mine, ["issued_at", "timeout_ms", "window", "staff_id", "state", "closed_at",
               "rating_seq"], batch_size=500,
    )  # fmt: skip
    for key, row in rows.items():
        after = _counts(row)
        old = before[key]
        if after != old and row.issued_at is not None and row.window_id is not None:
            deltas.add_prompt(
                row.issued_at,
                row.window_id,
                agent.branch_id,
                row.staff_id,
                after[0] - old[0],
                after[1] - old[1],
            )
    return len(prompts)


def _sessions(agent: AgentKey, sessions: Sequence[SessionIn], resolver: WindowResolver) -> int:
    for s in sessions:
        started = from_ms(s.started_at_ms)
        window_id, reason = resolver.resolve(s.serial, started)
        if reason == Quarantine.OTHER_BRANCH:
            continue  # another branch's keypad: not this agent's to write
        StaffSession.objects.update_or_create(
            serial=s.serial,
            started_at=started,
            defaults={
                "staff_id": s.staff_id,
                "ended_at": None if s.ended_at_ms is None else from_ms(s.ended_at_ms),
                "window_id": window_id,
                "branch_id": agent.branch_id,
            },
        )
    return len(sessions)


def _devices(
    agent: AgentKey,
    devices: Sequence[DeviceIn],
    times: Sequence[datetime],
    resolver: WindowResolver,
) -> int:
    """The latest state of each keypad, and a history row when something that matters
    changed (link, state, faults, staff) — not for a counter that moved."""
    current = {d.serial: d for d in Device.objects.filter(serial__in={d.serial for d in devices})}
    history = []
    for d, at in zip(devices, times, strict=True):
        faults = " ".join(d.faults)
        now = current.get(d.serial)
        window_id, reason = resolver.resolve(d.serial, at)
        if reason == Quarantine.OTHER_BRANCH or (
            now and now.branch_id != agent.branch_id and window_id is None
        ):
            continue  # another branch's keypad: not this agent's to write
        seen = (d.connected, d.state, faults, d.staff_id)
        if now is None or (now.connected, now.state, now.faults, now.staff_id) != seen:
            history.append(
                DeviceStatus(
                    serial=d.serial, at=at, branch_id=agent.branch_id, connected=d.connected,
                    state=d.state, faults=faults, unacked=d.unacked, presses=d.presses,
                    staff_id=d.staff_id,
                )
            )  # fmt: skip
        if now is None or now.updated_at <= at:
            current[d.serial], _ = Device.objects.update_or_create(
                serial=d.serial,
                defaults={
                    "branch_id": agent.branch_id,
                    "window_id": window_id,
                    "connected": d.connected,
                    "firmware": d.firmware,
                    "state": d.state,
                    "faults": faults,
                    "unacked": d.unacked,
                    "staff_id": d.staff_id,
                    "updated_at": at,
                    "agent_id": agent.pk,
                },
            )
    DeviceStatus.objects.bulk_create(history)
    return len(devices)
