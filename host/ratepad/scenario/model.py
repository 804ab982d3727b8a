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


def _int(value: Any, where: str, low: int = 0, high: int = 2**63) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ScenarioError(f"{where}: expected an integer {low}..{high}, got {value!r}")
    return value


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise ScenarioError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {extra}")


def parse(data: dict[str, Any], source: str = "") -> Scenario:
    """Check a scenario given as parsed JSON/TOML."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario is a JSON object")
    _check_keys(data, {"seed", "until_ms", "devices", "link", "events"}, "scenario")
    seed = _int(data.get("seed", 0), "seed")
    until = _int(data.get("until_ms", 60_000), "until_ms", 0, 10**12)
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
        at = _int(e.get("at_ms"), f"{where}.at_ms", 0, 10**12)
        device = e.get("device")
        if needs_device and device not in ids:
            raise ScenarioError(f"{where}.device: unknown device {device!r}")
        args = {k: v for k, v in e.items() if k in extra}
        _check_action(do, args, where, next((d for d in devices if d.id == device), None))
        events.append(Action(at, do, device, args, i))
    events.sort(key=lambda a: (a.at_ms, a.index))  # same time: file order
    return Scenario(seed, until, tuple(devices), rates, tuple(events), source)


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
        staff = args.get("staff", "")
        if not isinstance(staff, str) or len(staff.encode()) > 16:
            raise ScenarioError(f"{where}.staff: expected a staff id of at most 16 bytes")
        _int(args.get("timeout_ms", 30_000), f"{where}.timeout_ms", 0, 2**32 - 1)
    elif do in ("login", "logout"):
        staff = args.get("staff", "")
        if not isinstance(staff, str) or len(staff.encode()) > 16:
            raise ScenarioError(f"{where}.staff: expected a staff id of at most 16 bytes")
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


def load(path: str | Path) -> Scenario:
    """Read and check a scenario file (.json or .toml)."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".toml":
            data = tomllib.loads(text.decode("utf-8"))
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    return parse(data, str(path))
