"""Satisfaction levels: a rating's score (1..keys) mapped to a named level and its value.

The usual 5-point mapping is very satisfied 100, satisfied 80, neutral 60, dissatisfied 40, very
dissatisfied 0; the satisfaction index is the mean of these values. 3- and 4-key keypads have
their own level names; the values of every key count are configurable. Scores are the keypad's
(its ``key_order`` setting decides which key gives which score): score 1 is the lowest level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["DEFAULT_VALUES", "LEVEL_NAMES", "Level", "LevelMapping"]

LEVEL_NAMES: dict[int, tuple[str, ...]] = {
    5: ("very_dissatisfied", "dissatisfied", "neutral", "satisfied", "very_satisfied"),
    4: ("very_dissatisfied", "dissatisfied", "satisfied", "very_satisfied"),
    # 不满意 / 基本满意 / 满意: the ends of a 3-key keypad are the ends of the scale
    3: ("dissatisfied", "neutral", "satisfied"),
}

DEFAULT_VALUES: dict[int, tuple[int, ...]] = {
    5: (0, 40, 60, 80, 100),
    4: (0, 40, 80, 100),
    3: (0, 60, 100),
}


@dataclass(frozen=True, slots=True)
class Level:
    name: str
    value: int


def _default_values() -> dict[int, tuple[int, ...]]:
    return dict(DEFAULT_VALUES)


@dataclass(frozen=True, slots=True)
class LevelMapping:
    """Values per key count, listed from score 1 (lowest) up."""

    values: Mapping[int, tuple[int, ...]] = field(default_factory=_default_values)

    def __post_init__(self) -> None:
        for keys, vals in self.values.items():
            if keys not in LEVEL_NAMES:
                raise ValueError(f"mapping for {keys} keys: keypads have 3, 4 or 5 keys")
            if len(vals) != keys:
                raise ValueError(f"mapping for {keys} keys needs {keys} values, got {len(vals)}")
            if any(not 0 <= v <= 100 for v in vals):
                raise ValueError(f"mapping for {keys} keys: values must be 0..100")

    @classmethod
    def from_config(cls, table: Mapping[str, object]) -> LevelMapping:
        """From a TOML table like ``{"5": [0, 40, 60, 80, 100]}`` (missing key counts keep
        their defaults); raises ValueError with a reason."""
        values = dict(DEFAULT_VALUES)
        for key, vals in table.items():
            try:
                keys = int(key)
            except ValueError:
                raise ValueError(f"mapping key {key!r} is not a key count (3, 4 or 5)") from None
            if not isinstance(vals, Sequence) or isinstance(vals, str):
                raise ValueError(f"mapping for {key} keys must be a list of numbers")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
                raise ValueError(f"mapping for {key} keys must be a list of integers")
            values[keys] = tuple(int(v) for v in vals)
        return cls(values)

    def level(self, score: int, key_count: int) -> Level | None:
        """The level of ``score`` on a ``key_count``-key keypad; None if it has none (a
        damaged-journal placeholder has score 0, or an unknown key count)."""
        vals = self.values.get(key_count)
        if vals is None or not 1 <= score <= key_count:
            return None
        return Level(LEVEL_NAMES[key_count][score - 1], vals[score - 1])
