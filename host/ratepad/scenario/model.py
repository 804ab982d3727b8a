"""Scenario files (JSON, or TOML with the same structure): parsed and checked.

The format is a contract (architecture.md, "Scenario files"); anything unknown or malformed is a
``ScenarioError`` naming where it is, never a traceback.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RatepadError
from .schema import MAX_UNTIL_MS, TEXT_LIMITS, SchemaError, validate

ACTIONS = {
    # action: (needs a device, allowed extra keys)
    "connect": (True, set()),
    "disconnect": (True, set()),
    "power_off": (True, set()),
    "power_on": (True, set()),
    "power_cycle": (True, set()),
    "power_cut": (True, {"during"}),
    "prompt": (True, {"staff", "timeout_ms"}),
    "cancel_prompt": (True, set()),
    "login": (True, {"staff", "name"}),
    "logout": (True, {"staff"}),
    "press": (True, {"score", "hold_ms", "bounce_ms"}),
    "raw": (True, {"key", "edges"}),
    "host_restart": (False, set()),
    "host_clock_jump": (False, {"by_ms"}),
    "set_config": (True, {"config"}),
}
LINK_FAULTS = {"drop", "corrupt", "duplicate", "reorder", "split", "stall"}
STALL_MS = 500  # a stalled keypad-to-host burst reaches the host this much later
SETTINGS = {
    "keys",
    "key_order",
    "debounce",
    "debounce_ms",
    "chord_ms",
    "repeat_guard_ms",
    "stuck_ms",
    "unprompted",
    "thanks_ms",
    "status_ms",
    "ack_timeout_ms",
    "capacity",
    "buzzer",
    "serial",
}


class ScenarioError(RatepadError):
    """A scenario file that cannot be run as written."""


@dataclass(frozen=True)
class Device:
    id: str
    keys: int
    config: dict[str, Any]
    ticks_start_ms: int = 0  # the keypad's ticks_ms at scenario time 0 (wraps at 2**30)


@dataclass(frozen=True)
class Action:
    at_ms: int
    do: str
    device: str | None
    args: dict[str, Any]
    index: int


@dataclass(frozen=True)
class Scenario:
    seed: int
    until_ms: int
    devices: tuple[Device, ...]
    link: dict[str, float]
    events: tuple[Action, ...]
    source: str = field(default="")
    name: str = ""
    expect: dict[str, Any] = field(default_factory=dict)


def _int(value: Any, where: str, low: int = 0, high: int = 2**63) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ScenarioError(f"{where}: expected an integer {low}..{high}, got {value!r}")
    return value


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise ScenarioError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {extra}")


def parse(data: dict[str, Any], source: str = "", schema: bool = True) -> Scenario:
    """Check a scenario given as parsed JSON/TOML (``schema=False``: not against the JSON
    Schema, for scenarios made by code such as fleets; the checks below still apply)."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario is a JSON object")
    if schema:
        try:
            validate(data)
        except SchemaError as exc:
            raise ScenarioError(str(exc)) from None
    seed = _int(data.get("seed", 0), "seed")
    until = _int(data.get("until_ms", 60_000), "until_ms", 0, MAX_UNTIL_MS)
    devices = []
    raw_devices = data.get("devices", [])
    if not isinstance(raw_devices, list) or not raw_devices:
        raise ScenarioError("devices: expected a non-empty list")
    for i, d in enumerate(raw_devices):
        where = f"devices[{i}]"
        if not isinstance(d, dict):
            raise ScenarioError(f"{where}: expected an object")
        _check_keys(d, {"id", "keys", "config", "ticks_start_ms"}, where)
        dev_id = d.get("id")
        if not isinstance(dev_id, str) or not dev_id or len(dev_id.encode()) > 16:
            raise ScenarioError(f"{where}.id: expected a name of 1..16 bytes")
        keys = _int(d.get("keys", 5), f"{where}.keys", 3, 5)
        config = d.get("config", {})
        if not isinstance(config, dict):
            raise ScenarioError(f"{where}.config: expected an object")
        _check_keys(config, SETTINGS, f"{where}.config")
        check_settings(config, f"{where}.config", keys)
        ticks = _int(d.get("ticks_start_ms", 0), f"{where}.ticks_start_ms", 0, (1 << 30) - 1)
        devices.append(Device(dev_id, keys, dict(config), ticks))
    ids = [d.id for d in devices]
    if len(set(ids)) != len(ids):
        raise ScenarioError("devices: ids must be unique")
    link = data.get("link", {})
    if not isinstance(link, dict):
        raise ScenarioError("link: expected an object")
    _check_keys(link, LINK_FAULTS, "link")
    rates: dict[str, float] = {}
    for k, v in link.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
            raise ScenarioError(f"link.{k}: expected a probability 0 <= p < 1")
        rates[k] = float(v)
    raw_events = data.get("events", [])
    if not isinstance(raw_events, list):
        raise ScenarioError("events: expected a list")
    events = []
    for i, e in enumerate(raw_events):
        where = f"events[{i}]"
        if not isinstance(e, dict):
            raise ScenarioError(f"{where}: expected an object")
        do = e.get("do")
        if do not in ACTIONS:
            raise ScenarioError(f"{where}.do: unknown action {do!r}")
        needs_device, extra = ACTIONS[do]
        _check_keys(e, {"at_ms", "do", "device"} | extra, where)
        at = _int(e.get("at_ms"), f"{where}.at_ms", 0, MAX_UNTIL_MS)
        device = e.get("device")
        if needs_device and device not in ids:
            raise ScenarioError(f"{where}.device: unknown device {device!r}")
        args = {k: v for k, v in e.items() if k in extra}
        _check_action(do, args, where, next((d for d in devices if d.id == device), None))
        events.append(Action(at, do, device, args, i))
    events.sort(key=lambda a: (a.at_ms, a.index))  # same time: file order
    expect = data.get("expect", {})
    for dev_id in expect.get("ratings_per_device", {}):
        if dev_id not in ids:
            raise ScenarioError(f"expect.ratings_per_device: unknown device {dev_id!r}")
    name = data.get("name") or (Path(source).stem if source else "scenario")
    return Scenario(seed, until, tuple(devices), rates, tuple(events), source, name, expect)


