"""Serve simulated keypads over TCP (``tcp://HOST:PORT/ID``) to other processes.

A connection names a keypad (``RATEPAD <ID>``) and then carries its raw byte stream. What is
served is anything with a ``RealtimeKeypad``'s host side (``ServedKeypad``): ``connect`` may
refuse (``Refused``: the client reads ``ERR <reason>``) and ``read`` may end the connection
(``Dropped``: the keypad vanished, the socket is shut down and the client sees it gone).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Protocol


class Refused(Exception):
    """``connect()``: the keypad cannot be reached now; the message goes to the client."""


class Dropped(Exception):
    """``read()``: the keypad went away (no power, link down, server closing)."""


class ServedKeypad(Protocol):
    """The host side of a keypad, as the server uses it (``RealtimeKeypad`` is one)."""

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def read(self, timeout: float | None) -> bytes: ...

    def write(self, data: bytes) -> None: ...


Lookup = Callable[[str], ServedKeypad | None]


class KeypadServer(socketserver.ThreadingTCPServer):
    """Each connection names a keypad (``RATEPAD <ID>``) and then carries its byte stream.

    ``lookup`` is called once per connection: it may return a fresh object for each.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], lookup: Lookup) -> None:
        self.lookup = lookup
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url_base(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        if ":" in name:
            name = f"[{name}]"
        return f"tcp://{name}:{port}"


class _Handler(socketserver.StreamRequestHandler):
    server: KeypadServer

    def handle(self) -> None:
        line = self.rfile.readline(200)
        if not line.startswith(b"RATEPAD ") or not line.endswith(b"\n"):
            self.wfile.write(b"ERR expected 'RATEPAD <ID>'\n")
            return
        device_id = line[8:-1].decode(errors="replace")
        keypad = self.server.lookup(device_id)
        if keypad is None:
            self.wfile.write(f"ERR no keypad {device_id}\n".encode())
            return
        try:
            keypad.connect()
        except Refused as exc:
            self.wfile.write(f"ERR {exc}\n".encode())
            return
        sock: socket.socket = self.request
        done = threading.Event()

        def pump_out() -> None:
            while not done.is_set():
                try:
                    data = keypad.read(0.1)
                except Dropped:
                    break
                if data:
                    try:
                        sock.sendall(data)
                    except OSError:
                        break
            done.set()
            with contextlib.suppress(OSError):  # wakes the recv below; the client sees EOF
                sock.shutdown(socket.SHUT_RDWR)

        sender = threading.Thread(target=pump_out, daemon=True)
        try:
            self.wfile.write(b"OK\n")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sender.start()
            while not done.is_set():
                data = sock.recv(65536)
                if not data:
                    break
                keypad.write(data)
        except OSError:
            pass
        finally:
            done.set()
            if sender.is_alive():
                sender.join(timeout=1)
            keypad.disconnect()
            with contextlib.suppress(OSError):
                sock.close()


def serve(address: tuple[str, int], lookup: Lookup) -> KeypadServer:
    """Start serving in a background thread; ``server.shutdown()`` stops it."""
    server = KeypadServer(address, lookup)
    threading.Thread(target=server.serve_forever, name="keypad-server", daemon=True).start()
    return server
