"""``tcp://HOST:PORT/ID``: a keypad served over TCP (``ratepad sim SCENARIO --serve``).

The raw byte stream runs over the socket after a one-line handshake: the client sends
``RATEPAD <ID>\\n``; the server answers ``OK\\n`` or ``ERR <reason>\\n``.
"""

from __future__ import annotations

import select
import socket

from ..errors import BadURLError, DeviceNotFoundError, DisconnectedError, TransportError
from .base import Transport

HANDSHAKE = b"RATEPAD "


class TcpTransport(Transport):
    scheme = "tcp"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        try:
            port = self.parts.port  # ValueError: not a number, or out of range
        except ValueError:
            port = None
        if not self.parts.hostname or not port:
            raise BadURLError(f"{url!r}: expected tcp://HOST:PORT/ID with a PORT of 1..65535")
        self.device_id = self.parts.path.strip("/") or "K1"
        if not 0 < len(self.device_id.encode("utf-8", "replace")) <= 64:
            raise BadURLError(f"{url!r}: the keypad id is longer than 64 bytes")
        self._sock: socket.socket | None = None

    def open(self) -> None:
        host, port = self.parts.hostname or "", self.parts.port or 0
        try:
            sock = socket.create_connection((host, port), timeout=5)
        except OSError as exc:
            raise DeviceNotFoundError(
                f"{self.url}: cannot connect ({exc.strerror or exc})"
            ) from None
        try:
            sock.sendall(HANDSHAKE + self.device_id.encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n") and len(answer) < 200:
                chunk = sock.recv(1)
                if not chunk:
                    break
                answer += chunk
        except OSError as exc:
            sock.close()
            raise DisconnectedError(f"{self.url}: {exc}") from None
        if answer != b"OK\n":
            sock.close()
            reason = answer.decode(errors="replace").strip() or "no answer"
            raise DeviceNotFoundError(f"{self.url}: {reason}")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise DisconnectedError(f"{self.url} is not open")
        return self._sock

    def write(self, data: bytes) -> None:
        try:
            self._socket().sendall(data)
        except OSError as exc:
            raise DisconnectedError(f"{self.url}: {exc}") from None

    def read(self, timeout: float) -> bytes:
        sock = self._socket()
        try:
            if timeout <= 0:  # poll: what has arrived, if anything; a timeout of 0 would make
                # the socket non-blocking, and recv raise BlockingIOError, not TimeoutError
                if not select.select([sock], [], [], 0)[0]:
                    return b""
                sock.settimeout(None)
            else:
                sock.settimeout(timeout)
            data = sock.recv(65536)
        except (TimeoutError, BlockingIOError):
            return b""
        except OSError as exc:
            raise DisconnectedError(f"{self.url}: {exc}") from None
        if not data:
            raise DisconnectedError(f"{self.url}: closed by the server")
        return data

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError as exc:  # pragma: no cover - closing a dead socket
                raise TransportError(str(exc)) from None
            finally:
                self._sock = None
