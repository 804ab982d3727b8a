"""The keypad's USB identity, defined once: the real transports and the simulated USB stacks use
it, and the firmware enumerates with the same values (firmware/rpfw/usbhid.py)."""

from __future__ import annotations

VID = 0x1209  # pid.codes
PID = 0x0001  # pid.codes test PID: development keypads; allocate a PID before shipping
PRODUCT = "ratepad keypad"
USAGE_PAGE = 0xFF00  # vendor defined: its reports are ours alone
