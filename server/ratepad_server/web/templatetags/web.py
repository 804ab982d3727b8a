"""Number formats of the pages: no value is "–", never "None" or "nan"."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f}%"


@register.filter
def pp(x: float | None) -> str:
    """A difference of proportions in percentage points."""
    return "–" if x is None else f"{x * 100:+.1f} pt"


@register.filter
def fmt1(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


@register.filter
def fmt3(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


@register.filter
def flag_label(name: str) -> str:
    """A rating flag's name (``multi_key``) as the reader's word (``web.flag_labels``)."""
    from ..flag_labels import label

    return label(name)
