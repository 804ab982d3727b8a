"""A survey's report: every figure with its n, and ``small`` when n is below the survey's minimum
(a page shows "n < min" instead of the figure). The result is plain JSON (stored by the server
with an import, printed by ``ratepad survey --definition``). The statistics are those of
``ratepad.metrics``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .. import metrics
from ..errors import MetricsError
from .definition import GAP_KINDS, SurveyDefinition
from .responses import Responses

T = TypeVar("T")


def _try(compute: Callable[..., T], *args: Any) -> T | None:
    """compute(*args), or None where the figure is undefined (too few answers, no variance)."""
    try:
        return compute(*args)
    except MetricsError:
        return None


def _mark(figure: Any, min_n: int) -> Any:
    if isinstance(figure, dict) and "n" in figure:
        figure = {**figure, "small": figure["n"] < min_n}
        if "ci" in figure:
            figure["ci"] = list(figure["ci"])
    return figure


def _alpha(rows: Sequence[Sequence[int | None]], confidence: float) -> dict[str, Any] | None:
    """Alpha of respondents x items over the respondents who answered every item (listwise, as
    SPSS's RELIABILITY does), with Feldt's interval for that n."""
    if not rows or len(rows[0]) < 2:
        return None
    k = len(rows[0])
    complete = [r for r in rows if None not in r]
    value = _try(metrics.alpha_complete, complete)
    if value is None:
        return None
    ci = _try(metrics.feldt_interval, value, len(complete), k, confidence)
    return {"n": len(complete), "k": k, "alpha": value, "ci": list(ci) if ci else None}


def analyse(definition: SurveyDefinition, responses: Responses) -> dict[str, Any]:
    """The report of a survey's responses (JSON-ready)."""
    c = definition.confidence
    min_n = definition.min_n
    qs = definition.questions
    cols = list(zip(*responses.rows, strict=True)) if responses.rows else []

    def col(i: int) -> list[int | None]:
        return list(cols[i])

    def sub(indexes: Sequence[int]) -> list[tuple[int | None, ...]]:
        """Respondents x the given questions (zip: at C speed)."""
        return list(zip(*(cols[i] for i in indexes), strict=True))

    scores: dict[tuple[str, str], list[float | None] | None] = {}

    def score(kind: str, dim: str) -> list[float | None] | None:
        if (kind, dim) not in scores:
            idx = [i for i in definition.of_kind(kind) if qs[i].dimension == dim]
            scores[kind, dim] = metrics.row_means(sub(idx)) if idx else None
        return scores[kind, dim]

    def mark(figure: Any) -> Any:
        return _mark(figure, min_n)

    dimensions: list[dict[str, Any]] = []
    for dim in definition.dimensions():
        s = {kind: score(kind, dim) for kind in GAP_KINDS}
        e, p, a, d = (s[k] for k in GAP_KINDS)
        p_idx = [i for i in definition.of_kind("perception") if qs[i].dimension == dim]
        dimensions.append({
            "name": dim,
            "means": {k: mark(_try(metrics.mean_interval, v, c))
                      for k, v in s.items() if v is not None},
            "gap": mark(_try(metrics.paired_difference, p, e, c)) if p and e else None,
            "msa": mark(_try(metrics.paired_difference, p, a, c)) if p and a else None,
            "mss": mark(_try(metrics.paired_difference, p, d, c)) if p and d else None,
            "zone": mark(_try(metrics.tolerance_zone, p, a, d, c)) if p and a and d else None,
            "alpha": mark(_alpha(sub(p_idx), c)),
        })  # fmt: skip
    items: list[dict[str, Any]] = []
    by_attr: dict[str, dict[str, int]] = {}
    for i, q in enumerate(qs):
        if q.kind in GAP_KINDS:
            by_attr.setdefault(q.attribute, {})[q.kind] = i
    for attr, kinds in by_attr.items():
        if "perception" not in kinds:
            continue
        p_col = col(kinds["perception"])
        item: dict[str, Any] = {
            "attribute": attr,
            "dimension": qs[kinds["perception"]].dimension,
            "text": qs[kinds["perception"]].text,
            "perception": mark(_try(metrics.mean_interval, p_col, c)),
        }
        for key, other in (("gap", "expectation"), ("msa", "adequate"), ("mss", "desired")):
            if other in kinds:
                item[key] = mark(_try(metrics.paired_difference, p_col, col(kinds[other]), c))
        items.append(item)

    def single(kind: str, compute: Callable[[list[int | None]], Any]) -> Any:
        idx = definition.of_kind(kind)
        return mark(_try(compute, col(idx[0]))) if idx else None

    overall_idx = definition.of_kind("overall")
    all_p = definition.of_kind("perception")
    return {
        "name": definition.name,
        "node": definition.node,
        "first": definition.first.isoformat() if definition.first else None,
        "last": definition.last.isoformat() if definition.last else None,
        "respondents": len(responses.rows),
        "empty_rows": responses.empty_rows,
        "min_n": min_n,
        "confidence": c,
        "dimensions": dimensions,
        "items": items,
        "nps": single("nps", lambda v: metrics.net_promoter(v, c)),
        "ces": single("ces", lambda v: metrics.mean_interval(v, c)),
        "overall": single("overall", lambda v: metrics.mean_interval(v, c)),
        "ipa": _ipa(definition, responses, items, dimensions, overall_idx, min_n),
        "alpha": mark(_alpha(sub(all_p), c)),
    }


def _ipa(
    definition: SurveyDefinition,
    responses: Responses,
    items: list[dict[str, Any]],
    dimensions: list[dict[str, Any]],
    overall_idx: list[int],
    min_n: int,
) -> dict[str, Any] | None:
    """Stated importance when the survey asks it (per attribute or dimension), else importance
    derived from the correlation of each attribute with overall satisfaction."""
    qs = definition.questions
    perf: dict[str, tuple[float, int]] = {}
    for it in items:
        p = it["perception"]
        if p is not None and not p["small"]:
            perf[it["attribute"]] = (p["mean"], p["n"])
    for dim in dimensions:
        m = dim["means"].get("perception")
        if m is not None and not m["small"]:
            perf.setdefault(dim["name"], (m["mean"], m["n"]))
    points: dict[str, tuple[float, float, int]] = {}
    stated = definition.of_kind("importance")
    if stated:
        for i in stated:
            name = qs[i].attribute
            imp = _try(metrics.mean_interval, [r[i] for r in responses.rows])
            if imp is not None and imp["n"] >= min_n and name in perf:
                points[name] = (imp["mean"], perf[name][0], min(imp["n"], perf[name][1]))
        source = "stated"
    elif overall_idx:
        overall = [r[overall_idx[0]] for r in responses.rows]
        for it in items:
            name = it["attribute"]
            if name not in perf:
                continue
            i = definition.questions.index(
                next(q for q in qs if q.kind == "perception" and q.attribute == name)
            )
            r = _try(metrics.pearson, [row[i] for row in responses.rows], overall)
            if r is not None and r[1] >= min_n:
                points[name] = (r[0], perf[name][0], r[1])
        source = "derived"
    else:
        return None
    grid = _try(metrics.importance_performance, points)
    return None if grid is None else {"source": source, **grid}


# --- text ---------------------------------------------------------------------------------------


def figure_text(f: Any, digits: int = 2) -> str:
    """A figure as text: value [interval] n, or why it is not shown (the terminal report and the
    server's monthly PDF)."""
    if f is None:
        return "-"
    if f.get("small"):
        return f"n = {f['n']} < min"
    lo, hi = f["ci"]
    value = f.get("mean", f.get("nps"))
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] n = {f['n']}"


