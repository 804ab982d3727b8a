"""Commit one upload batch, exactly once, before answering.

    keys first:  INSERT INTO ingest_ratingkey ... ON CONFLICT DO NOTHING RETURNING
                 → only the ratings whose key came back are new (a replayed batch, or one
                   whose answer was lost, stores nothing twice)
    then:        the new ratings (COPY on PostgreSQL), the rollup deltas, prompts, staff
                 sessions, device states, what is kept in quarantine or as a conflict — all in
                 one transaction

The answer goes out after COMMIT; if the server dies before, the agent sends the batch again.

Ownership: an agent key writes only for keypads bound to a window of its branch at the item's
time. A rating of any other keypad (bound to another branch's window, or to none), or with a
time outside the accepted span (``bounds``), is kept whole in the uploading branch's quarantine
and takes no dedupe key: the rightful branch's upload of that (serial, journal_seq) still
stores. Prompts, staff sessions and device states follow the same rule; those of an unbound
keypad may be written without a window until an owner writes them (an owner always wins). A
rating resent with other content than the stored one is kept as a ``Conflict`` (the stored one
is left as it is); an identical resend is a duplicate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone
from pydantic import BaseModel, ValidationError

from ..live.feed import feed
from ..org.models import Binding, Window
from ..rollups.service import APPEAL_UPHELD, Deltas
from . import keys
from .bounds import Accepted, accepted
from .models import (
    AgentKey,
    Conflict,
    Device,
    DeviceStatus,
    Prompt,
    Quarantine,
    Rating,
    StaffSession,
    item_digest,
)
from .partitions import month_of, present
from .schemas import BatchIn, BatchOut, DeviceIn, PromptIn, RatingIn, SessionIn

# sent inside each transaction that stores ratings, after the rollups — an agent's batch, or a
# quarantined rating an admin assigns: ratings (the new rows, in RATING_COLUMNS order),
# devices ((DeviceIn, time) pairs written), branch_id (whose windows they are); receivers (the
# alerts, the loop's cases) write in the same transaction
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
# what a rating says (RATING_COLUMNS minus the key and what the server adds): a resend that
# differs in any of these is a conflict
CONTENT = RATING_COLUMNS[2:12]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_ms(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(milliseconds=1)


class WindowResolver:
    """Which window a keypad was bound to at a given time, limited to one agent's branch."""

    def __init__(self, branch_id: int, serials: Iterable[str]) -> None:
        self.branch_id = branch_id
        self.bindings: dict[str, list[Binding]] = defaultdict(list)
        for b in Binding.objects.filter(serial__in=set(serials)).select_related("window"):
            self.bindings[b.serial].append(b)

    def resolve(self, serial: str, when: datetime) -> tuple[int | None, str]:
        """(window id, "") if the branch owns the keypad at ``when``, else (None, the
        quarantine reason)."""
        for b in self.bindings.get(serial, ()):
            if b.covers(when):
                if b.window.branch_id != self.branch_id:
                    return None, Quarantine.OTHER_BRANCH
                return b.window_id, ""
        return None, Quarantine.NO_BINDING


@dataclass
class Held:
    """What one batch keeps in quarantine (written once, at the end of the batch)."""

    agent: AgentKey
    now: datetime
    rows: list[Quarantine] = field(default_factory=list)

    def add(self, kind: str, item: BaseModel, serial: str, when: datetime, reason: str) -> None:
        data = item.model_dump()
        # a device state is a keypad's latest: one row per keypad and reason, the latest state
        # (a keypad moved without updating the organisation file reports one per change)
        key = {"serial": serial, "reason": reason} if kind == "device" else data
        self.rows.append(
            Quarantine(
                kind=kind, serial=serial, time=when, reason=reason, item=data,
                digest=item_digest(key), agent_id=self.agent.pk, branch_id=self.agent.branch_id,
                created_at=self.now,
                journal_seq=data["journal_seq"] if kind == "rating" else None,
            )
        )  # fmt: skip

    def write(self) -> None:
        # a resend of a held item is kept once (unique per uploading branch and digest)
        if not self.rows:
            return
        items = [q for q in self.rows if q.kind != "device"]
        Quarantine.objects.bulk_create(items, ignore_conflicts=True)
        latest = {q.digest: q for q in sorted(
            (q for q in self.rows if q.kind == "device"), key=lambda q: q.time)}  # fmt: skip
        if latest:
            Quarantine.objects.bulk_create(
                list(latest.values()),
                update_conflicts=True,
                unique_fields=["branch", "kind", "serial", "digest"],
                update_fields=["item", "time", "agent", "created_at"],
            )


