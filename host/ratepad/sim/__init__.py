"""Simulated keypads: the real firmware core on CPython, on a virtual or the wall clock.

In-process keypads opened as ``sim://ID`` live in a registry so tests can act as the customer::

    kp = ratepad.open("sim://K1")
    ratepad.sim.get("K1").press(5)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .simulated import RealtimeKeypad, SimulatedKeypad

__all__ = [
    "EPOCH0",
    "RealtimeKeypad",
    "SimulatedKeypad",
    "devices",
    "get",
    "ids",
    "remove",
    "reset",
]

EPOCH0 = 1_800_000_000_000  # the host's wall clock at simulated time 0 (ms since 1970)

_LOCK = threading.Lock()
_DEVICES: dict[str, RealtimeKeypad] = {}


def get(
    device_id: str = "K1",
    settings: Mapping[str, Any] | None = None,
    storage_dir: str | None = None,
) -> RealtimeKeypad:
    """The in-process simulated keypad ``device_id``, created on first use.

    ``storage_dir`` keeps its flash (journal, settings) in a folder instead of memory.
    """
    with _LOCK:
        kp = _DEVICES.get(device_id)
        if kp is None:
            kp = _DEVICES[device_id] = RealtimeKeypad(device_id, settings, storage_dir)
        return kp


def remove(device_id: str) -> None:
    with _LOCK:
        kp = _DEVICES.pop(device_id, None)
    if kp is not None:
        kp.close()


def reset() -> None:
    """Forget every simulated keypad (each test starts from factory-fresh keypads)."""
    with _LOCK:
        devices = list(_DEVICES.values())
        _DEVICES.clear()
    for kp in devices:
        kp.close()


def ids() -> list[str]:
    with _LOCK:
        return sorted(_DEVICES)


def devices() -> dict[str, RealtimeKeypad]:
    """The simulated keypads that exist now (without creating any)."""
    with _LOCK:
        return dict(_DEVICES)