def render_text(report: dict[str, Any]) -> str:
    """The report for a terminal."""
    pct = f"{report['confidence'] * 100:g} %"
    lines = [
        f"{report['name']}: {report['respondents']} respondents"
        + (f", node {report['node']}" if report["node"] else "")
        + (f", {report['first']} .. {report['last']}" if report["first"] else "")
        + f" (figures with n < {report['min_n']} hidden, intervals {pct})",
        "",
        f"{'dimension':<16} {'gap P-E':>28} {'MSA P-A':>28} {'MSS P-D':>28} "
        f"{'in zone':>8} {'alpha':>6}",
    ]
    for d in report["dimensions"]:
        zone = d["zone"]
        inside = "-" if zone is None or zone["small"] else f"{zone['inside'] * 100:.0f} %"
        alpha = d["alpha"]
        a = "-" if alpha is None or alpha["small"] else f"{alpha['alpha']:.3f}"
        gap, msa, mss = (figure_text(d[k]) for k in ("gap", "msa", "mss"))
        lines.append(f"{d['name']:<16} {gap:>28} {msa:>28} {mss:>28} {inside:>8} {a:>6}")
    lines.append("")
    lines.append(f"NPS      {figure_text(report['nps'], 1)}")
    lines.append(f"CES      {figure_text(report['ces'])}")
    lines.append(f"overall  {figure_text(report['overall'])}")
    alpha = report["alpha"]
    if alpha is not None and not alpha["small"]:
        lines.append(f"alpha (all perception items) {alpha['alpha']:.3f}, k = {alpha['k']}")
    ipa = report["ipa"]
    if ipa is not None:
        lines.append("")
        lines.append(f"importance-performance ({ipa['source']} importance)")
        for p in ipa["points"]:
            lines.append(
                f"  {p['name']:<16} importance {p['importance']:.3f}  performance "
                f"{p['performance']:.3f}  {p['quadrant']}"
            )
    return "\n".join(lines) + "\n"


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"
