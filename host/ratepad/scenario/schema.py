"""The JSON Schema of scenario files (published by ``ratepad sim --schema``) and the checks that
use it: the shape of a file is checked against the schema, and the messages say where.

What a schema cannot say is checked after it (``model.parse``): devices named by events exist,
scores fit the keypad, and settings pass the firmware's own rules (firmware/rpfw/settings.py).
"""

from __future__ import annotations

from typing import Any

from ..errors import RatepadError

MAX_UNTIL_MS = 7 * 24 * 3_600_000  # a week of virtual time: more is a mistake, not a test
MAX_DEPTH = 32  # JSON/TOML nesting: a scenario needs 5 levels
MAX_SEED = 2**63 - 1
TEXT_LIMITS = {"staff": 16, "name": 32}  # UTF-8 bytes (the wire's STAFF_ID and DISPLAY_NAME)


class SchemaError(RatepadError):
    """Input that does not have the shape its schema gives (scenario files, fleet profiles)."""


_MS = {"type": "integer", "minimum": 0, "maximum": MAX_UNTIL_MS}
_SETTING = {"type": ["integer", "string"], "description": "a keypad setting (firmware rules)"}
_COUNT = {
    "description": "an exact count, or bounds",
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "min": {"type": "integer", "minimum": 0},
                "max": {"type": "integer", "minimum": 0},
            },
        },
    ],
}
_ACTION_ARGS: dict[str, dict[str, Any]] = {
    "connect": {},
    "disconnect": {},
    "power_off": {},
    "power_on": {},
    "power_cycle": {},
    "power_cut": {"during": {"const": "journal_write"}},
    "prompt": {"staff": {"type": "string"}, "timeout_ms": {"type": "integer"}},
    "cancel_prompt": {},
    "login": {"staff": {"type": "string"}, "name": {"type": "string"}},
    "logout": {"staff": {"type": "string"}},
    "press": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "hold_ms": {"type": "integer", "minimum": 1, "maximum": 10**9},
        "bounce_ms": {"type": "integer", "minimum": 0, "maximum": 1000},
    },
    "raw": {
        "key": {"type": "integer", "minimum": 1, "maximum": 5},
        "edges": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "array",
                "prefixItems": [
                    {"type": "integer", "minimum": 0, "maximum": 10**9},
                    {"enum": [0, 1]},
                ],
                "minItems": 2,
                "maxItems": 2,
            },
        },
    },
    "host_restart": {},
    "host_clock_jump": {"by_ms": {"type": "integer", "minimum": -(10**12), "maximum": 10**12}},
    "set_config": {
        "config": {"type": "object", "minProperties": 1, "additionalProperties": _SETTING}
    },
}
_REQUIRED = {"press": ["score"], "raw": ["key", "edges"], "host_clock_jump": ["by_ms"]}
_HOST_WIDE = ("host_restart", "host_clock_jump")


def _action_schema(do: str) -> dict[str, Any]:
    """What an event doing ``do`` may hold."""
    props: dict[str, Any] = {"at_ms": _MS, "do": {"const": do}, **_ACTION_ARGS[do]}
    props["device"] = {"type": "string"}
    required = ["at_ms", "do", *_REQUIRED.get(do, [])]
    if do not in _HOST_WIDE:
        required.append("device")
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def _event_schema(do: str) -> dict[str, Any]:
    return {
        "if": {"properties": {"do": {"const": do}}, "required": ["do"]},
        "then": _action_schema(do),
    }


_EVENT_SHAPE = {
    "type": "object",
    "required": ["at_ms", "do"],
    "properties": {"do": {"enum": sorted(_ACTION_ARGS)}},
}


