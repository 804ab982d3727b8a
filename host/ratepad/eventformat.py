"""Events as JSON objects and as display lines: the one place the CLI, the agent, its bridge and
the capture tools turn an event into text."""

from __future__ import annotations

import time
from typing import Any

from .events import CommandResult, Connected, Event, KeyEvent, LogLine, Lost, Rating, Status
from .wire import codec

__all__ = ["display_line", "event_json"]


def _names(flags: int, cls: type[codec.Faults]) -> list[str]:
    return [f.name.lower() for f in cls if f.name and flags & f]


def event_json(event: Event) -> dict[str, Any]:
    """An event as one JSON-ready object with a ``event`` kind."""
    if isinstance(event, Rating):
        return {
            "event": "rating",
            "serial": event.serial,
            "seq": event.journal_seq,
            "score": event.score,
            "key_count": event.key_count,
            "staff": event.staff_id,
            "prompt_id": event.prompt_id,
            "prompted": event.prompted,
            "flags": event.flag_names,
            "time_ms": event.time_ms,
            "time_exact": event.time_exact,
            "boot_id": event.boot_id,
            "uptime_ms": event.uptime_ms,
        }
    if isinstance(event, Status):
        state = (
            event.state.name.lower() if isinstance(event.state, codec.DeviceState) else event.state
        )
        return {
            "event": "status",
            "serial": event.serial,
            "state": state,
            "faults": _names(event.faults, codec.Faults),
            "unacked": event.unacked,
            "presses": event.presses,
            "unprompted": event.unprompted,
            "repeats": event.repeats,
            "multi_key": event.multi_key,
            "stuck_keys": event.stuck_keys,
            "uptime_ms": event.uptime_ms,
        }
    if isinstance(event, KeyEvent):
        return {
            "event": "key",
            "serial": event.serial,
            "key": event.key,
            "down": event.down,
            "uptime_ms": event.uptime_ms,
            "bounces": event.bounces,
        }
    if isinstance(event, Connected):
        return {
            "event": "connected",
            "serial": event.serial,
            "firmware": event.firmware_version,
            "board": event.board,
            "keys": event.key_count,
            "boot_id": event.boot_id,
            "journal_used": event.journal_used,
            "schema_matches": event.schema_matches,
        }
    if isinstance(event, Lost):
        return {"event": "lost", "serial": event.serial, "reason": event.reason}
    if isinstance(event, LogLine):
        return {"event": "log", "serial": event.serial, "level": event.level, "text": event.text}
    if isinstance(event, CommandResult):
        return {"event": "result", "request_id": event.request_id, "detail": event.detail}
    return {"event": "unknown", "serial": event.serial, "type_id": event.type_id}


def display_line(event: Event, stamp: str | None = None) -> str:
    """An event as one line for people (what ``ratepad monitor`` prints without ``--json``),
    led by ``stamp`` (default: the wall clock now, ``HH:MM:SS``)."""
    d = event_json(event)
    kind = d.pop("event")
    if stamp is None:
        stamp = time.strftime("%H:%M:%S")
    if kind == "rating":
        return (
            f"{stamp} rating  {d['serial']:<10} seq={d['seq']:<6} score={d['score']}/"
            f"{d['key_count']} staff={d['staff'] or '-':<8} {' '.join(d['flags'])}"
        )
    if kind == "key":
        return (
            f"{stamp} key     {d['serial']:<10} key {d['key']} "
            f"{'down' if d['down'] else 'up  '} bounces={d['bounces']}"
        )
    if kind == "status":
        return (
            f"{stamp} status  {d['serial']:<10} {d['state']:<9} unacked={d['unacked']:<4} "
            f"presses={d['presses']} repeats={d['repeats']} multi={d['multi_key']} "
            f"{' '.join(d['faults'])}"
        )
    return f"{stamp} {kind:<7} " + " ".join(f"{k}={v}" for k, v in d.items())
