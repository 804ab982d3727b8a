"""Backends of the USB transports, by name: ``hid://…?api=NAME`` (a module with hidapi's
``enumerate`` and ``device``) and ``usb://…?backend=NAME`` (a pyusb backend).

As python-can names its interfaces, the transports name their backends and import them only
when used: ``hid.py`` and ``usb.py`` know no implementation, real or simulated. The simulated
USB stacks (``ratepad.sim.usb``) are backends like any other, and third parties add theirs
through the entry-point groups ``ratepad.hid_apis`` and ``ratepad.usb_backends``
(``name = "package.module"`` for a module that is the backend itself, or
``"package.module:factory"`` for a function that returns it, None when it is unavailable).
An explicit backend object can also be given to the transport: ``ratepad.open(url, backend=…)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

__all__ = ["HID_APIS", "USB_BACKENDS", "Backends"]


@dataclass(frozen=True)
class Backends:
    """The backends of one transport: built in, plus the entry-point ``group``'s."""

    group: str
    builtin: Mapping[str, str]

    def _table(self) -> dict[str, str]:
        found = dict(self.builtin)
        for ep in entry_points(group=self.group):
            found.setdefault(ep.name, ep.value)
        return found

    def names(self) -> list[str]:
        return sorted(self._table())

    def load(self, name: str) -> Any:
        """Backend ``name``: the module, or what its factory returns (None: the factory says
        it is unavailable). KeyError if unknown; ImportError if not installed."""
        module_name, _, factory = self._table()[name].partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, factory)() if factory else module


HID_APIS = Backends(
    "ratepad.hid_apis",
    {
        "hidraw": "hidraw",  # hidapi's Linux module on the kernel's hidraw nodes
        "hid": "hid",  # hidapi's libusb module (every OS)
        "sim": "ratepad.sim.usb.hidsim:registry_api",  # the ratepad.sim registry's keypads
    },
)
USB_BACKENDS = Backends(
    "ratepad.usb_backends",
    {
        "libusb1": "usb.backend.libusb1:get_backend",
        "libusb0": "usb.backend.libusb0:get_backend",
        "openusb": "usb.backend.openusb:get_backend",
        "sim": "ratepad.sim.usb.usbsim:registry_backend",  # the ratepad.sim registry's keypads
    },
)
