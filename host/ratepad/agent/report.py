"""Printing stored ratings: one readable line each, the summary table, ``export`` formats."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable
from typing import Any, TextIO

from .store import EXPORT_FIELDS, Store, StoredRating

__all__ = [
    "EXPORT_FIELDS",
    "QUARANTINE_FIELDS",
    "export_quarantine",
    "export_rejected",
    "export_store",
    "rating_line",
    "summary_lines",
    "write_export",
]


def rating_line(r: dict[str, Any]) -> str:
    """``12:00:01.234  K1  S001      4/5 [####.] satisfied          80  unprompted``"""
    ms = int(r["time_ms"])
    stamp = time.strftime("%H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"
    if not r["time_exact"]:
        stamp += "~"  # reconstructed from the keypad's uptime
    score, keys = int(r["score"]), int(r["key_count"])
    bar = "[" + "#" * score + "." * (keys - score) + "]"
    value = "-" if r["level_value"] is None else str(r["level_value"])
    flags = [f for f in r["flag_names"]]
    return (
        f"{stamp:<13} {r['serial']:<8} {r['staff_id'] or '-':<8} {score}/{keys} {bar:<7} "
        f"{r['level'] or '?':<18} {value:>3}  {' '.join(flags) or 'prompted'}"
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The store summary as a table (satisfaction index = mean level value)."""
    out = [
        f"{'device':<10} {'ratings':>7} {'index':>6} {'satisfied':>9} {'unprompted':>10} "
        f"{'prompts':>7} {'answered':>8} {'response':>8}"
    ]
    total = 0
    weighted = 0.0
    for s in rows:
        index = "-" if s["satisfaction_index"] is None else f"{s['satisfaction_index']:.1f}"
        out.append(
            f"{s['serial']:<10} {s['ratings']:>7} {index:>6} {_pct(s['satisfied_share']):>9} "
            f"{s['unprompted']:>10} {s['prompts']:>7} {s['answered']:>8} "
            f"{_pct(s['response_rate']):>8}"
        )
        if s["satisfaction_index"] is not None:
            total += s["ratings"]
            weighted += s["satisfaction_index"] * s["ratings"]
    if len(rows) > 1 and total:
        n = sum(s["ratings"] for s in rows)
        out.append(f"{'all':<10} {n:>7} {weighted / total:>6.1f}")
    return out


def _csv_value(key: str, value: Any) -> Any:
    if key == "flag_names":
        return " ".join(value)
    if isinstance(value, bool):
        return int(value)
    return "" if value is None else value


def write_export(rows: Iterable[StoredRating], fmt: str, out: TextIO) -> int:
    """Write ratings as ``json`` (one object per line), ``csv`` (with a header) or ``text``."""
    n = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_FIELDS)
        for row in rows:
            d = row.as_json()
            writer.writerow([_csv_value(k, d[k]) for k in EXPORT_FIELDS])
            n += 1
        return n
    for row in rows:
        d = row.as_json()
        if fmt == "json":
            out.write(json.dumps({k: d[k] for k in EXPORT_FIELDS}, ensure_ascii=False) + "\n")
        else:
            out.write(f"#{d['id']:<6} seq={d['journal_seq']:<6} " + rating_line(d) + "\n")
        n += 1
    return n


def export_store(store: Store, fmt: str, out: TextIO, serial: str | None = None) -> int:
    return write_export(store.iter_ratings(0, None, serial), fmt, out)


REJECTED_FIELDS = ("id", "kind", "error", "rejected_at_ms", "item")


def export_rejected(store: Store, fmt: str, out: TextIO) -> int:
    """Write what the server refused for good: ``json`` (one object per line), ``csv`` (the
    item as JSON text) or ``text``."""
    rows = store.rejected()
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(REJECTED_FIELDS)
        for r in rows:
            writer.writerow([*(r[k] for k in REJECTED_FIELDS[:4]), json.dumps(r["item"])])
        return len(rows)
    for r in rows:
        if fmt == "json":
            out.write(json.dumps({k: r[k] for k in REJECTED_FIELDS}, ensure_ascii=False) + "\n")
        else:
            out.write(
                f"#{r['id']:<6} {r['kind']:<8} {r['error']}\n        "
                f"{json.dumps(r['item'], ensure_ascii=False)}\n"
            )
    return len(rows)


QUARANTINE_FIELDS = ("id", "serial", "journal_seq", "received_at_ms", "reason", "frame", "message")


def export_quarantine(store: Store, fmt: str, out: TextIO, serial: str | None = None) -> int:
    """Write the quarantine table: ``json`` (one object per line, ``message`` decoded), ``csv``
    (with a header) or ``text``; ``frame`` is hex (``ratepad decode --hex`` reads it)."""
    rows = [r for r in store.quarantined() if serial is None or r["serial"] == serial]
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(QUARANTINE_FIELDS)
        for r in rows:
            writer.writerow([r[k] for k in QUARANTINE_FIELDS])
        return len(rows)
    for r in rows:
        if fmt == "json":
            d = {k: r[k] for k in QUARANTINE_FIELDS}
            d["message"] = json.loads(r["message"])
            out.write(json.dumps(d, ensure_ascii=False) + "\n")
        else:
            out.write(
                f"#{r['id']:<6} {r['serial']:<8} seq={r['journal_seq']:<6} {r['reason']}\n"
                f"        frame {r['frame'] or '-'}\n"
            )
    return len(rows)