def check_settings(config: dict[str, Any], where: str, keys: int) -> None:
    """Settings as the keypad's firmware checks them (firmware/rpfw/settings.py, its own rules:
    ``_parse`` for a value, ``_check_order`` for the key order)."""
    from ..tools import fwsource

    rules = fwsource.load("rpfw.settings")
    for name, value in config.items():
        try:
            rules._parse(name, str(value))
        except ValueError as exc:
            raise ScenarioError(
                f"{where}.{name}: the keypad refuses {_short(value)}: {exc}"
            ) from None
    if "key_order" in config:
        try:
            rules._check_order(str(config["key_order"]), int(config.get("keys", keys)))
        except ValueError as exc:
            raise ScenarioError(f"{where}.key_order: the keypad refuses it: {exc}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(args: dict[str, Any], key: str, where: str) -> None:
    value = args.get(key, "")
    limit = TEXT_LIMITS[key]
    if not isinstance(value, str) or len(value.encode("utf-8", "surrogatepass")) > limit:
        raise ScenarioError(f"{where}.{key}: expected a text of at most {limit} UTF-8 bytes")


def _check_action(do: str, args: dict[str, Any], where: str, device: Device | None) -> None:
    keys = device.keys if device else 5
    if do == "press":
        _int(args.get("score"), f"{where}.score", 1, keys)
        _int(args.get("hold_ms", 120), f"{where}.hold_ms", 1, 10**9)
        _int(args.get("bounce_ms", 0), f"{where}.bounce_ms", 0, 1000)
    elif do == "raw":
        _int(args.get("key"), f"{where}.key", 1, keys)
        edges = args.get("edges")
        if not isinstance(edges, list) or not edges:
            raise ScenarioError(f"{where}.edges: expected a list of [offset_ms, level] pairs")
        for j, edge in enumerate(edges):
            if not (isinstance(edge, list) and len(edge) == 2 and edge[1] in (0, 1)):
                raise ScenarioError(f"{where}.edges[{j}]: expected [offset_ms, 0|1]")
            _int(edge[0], f"{where}.edges[{j}][0]", 0, 10**9)
    elif do == "prompt":
        _text(args, "staff", where)
        _int(args.get("timeout_ms", 30_000), f"{where}.timeout_ms", 0, 2**32 - 1)
    elif do in ("login", "logout"):
        _text(args, "staff", where)
        if do == "login":
            _text(args, "name", where)
    elif do == "host_clock_jump":
        _int(args.get("by_ms"), f"{where}.by_ms", -(10**12), 10**12)
    elif do == "power_cut":
        if args.get("during", "journal_write") != "journal_write":
            raise ScenarioError(f"{where}.during: only 'journal_write' is supported")
    elif do == "set_config":
        config = args.get("config")
        if not isinstance(config, dict) or not config:
            raise ScenarioError(f"{where}.config: expected an object of settings")
        _check_keys(config, SETTINGS, f"{where}.config")
        check_settings(config, f"{where}.config", keys)


def load(path: str | Path) -> Scenario:
    """Read and check a scenario file (.json or .toml)."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror or exc}") from None
    kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
    try:
        data = tomllib.loads(text.decode("utf-8")) if kind == "TOML" else json.loads(text)
    except RecursionError:
        raise ScenarioError(f"{path}: not valid {kind}: nested too deep") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, TOMLDecodeError ...
        reason = str(exc)
        if "integer string conversion" in reason:
            reason = "a number with more than 4300 digits"
        raise ScenarioError(f"{path}: not valid {kind}: {reason}") from None
    try:
        return parse(data, str(path))
    except ScenarioError as exc:
        raise ScenarioError(f"{p.name}: {exc}") from None
