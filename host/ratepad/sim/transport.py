"""``sim://ID[?setting=value...]``: an in-process simulated keypad (real firmware core).

The settings in the query are checked when the URL is parsed, with the firmware's own rules
(``firmware/rpfw/settings.py``, loaded through ``ratepad.tools.fwsource``): a setting the keypad
would refuse is a ``BadURLError`` with the firmware's reason, not a keypad that boots with a
config fault.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from .. import sim
from ..errors import BadURLError, DisconnectedError
from ..tools import fwsource
from ..transports.base import DeviceInfo, Transport


def check_settings(settings: dict[str, str], where: str) -> None:
    """Refuse (BadURLError) settings the keypad's firmware would refuse, with its reason."""
    rules = fwsource.load("rpfw.settings")
    checked = rules.Settings()
    # "keys" first, as the firmware loads them: key_order is checked against it
    for name in sorted(settings, key=lambda n: n != "keys"):
        text = settings[name]
        if "\n" in text or "=" in name:  # one "name=value" line each in the settings file
            raise BadURLError(f"{where}: setting {name!r}: line breaks are not allowed")
        try:
            checked._apply(name, text)
        except ValueError as exc:
            known = ", ".join(rules.NAMES)
            extra = f" (known: {known})" if name not in rules.SPEC else ""
            raise BadURLError(f"{where}: setting {name}={text!r}: {exc}{extra}") from None


class SimTransport(Transport):
    scheme = "sim"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.device_id = self.parts.netloc or self.parts.path.strip("/") or "K1"
        try:
            pairs = parse_qsl(self.parts.query, keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise BadURLError(f"{url!r}: the settings are not valid UTF-8") from None
        self.settings = dict(pairs)
        if len(self.settings) != len(pairs):
            raise BadURLError(f"{url!r}: a setting is given twice")
        # the keypad's serial is its id unless the URL says otherwise: the same rules apply
        check_settings({"serial": self.device_id, **self.settings}, repr(url))
        self._kp: sim.RealtimeKeypad | None = None

    def open(self) -> None:
        self._kp = sim.get(self.device_id, self.settings)
        self._kp.connect()

    def _keypad(self) -> sim.RealtimeKeypad:
        if self._kp is None:
            raise DisconnectedError(f"{self.url} is not open")
        return self._kp

    def write(self, data: bytes) -> None:
        self._keypad().write(data)

    def read(self, timeout: float) -> bytes:
        return self._keypad().read(timeout)

    def close(self) -> None:
        if self._kp is not None:
            self._kp.disconnect()
            self._kp = None

    @classmethod
    def discover(cls) -> list[DeviceInfo]:
        return [DeviceInfo(f"sim://{i}", i, "simulated keypad") for i in sim.ids()]
