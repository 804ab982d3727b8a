"""What the pages say of a test: a p-value in words, a change as an arrow, a unit's badge."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def p_words(p: float | None) -> str:
    """The p-value and what it means for a reader: "p = 0.003: very unlikely to be chance"."""
    if p is None:
        return ""
    if p < 0.001:
        return _("p < 0.001: almost certainly not chance")
    shown = f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"
    if p < 0.01:
        meaning = _("very unlikely to be chance")
    elif p < 0.05:
        meaning = _("unlikely to be chance")
    else:
        meaning = _("could well be chance")
    return f"{shown}: {meaning}"