SCENARIO_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:ratepad:scenario",
    "title": "ratepad scenario",
    "description": "Simulated keypads, a faulty link and a timeline of actions, run on virtual "
    "time by `ratepad sim`; `expect` says what the run must give.",
    "type": "object",
    "additionalProperties": False,
    "required": ["devices"],
    "properties": {
        "name": {"type": "string", "description": "shown in suite reports (default: file name)"},
        "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
        "until_ms": {**_MS, "description": "end of the run (virtual ms)"},
        "devices": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "keys": {"type": "integer", "minimum": 3, "maximum": 5},
                    "ticks_start_ms": {"type": "integer", "minimum": 0, "maximum": (1 << 30) - 1},
                    "config": {"type": "object", "additionalProperties": _SETTING},
                },
            },
        },
        "link": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
                for k in ("drop", "corrupt", "duplicate", "reorder", "split", "stall")
            },
        },
        "events": {
            "type": "array",
            "maxItems": 1_000_000,
            "items": {**_EVENT_SHAPE, "allOf": [_event_schema(do) for do in sorted(_ACTION_ARGS)]},
        },
        "expect": {
            "type": "object",
            "description": "checked after the run; a failed expectation fails the scenario",
            "additionalProperties": False,
            "properties": {
                "ratings": {**_COUNT, "description": "ratings stored (all devices)"},
                "ratings_per_device": {"type": "object", "additionalProperties": _COUNT},
                "scores": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0, "maximum": 5},
                    "description": "the stored scores, in store order (device, then seq)",
                },
                "flags": {
                    "type": "object",
                    "additionalProperties": _COUNT,
                    "description": "how many stored ratings carry each flag",
                },
                "prompted": {**_COUNT, "description": "stored ratings answering a prompt"},
                "staff": {
                    "type": "object",
                    "additionalProperties": _COUNT,
                    "description": "stored ratings per staff id",
                },
                "no_loss": {
                    "type": "boolean",
                    "description": "every rating a keypad confirmed (thanked for) is stored",
                },
                "no_duplicates": {"type": "boolean"},
                "times_exact": {
                    "type": "boolean",
                    "description": "every stored time is exact and the moment its key went down",
                },
                "stats": {
                    "type": "object",
                    "additionalProperties": _COUNT,
                    "description": "run counters: reports_dropped, duplicates_ignored, "
                    "power_cuts, bad_spans ...",
                },
                "counters": {
                    "type": "object",
                    "additionalProperties": _COUNT,
                    "description": "keypad counters summed over devices: presses, "
                    "unprompted, repeats, multi_key",
                },
            },
        },
    },
}


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, without recursion (stops counting past ``limit``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            if d > limit:
                return d
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def check_depth(value: Any, what: str) -> None:
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise SchemaError(f"{what}: nested deeper than {MAX_DEPTH} levels")


def _where(path: Any) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "scenario"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_VALIDATORS: dict[str, Any] = {}


def _validator(key: str, schema: dict[str, Any]) -> Any:
    import jsonschema

    v = _VALIDATORS.get(key)
    if v is None:
        v = _VALIDATORS[key] = jsonschema.Draft202012Validator(schema)
    return v


def validate(data: Any, schema: dict[str, Any] | None = None, what: str = "scenario") -> None:
    """Raise SchemaError (one line: where and why) if ``data`` does not fit ``schema`` (by
    default the scenario schema).

    A scenario's events are checked one by one against the schema of their action (what the
    published schema says with ``if``/``then``, at a fraction of the cost for long timelines).
    """
    check_depth(data, what)
    if schema is not None:
        _check(_validator(str(id(schema)), schema), data, (), what)
        return
    shape = {**SCENARIO_SCHEMA, "properties": dict(SCENARIO_SCHEMA["properties"])}
    shape["properties"]["events"] = {**shape["properties"]["events"], "items": _EVENT_SHAPE}
    _check(_validator("scenario", shape), data, (), what)
    for i, event in enumerate(data.get("events", ())):
        do = event["do"]
        v = _validator(do, _action_schema(do))
        if not v.is_valid(event):
            _check(v, event, ("events", i), what)


def _check(validator: Any, data: Any, prefix: tuple[Any, ...], what: str) -> None:
    import jsonschema

    if validator.is_valid(data):
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return
    where = _where((*prefix, *error.absolute_path))
    if what != "scenario" and where == "scenario":
        where = what
    elif what != "scenario":
        where = f"{what}.{where}"
    v = error.validator
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        msg = f"unknown key{'s' if len(extra) > 1 else ''} {extra}"
    elif v == "type":
        msg = f"expected {_types(error.validator_value)}, got {_short(error.instance)}"
    elif v in ("minimum", "maximum", "exclusiveMaximum", "exclusiveMinimum"):
        low, high = _bounds(error.schema)
        msg = f"expected {low}..{high}, got {_short(error.instance)}"
    elif v in ("enum", "const"):
        allowed = error.validator_value
        if isinstance(allowed, list) and len(allowed) > 6:
            msg = f"unknown value {_short(error.instance)}"
        else:
            msg = f"expected {_short(allowed)}, got {_short(error.instance)}"
    elif v == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        msg = f"missing {', '.join(map(repr, missing))}"
    elif v == "minItems" and error.validator_value == 1:
        msg = "expected a non-empty list"
    else:
        msg = error.message if len(error.message) <= 120 else error.message[:117] + "..."
    raise SchemaError(f"{where}: {msg}")


def _types(t: Any) -> str:
    names = {"integer": "an integer", "string": "a string", "object": "an object"}
    names |= {"array": "a list", "number": "a number", "boolean": "true or false"}
    if isinstance(t, list):
        return " or ".join(names.get(str(x), str(x)) for x in t)
    return names.get(str(t), str(t))


def _bounds(schema: dict[str, Any]) -> tuple[Any, Any]:
    low = schema.get("minimum", schema.get("exclusiveMinimum", "-inf"))
    high = schema.get("maximum", schema.get("exclusiveMaximum", "inf"))
    if "exclusiveMaximum" in schema:
        return low, f"<{high}"
    return low, high
