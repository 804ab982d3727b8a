"""``sim://ID[?setting=value...]``: an in-process simulated keypad (real firmware core)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from .. import sim
from ..errors import DisconnectedError
from .base import DeviceInfo, Transport


class SimTransport(Transport):
    scheme = "sim"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.device_id = self.parts.netloc or self.parts.path.strip("/") or "K1"
        self.settings = dict(parse_qsl(self.parts.query))
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
