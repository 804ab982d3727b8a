"""How the pages show a survey figure: the value with its interval and n, or "n = 4 < 10" when
n is below the survey's minimum (never the figure itself then); no value is "–"."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

register = template.Library()


def _value(f: dict[str, Any]) -> float:
    for key in ("nps", "mean", "alpha", "inside"):
        if key in f:
            return float(f[key])
    raise KeyError("no value in the figure")


@register.filter
def figure(f: dict[str, Any] | None, digits: int = 2) -> SafeString | str:
    """``{{ f|figure }}``: value [lo, hi] with n; ``inside`` shares as percentages."""
    if not f:
        return "–"
    if f.get("small"):
        return format_html('<span class="small-n">{}</span>',
                           _("n = %(n)d: too few to show") % {"n": f["n"]})  # fmt: skip
    share = "inside" in f and "mean" not in f
    scale, unit = (100.0, " %") if share else (1.0, "")
    v = _value(f) * scale
    ci = f.get("ci")
    interval = "" if not ci else f" [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"
    return format_html('<span class="fig">{}{}{}</span> <small>n = {}</small>',
                       f"{v:.{digits}f}", unit, interval, f["n"])  # fmt: skip


@register.filter
def signed(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:+.{digits}f}"


@register.filter
def bad_rating(score: int | None) -> bool:
    """Whether a rating offers a return visit (at or below ``BAD_SCORE``)."""
    from ..models import BAD_SCORE

    return score is not None and score <= BAD_SCORE