@dataclass
class Resends:
    duplicates: int = 0
    conflicts: int = 0


def commit_batch(agent: AgentKey, batch: BatchIn) -> BatchOut:
    now = timezone.now()
    if not (batch.ratings or batch.prompts or batch.sessions or batch.devices):
        # an agent's heartbeat: it is alive (the silent-agent alerts and the live wall read
        # this); one UPDATE, nothing else
        if not keys.touch(agent, now):
            raise keys.Revoked
        return BatchOut(committed=True, stored=0, duplicates=0, quarantined=0, prompts=0,
                        sessions=0, devices=0)  # fmt: skip
    span = accepted(now)
    serials = {r.serial for r in batch.ratings} | {p.serial for p in batch.prompts}
    serials |= {s.serial for s in batch.sessions} | {d.serial for d in batch.devices}
    with transaction.atomic():
        resolver = WindowResolver(agent.branch_id, serials)
        held = Held(agent, now)
        deltas = Deltas()
        stored, resends = _ratings(agent, batch.ratings, span, resolver, held, deltas, now)
        prompts = _prompts(agent, batch.prompts, span, resolver, held, deltas, now)
        deltas.write()
        sessions = _sessions(agent, batch.sessions, span, resolver, held)
        devices = _devices(agent, batch.devices, span, resolver, held, now)
        held.write()
        if stored or devices:  # the receivers look at nothing else (a prompt alone: no call)
            batch_stored.send(
                sender=AgentKey, branch_id=agent.branch_id, ratings=stored, devices=devices
            )
        # last (the agent's row locked only until the commit): the key still live, else the
        # whole batch is rolled back; the agent heard from now
        if not keys.touch(agent, now):
            raise keys.Revoked
        if connection.vendor != "postgresql":
            # PostgreSQL: the triggers NOTIFY every instance; SQLite: this process only
            written = [d for d, _ in devices]
            events = feed.events_for_sqlite(stored, written, agent.branch_id, resolver)
            transaction.on_commit(lambda: feed.publish_all(events))
    return BatchOut(
        committed=True,
        stored=len(stored),
        duplicates=resends.duplicates,
        quarantined=sum(1 for q in held.rows if q.kind == "rating"),
        prompts=prompts,
        sessions=sessions,
        devices=len(devices),
        conflicts=resends.conflicts,
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


def _row(r: RatingIn, when: datetime, window: int, branch: int, agent: int,
         received: datetime) -> list[Any]:  # fmt: skip
    """A rating in ``RATING_COLUMNS`` order."""
    return [r.serial, r.journal_seq, r.boot_id, r.uptime_ms, when, r.time_exact, r.score,
            r.key_count, r.level_value, r.staff_id, r.prompt_id, r.flags, window, branch, agent,
            received]  # fmt: skip


def _ratings(
    agent: AgentKey,
    ratings: Sequence[RatingIn],
    span: Accepted,
    resolver: WindowResolver,
    held: Held,
    deltas: Deltas,
    now: datetime,
) -> tuple[list[list[Any]], Resends]:
    """Store the new ratings this agent owns; hold the others; sort resends into duplicates
    and conflicts."""
    times = [from_ms(r.time_ms) for r in ratings]
    months = present("ingest_rating", {month_of(t) for t in times if t in span})
    owned: list[tuple[RatingIn, datetime, int]] = []
    for r, when in zip(ratings, times, strict=True):
        window_id, reason = resolver.resolve(r.serial, when)
        if when not in span:
            reason = Quarantine.TIME_OUT_OF_RANGE
        elif not reason and month_of(when) not in months:
            reason = Quarantine.NO_PARTITION
        if reason or window_id is None:
            held.add("rating", r, r.serial, when, reason)
        else:
            owned.append((r, when, window_id))
    new = _new_keys([r for r, _, _ in owned])
    rows: list[list[Any]] = []
    again: list[RatingIn] = []
    for r, when, window_id in owned:
        key = (r.serial, r.journal_seq)
        if key not in new:
            again.append(r)
            continue
        new.discard(key)  # the same rating twice in one batch: stored once
        rows.append(_row(r, when, window_id, agent.branch_id, agent.pk, now))
        deltas.add_rating(when, window_id, agent.branch_id, r.staff_id, r.score, r.key_count,
                          r.level_value, r.flags)  # fmt: skip
    _insert_ratings(rows)
    return rows, _resends(again, agent.pk, agent.branch_id, now)


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


def _content(values: Sequence[Any]) -> tuple[Any, ...]:
    """A rating's ``CONTENT`` values, comparable: the server's own flags left out (an upheld
    appeal is not a different rating)."""
    *head, flags = values
    return (*head, int(flags) & ~APPEAL_UPHELD)


def _resends(again: Sequence[RatingIn], agent_id: int, branch_id: int,
             now: datetime) -> Resends:  # fmt: skip
    """Ratings whose key was taken: a duplicate if the stored rating says the same, else a
    conflict, kept (once per differing version) beside the stored rating."""
    out = Resends()
    if not again:
        return out
    stored: dict[tuple[str, int], tuple[Any, ...]] = {}
    rows = Rating.objects.filter(
        serial__in={r.serial for r in again}, journal_seq__in={r.journal_seq for r in again}
    ).values_list("serial", "journal_seq", *CONTENT)
    for serial, seq, *content in rows:
        stored[(serial, seq)] = _content(content)
    conflicts = []
    for r in again:
        mine = _content(_row(r, from_ms(r.time_ms), 0, 0, 0, now)[2:12])
        theirs = stored.get((r.serial, r.journal_seq))
        if mine == theirs:
            out.duplicates += 1
            continue
        differs = ["stored"] if theirs is None else [
            name for name, a, b in zip(CONTENT, mine, theirs, strict=True) if a != b
        ]  # fmt: skip
        data = r.model_dump()
        conflicts.append(
            Conflict(serial=r.serial, journal_seq=r.journal_seq, item=data,
                     digest=item_digest(data), differs=",".join(differs), agent_id=agent_id,
                     branch_id=branch_id, received_at=now)
        )  # fmt: skip
        out.conflicts += 1
    Conflict.objects.bulk_create(conflicts, ignore_conflicts=True)
    return out


class CannotAssign(Exception):
    """A quarantined rating that cannot be stored now (its time is outside the accepted span,
    or its month has no partition yet)."""


def assign_quarantined(item: Quarantine, window: Window) -> str:
    """Store a quarantined rating in ``window`` (the caller holds ``item`` locked, in a
    transaction): "stored", or "duplicate" / "conflict" if its key was taken meanwhile (then
    it is kept as a conflict, never a second copy)."""
    now = timezone.now()
    try:
        r = RatingIn.model_validate(item.item)
    except ValidationError:
        raise CannotAssign("its content was not kept (quarantined by an older version)") from None
    when = from_ms(r.time_ms)
    if when not in accepted(now):
        raise CannotAssign(f"its time {when:%Y-%m-%d %H:%M} is outside the accepted span")
    if not present("ingest_rating", [month_of(when)]):
        raise CannotAssign(f"no partition for {when:%Y-%m} yet: run 'ratepad server partitions'")
    if _new_keys([r]):
        row = _row(r, when, window.pk, window.branch_id, item.agent_id, now)
        _insert_ratings([row])
        deltas = Deltas()
        deltas.add_rating(when, window.pk, window.branch_id, r.staff_id, r.score, r.key_count,
                          r.level_value, r.flags)  # fmt: skip
        deltas.write()
        # as if uploaded now by the window's branch: its rules and its loop see it
        batch_stored.send(sender=AgentKey, branch_id=window.branch_id, ratings=[row], devices=[])
        outcome = "stored"
    else:
        resend = _resends([r], item.agent_id, item.branch_id, now)
        outcome = "duplicate" if resend.duplicates else "conflict"
    item.window, item.assigned_at, item.outcome = window, now, outcome
    item.save(update_fields=["window", "assigned_at", "outcome"])
    return outcome


# -- prompts, sessions, devices ------------------------------------------------------------------
class _Owned(Protocol):
    branch_id: int
    window_id: int | None


def _may_write(agent: AgentKey, owner: bool, row: _Owned | None) -> bool:
    """An owner of the keypad (at the item's time) writes; anyone else (an unbound keypad) only
    a new row or its own row that no owner has written yet."""
    return owner or row is None or (row.branch_id == agent.branch_id and row.window_id is None)


def _out_of(span: Accepted, *times: int | None) -> bool:
    return any(ms is not None and from_ms(ms) not in span for ms in times)


def _counts(p: Prompt) -> tuple[int, int]:
    """What a prompt adds to the rollups: (issued, answered)."""
    if p.issued_at is None or p.window_id is None:
        return (0, 0)
    return (1, int(p.state == "answered"))


_FINAL = {"answered": 3, "timed_out": 2, "cancelled": 2, "issued": 1}
# what a prompt's upload may change (the row's attributes and columns alike)
_PROMPT_COLUMNS = ("issued_at", "timeout_ms", "window_id", "staff_id", "state", "closed_at",
                   "rating_seq", "branch_id")  # fmt: skip
_PROMPT_UPDATE = (f"UPDATE ingest_prompt SET {', '.join(f'{c} = %s' for c in _PROMPT_COLUMNS)}"
                  " WHERE id = %s")  # fmt: skip


def _prompts(
    agent: AgentKey,
    prompts: Sequence[PromptIn],
    span: Accepted,
    resolver: WindowResolver,
    held: Held,
    deltas: Deltas,
    now: datetime,
) -> int:
    """Merge prompt states in bulk: create the missing rows, lock them all (in key order),
    move each state forward, write the changed ones back, add what changed to the rollups."""
    mine: list[tuple[PromptIn, str]] = []  # with the ownership reason ("": owned)
    for p in sorted(prompts, key=lambda p: (p.serial, p.prompt_id)):
        when = from_ms(p.issued_at_ms or p.closed_at_ms or to_ms(now))
        reason = resolver.resolve(p.serial, when)[1]
        if _out_of(span, p.issued_at_ms, p.closed_at_ms):
            held.add("prompt", p, p.serial, when, Quarantine.TIME_OUT_OF_RANGE)
        elif reason == Quarantine.OTHER_BRANCH:
            held.add("prompt", p, p.serial, when, reason)
        else:
            mine.append((p, reason))
    if not mine:
        return 0
    Prompt.objects.bulk_create(
        [Prompt(serial=p.serial, prompt_id=p.prompt_id, state=p.state,
                branch_id=agent.branch_id) for p, _ in mine],
        ignore_conflicts=True,
    )  # fmt: skip
    rows: dict[tuple[str, int], Prompt] = {}
    for serial in sorted({p.serial for p, _ in mine}):
        ids = sorted({p.prompt_id for p, _ in mine if p.serial == serial})
        for row in (
            Prompt.objects.select_for_update()
            .filter(serial=serial, prompt_id__in=ids)
            .order_by("prompt_id")
        ):
            rows[(row.serial, row.prompt_id)] = row
    before = {k: (r.issued_at, r.window_id, r.branch_id, r.staff_id, _counts(r))
              for k, r in rows.items()}  # fmt: skip
    changed: dict[tuple[str, int], Prompt] = {}
    written = 0
    for p, reason in mine:
        row = rows[(p.serial, p.prompt_id)]
        if not _may_write(agent, not reason, row):
            held.add("prompt", p, p.serial, from_ms(p.issued_at_ms or to_ms(now)), reason)
            continue
        if row.branch_id != agent.branch_id:  # the owner's upload replaces a squatter's row
            row.branch_id, row.window_id, row.state = agent.branch_id, None, p.state
            row.issued_at = row.timeout_ms = row.closed_at = row.rating_seq = None
            row.staff_id = ""
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
        changed[(p.serial, p.prompt_id)] = row
        written += 1
    _update_prompts(changed.values())
    for key, row in changed.items():
        issued, window_id, branch_id, staff_id, counts = before[key]
        after = (row.issued_at, row.window_id, row.branch_id, row.staff_id, _counts(row))
        if after == before[key]:
            continue
        if issued is not None and window_id is not None and counts != (0, 0):
            deltas.add_prompt(issued, window_id, branch_id, staff_id, -counts[0], -counts[1])
        if row.issued_at is not None and row.window_id is not None:
            deltas.add_prompt(row.issued_at, row.window_id, row.branch_id, row.staff_id,
                              *_counts(row))  # fmt: skip
    return written


def _update_prompts(rows: Iterable[Prompt]) -> None:
    """Write the changed prompts back: one plain UPDATE by id each, sent together (the ORM's
    ``bulk_update`` builds a CASE per column and row, costlier than the writes themselves)."""
    adapt: Callable[[Any], Any] = connection.ops.adapt_datetimefield_value
    values = [
        [adapt(v) if isinstance(v, datetime) else v
         for v in (*(getattr(row, c) for c in _PROMPT_COLUMNS), row.pk)]
        for row in rows
    ]  # fmt: skip
    if values:
        with connection.cursor() as cur:
            cur.executemany(_PROMPT_UPDATE, values)


def _sessions(
    agent: AgentKey,
    sessions: Sequence[SessionIn],
    span: Accepted,
    resolver: WindowResolver,
    held: Held,
) -> int:
    written = 0
    for s in sessions:
        started = from_ms(s.started_at_ms)
        window_id, reason = resolver.resolve(s.serial, started)
        if _out_of(span, s.started_at_ms, s.ended_at_ms):
            held.add("session", s, s.serial, started, Quarantine.TIME_OUT_OF_RANGE)
            continue
        row = None
        if reason != Quarantine.OTHER_BRANCH:
            row = (
                StaffSession.objects.select_for_update()
                .filter(serial=s.serial, started_at=started)
                .first()
            )
        if reason == Quarantine.OTHER_BRANCH or not _may_write(agent, not reason, row):
            held.add("session", s, s.serial, started, reason)
            continue
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
        written += 1
    return written


def _devices(
    agent: AgentKey,
    devices: Sequence[DeviceIn],
    span: Accepted,
    resolver: WindowResolver,
    held: Held,
    now: datetime,
) -> list[tuple[DeviceIn, datetime]]:
    """The latest state of each keypad, and a history row when something that matters
    changed (link, state, faults, staff) — not for a counter that moved. The states written."""
    if not devices:
        return []
    times = [from_ms(d.updated_at_ms) for d in devices]
    months = present("ingest_devicestatus", {month_of(t) for t in times if t in span})
    current = {d.serial: d for d in Device.objects.filter(serial__in={d.serial for d in devices})}
    history = []
    written: list[tuple[DeviceIn, datetime]] = []
    for d, at in zip(devices, times, strict=True):
        window_id, reason = resolver.resolve(d.serial, at)
        row = current.get(d.serial)
        if at not in span:
            reason = Quarantine.TIME_OUT_OF_RANGE
        elif month_of(at) not in months:
            reason = Quarantine.NO_PARTITION
        elif reason != Quarantine.OTHER_BRANCH and _may_write(agent, not reason, row):
            reason = ""
        if reason:
            held.add("device", d, d.serial, at, reason)
            continue
        faults = d.faults_text
        seen = (d.connected, d.state, faults, d.staff_id)
        if row is None or (row.connected, row.state, row.faults, row.staff_id) != seen:
            history.append(
                DeviceStatus(
                    serial=d.serial, at=at, branch_id=agent.branch_id, connected=d.connected,
                    state=d.state, faults=faults, unacked=d.unacked, presses=d.presses,
                    staff_id=d.staff_id,
                )
            )  # fmt: skip
        # the latest state wins; one stamped ahead of the server's clock (within the accepted
        # span) yields to the next one, so a wrong clock cannot freeze a keypad's state
        if (
            row is None
            or row.branch_id != agent.branch_id
            or row.updated_at <= at
            or row.updated_at > now
        ):
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
        written.append((d, at))
    DeviceStatus.objects.bulk_create(history)
    return written
