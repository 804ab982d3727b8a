"""Serve simulated keypads over TCP (``tcp://HOST:PORT/ID``) to other processes."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable

from .keypad import RealtimeKeypad


class KeypadServer(socketserver.ThreadingTCPServer):
    """Each connection names a keypad (``RATEPAD <ID>``) and then carries its byte stream."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], lookup: Callable[[str], RealtimeKeypad | None]
    ) -> None:
        self.lookup = lookup
        super().__init__(address, _Handler)

    @property
    def url_base(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
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
        self.wfile.write(b"OK\n")
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keypad.connect()
        done = threading.Event()

        def pump_out() -> None:
            while not done.is_set():
                data = keypad.read(0.1)
                if data:
                    try:
                        sock.sendall(data)
                    except OSError:
                        done.set()

        sender = threading.Thread(target=pump_out, daemon=True)
        sender.start()
        try:
            while not done.is_set():
                data = sock.recv(65536)
                if not data:
                    break
                keypad.write(data)
        except OSError:
            pass
        finally:
            done.set()
            sender.join(timeout=1)
            keypad.disconnect()
            with contextlib.suppress(OSError):
                sock.close()


def serve(address: tuple[str, int], lookup: Callable[[str], RealtimeKeypad | None]) -> KeypadServer:
    """Start serving in a background thread; ``server.shutdown()`` stops it."""
    server = KeypadServer(address, lookup)
    threading.Thread(target=server.serve_forever, name="keypad-server", daemon=True).start()
    return server
