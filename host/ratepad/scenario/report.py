"""Reports of fleet and suite runs: figures people look at, as JSON and as one HTML page.

``keypad_summary`` boils one keypad's run down to what the report needs (small enough to come
back from a worker process); ``build`` adds the keypads up; ``html`` draws the page, with the
plots (ratings per hour, score distribution, latency histogram) drawn by matplotlib as inline
SVG, so the page needs nothing else. Same runs give the same report, byte for byte.

Two figures of satisfaction, each labelled for what it is: the satisfaction index, the mean
level value of the ratings (very satisfied 100 ... very dissatisfied 0, ``ratepad.agent.levels``'
default mapping, as the agent and the server count it), and CSAT, the share of prompted ratings
in the top two scores (0-100). The response rate is the share of prompts answered by a rating.
"""

from __future__ import annotations

import html as _html
import io
import statistics
from collections.abc import Iterable
from typing import Any

from .runner import Result

HOUR = 3_600_000
FAULTS = ("reports_dropped", "reports_corrupted", "reports_duplicated", "power_cuts")
RECOVERIES = ("bad_spans", "duplicates_ignored")
LATENCY_BINS_MS = (0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def keypad_summary(
    device: str, result: Result, prompts: int | None = None, keys: int = 5
) -> dict[str, Any]:
    """One keypad of a run: its counts, scores, hours and latencies."""
    from ..agent.levels import LevelMapping

    mapping = LevelMapping()
    mine = [r for r in result.ratings if r["device"] == device]
    prompted = [r for r in mine if r["prompted"]]
    scores = [0] * keys
    levels = [level.value for r in mine if (level := mapping.level(r["score"], keys)) is not None]
    for r in mine:
        if 1 <= r["score"] <= keys:
            scores[r["score"] - 1] += 1
    hours: dict[int, int] = {}
    for r in mine:
        h = max(r["at_ms"], 0) // HOUR
        hours[h] = hours.get(h, 0) + 1
    counters = result.counters.get(device, {})
    return {
        "device": device,
        "keys": keys,
        "prompts": prompts,
        "ratings": len(mine),
        "prompted": len(prompted),
        "top_two": sum(1 for r in prompted if r["score"] >= keys - 1),
        "score_sum": sum(r["score"] for r in mine),
        "levels": len(levels),
        "level_sum": sum(levels),
        "scores": scores,
        "per_hour": sorted(hours.items()),
        "unprompted": counters.get("unprompted", 0),
        "repeats": counters.get("repeats", 0),
        "multi_key": counters.get("multi_key", 0),
        "presses": counters.get("presses", 0),
    }


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _mean(total: float, count: int) -> float | None:
    return round(total / count, 1) if count else None


def build(
    keypads: Iterable[dict[str, Any]],
    stats: dict[str, int],
    latency_ms: list[int],
    title: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of a run from its keypads' summaries, its counters and its latencies."""
    rows = list(keypads)
    keys = max((k["keys"] for k in rows), default=5)
    prompts = sum(k["prompts"] or 0 for k in rows)
    has_prompts = any(k["prompts"] is not None for k in rows)
    ratings = sum(k["ratings"] for k in rows)
    prompted = sum(k["prompted"] for k in rows)
    scores = [sum(k["scores"][i] for k in rows if i < len(k["scores"])) for i in range(keys)]
    per_hour: dict[int, int] = {}
    for k in rows:
        for h, n in k["per_hour"]:
            per_hour[h] = per_hour.get(h, 0) + n
    hist = [0] * len(LATENCY_BINS_MS)
    for v in latency_ms:
        i = sum(1 for edge in LATENCY_BINS_MS if v >= edge) - 1
        hist[max(i, 0)] += 1
    lat: dict[str, Any] = {"count": len(latency_ms)}
    if latency_ms:
        ordered = sorted(latency_ms)
        lat |= {
            "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, (95 * len(ordered)) // 100)],
            "max": ordered[-1],
        }
    lat["histogram"] = [
        {"from_ms": edge, "count": n} for edge, n in zip(LATENCY_BINS_MS, hist, strict=True)
    ]
    table = []
    for k in rows:
        table.append(
            {
                "device": k["device"],
                "prompts": k["prompts"],
                "ratings": k["ratings"],
                "response_rate": _pct(k["prompted"], k["prompts"] or 0),
                "satisfaction_index": _mean(k["level_sum"], k["levels"]),
                "csat": _pct(k["top_two"], k["prompted"]),
                "mean_score": round(k["score_sum"] / k["ratings"], 2) if k["ratings"] else None,
                "unprompted": k["unprompted"],
                "repeats": k["repeats"],
                "multi_key": k["multi_key"],
            }
        )
    top_two = sum(k["top_two"] for k in rows)
    return {
        "title": title,
        **(extra or {}),
        "keypads": len(rows),
        "prompts": prompts if has_prompts else None,
        "ratings": ratings,
        "prompted_ratings": prompted,
        "response_rate": _pct(prompted, prompts) if has_prompts else None,
        "satisfaction_index": _mean(
            sum(k["level_sum"] for k in rows), sum(k["levels"] for k in rows)
        ),
        "csat": _pct(top_two, prompted),
        "mean_score": round(sum(k["score_sum"] for k in rows) / ratings, 2) if ratings else None,
        "scores": {str(i + 1): n for i, n in enumerate(scores)},
        "misuse": {
            "unprompted": sum(k["unprompted"] for k in rows),
            "repeats": sum(k["repeats"] for k in rows),
            "multi_key": sum(k["multi_key"] for k in rows),
        },
        "faults": {name: int(stats.get(name, 0)) for name in FAULTS},
        "recoveries": {name: int(stats.get(name, 0)) for name in RECOVERIES},
        "ratings_per_hour": [{"hour": h, "ratings": n} for h, n in sorted(per_hour.items())],
        "latency_ms": lat,
        "per_keypad": table,
    }


# --- the HTML page -----------------------------------------------------------------------------
def _svg(fig: Any) -> str:
    buf = io.StringIO()
    # no date, fixed id salt: the same report draws the same page
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _plots(report: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib
    from matplotlib.figure import Figure

    matplotlib.rcParams["svg.hashsalt"] = "ratepad"
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    out = []
    fig = Figure(figsize=(6.4, 3.0))
    ax = fig.subplots()
    hours = report["ratings_per_hour"]
    ax.bar([h["hour"] for h in hours], [h["ratings"] for h in hours], color="#3b7dd8")
    ax.set_xlabel("hour of the run")
    ax.set_ylabel("ratings")
    out.append(("Ratings per hour", _svg(fig)))
    fig = Figure(figsize=(6.4, 3.0))
    ax = fig.subplots()
    scores = report["scores"]
    ax.bar(list(scores), list(scores.values()), color="#4caf50")
    ax.set_xlabel("score")
    ax.set_ylabel("ratings")
    out.append(("Score distribution", _svg(fig)))
    fig = Figure(figsize=(6.4, 3.0))
    ax = fig.subplots()
    bins = report["latency_ms"]["histogram"]
    labels = [f"≥{b['from_ms']}" for b in bins]
    ax.bar(labels, [b["count"] for b in bins], color="#ff9800")
    ax.set_xlabel("key down to stored on the host (ms)")
    ax.set_ylabel("ratings")
    out.append(("Latency", _svg(fig)))
    return out


def _cell(v: Any) -> str:
    return "-" if v is None else _html.escape(str(v))


def html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (plots inline, no outside resources)."""
    esc = _html.escape
    figures = [
        ("Keypads", report["keypads"]),
        ("Ratings", report["ratings"]),
        ("Prompts", report["prompts"]),
        ("Response rate (% of prompts answered)", report["response_rate"]),
        ("Satisfaction index (mean level, 0-100)", report["satisfaction_index"]),
        ("CSAT (% of prompted ratings in the top two)", report["csat"]),
        ("Mean score", report["mean_score"]),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(report['title'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;"
        "text-align:right}th{background:#eee}td:first-child{text-align:left}"
        ".fig{display:inline-block;margin:0 1.5em 1em 0}.fig b{display:block;font-size:1.6em}"
        "section svg{max-width:100%;height:auto}</style></head><body>",
        f"<h1>{esc(report['title'])}</h1>",
        "<div>",
    ]
    for label, value in figures:
        parts.append(f'<div class="fig"><b>{_cell(value)}</b>{esc(label)}</div>')
    parts.append("</div>")
    if "scenarios" in report:
        parts.append(
            "<h2>Scenarios</h2><table><tr><th>scenario</th><th>result</th>"
            "<th>ratings</th><th>why</th></tr>"
        )
        for s in report["scenarios"]:
            why = "<br>".join(esc(f) for f in s["failures"])
            parts.append(
                f"<tr><td>{esc(s['name'])}</td><td>{'pass' if s['passed'] else 'FAIL'}</td>"
                f"<td>{s['ratings']}</td><td style='text-align:left'>{why}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        "<h2>Misuse, faults and recoveries</h2><table><tr><th>what</th><th>count</th></tr>"
    )
    for group in ("misuse", "faults", "recoveries"):
        for name, n in report[group].items():
            parts.append(f"<tr><td>{esc(group)}: {esc(name)}</td><td>{n}</td></tr>")
    parts.append("</table>")
    for title, svg in _plots(report):
        parts.append(f"<section><h2>{esc(title)}</h2>{svg}</section>")
    columns = list(report["per_keypad"][0]) if report["per_keypad"] else []
    parts.append("<h2>Per keypad</h2><table><tr>")
    parts.extend(f"<th>{esc(c)}</th>" for c in columns)
    parts.append("</tr>")
    for row in report["per_keypad"]:
        parts.append("<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in columns) + "</tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"
