"""The rating flags of the whole product, in one table.

A rating carries a set of flags as one integer. The keypad sets the low bits (their values come
from the wire protocol, ``ratepad.wire.values``, generated from the schema); the server adds its
own above them (an upheld appeal). Every name a person or a program sees derives from ``FLAGS``:
the agent's and the API's JSON (``names``), the scenario files (``bits``), the server's rollup
columns (``ROLLUP_FLAGS``), which flags keep a rating out of the KPIs (``KPI_EXCLUDED``), and the
web's labels and export headers (the server translates ``Flag.label`` in one place).

This module imports neither Django nor the USB codec: the agent and the server both use it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .wire.values import RatingFlags

__all__ = [
    "APPEAL_UPHELD",
    "BY_NAME",
    "FLAGS",
    "KPI_EXCLUDED",
    "ROLLUP_FLAGS",
    "Flag",
    "RatingFlags",
    "bits",
    "names",
]

# the server's own flags start here, well above the wire's 16 bits
APPEAL_UPHELD: Final = 1 << 24


@dataclass(frozen=True)
class Flag:
    """One rating flag: its bit, its name in JSON, CSV and the rollups, and its meaning."""

    bit: int
    name: str  # lower case; the API's, the agent's and the rollup column's name
    label: str  # a short English label; the web shows it translated
    meaning: str  # one English sentence (documentation, help)
    kpi_excluded: bool = False  # the rating is kept and counted in n_all, not in the KPIs
    rollup: bool = False  # the rollups count ratings with this flag in a column of its name


FLAGS: Final[tuple[Flag, ...]] = (
    Flag(int(RatingFlags.UNPROMPTED), "unprompted", "Unprompted",
         "no prompt was armed when the key was pressed", rollup=True),
    Flag(int(RatingFlags.REPEAT), "repeat", "Repeat",
         "pressed within the repeat guard after a rating", kpi_excluded=True, rollup=True),
    Flag(int(RatingFlags.MULTI_KEY), "multi_key", "Several keys",
         "another key was down at the same time", kpi_excluded=True, rollup=True),
    Flag(int(RatingFlags.STUCK_KEY), "stuck_key", "Stuck key",
         "a key was reported stuck while this rating was taken", kpi_excluded=True, rollup=True),
    Flag(int(RatingFlags.NO_STAFF), "no_staff", "No staff",
         "no staff member was logged in", rollup=True),
    Flag(int(RatingFlags.LATE), "late", "Late",
         "answered after the prompt had timed out (grace window)"),
    Flag(int(RatingFlags.DAMAGED), "damaged", "Damaged",
         "the journal record was found damaged: a placeholder, fields unreliable"),
    Flag(APPEAL_UPHELD, "appeal_upheld", "Appeal upheld",
         "a staff member's appeal against the rating was upheld (server only)",
         kpi_excluded=True, rollup=True),
)  # fmt: skip

BY_NAME: Final[dict[str, Flag]] = {f.name: f for f in FLAGS}
ROLLUP_FLAGS: Final[tuple[Flag, ...]] = tuple(f for f in FLAGS if f.rollup)
KPI_EXCLUDED: Final = functools.reduce(int.__or__, (f.bit for f in FLAGS if f.kpi_excluded), 0)


def names(flags: int) -> list[str]:
    """The names of the flags set in ``flags``, in the table's order (unknown bits ignored)."""
    return list(_names(int(flags)))


@functools.lru_cache(maxsize=1024)
def _names(flags: int) -> tuple[str, ...]:
    return tuple(f.name for f in FLAGS if flags & f.bit)


def bits(flag_names: Iterable[str]) -> int:
    """The flags integer of ``flag_names``; ValueError names an unknown one."""
    out = 0
    for name in flag_names:
        flag = BY_NAME.get(str(name).lower())
        if flag is None:
            known = ", ".join(BY_NAME)
            raise ValueError(f"unknown rating flag {name!r} (known: {known})")
        out |= flag.bit
    return out
