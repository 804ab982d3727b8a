"""An emulated Pico seen from the PC as a real one is: its CDC console on a pseudo-terminal (what
``/dev/ttyACM0`` is to mpremote and ``ratepad flash``) and its HID link on a TCP port that
``tcp://127.0.0.1:PORT/ID`` opens (``ratepad selftest``, ``ratepad.open``).

The emulator's time moves only when asked, so a thread runs the Pico in small steps and carries
bytes both ways between steps; simulated time runs ahead of wall time while the board is idle
(sleeping costs nothing) and slower while its CPU is busy, as the emulator allows::

    with Harness() as h, PicoConsole(EmulatedPico(h)) as board:
        subprocess.run(["mpremote", "connect", board.port, "ls"])
        with board.lock:                # anything else done to the Pico meanwhile
            board.pico.press_keys(0b1)

When the board leaves the bus (a reset, boot.py re-plugging its USB) the terminal hangs up, so a
program holding it gets an error as it would from a vanished ``/dev/ttyACM0``, and a new one
(:attr:`port`) appears when the board is back.

The TCP side speaks ``ratepad.transports.tcp``'s handshake (``RATEPAD <ID>\\n`` -> ``OK\\n``) and
then the keypad's byte stream: what the client sends goes out as 64-byte OUT reports, every IN
report comes back whole (the stream decoder skips the zero padding); reports sent while no
client is connected are dropped. One client at a time.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import tty
from types import TracebackType
from typing import Self

from .pico import EmulatedPico

__all__ = ["PicoConsole"]

REPORT = 64
STEP_MS = 5  # simulated time per step
IDLE_WAIT_S = 0.002  # wall time to wait for the PC when the last step moved no bytes


class PicoConsole:
    """Serve ``pico``'s CDC console on :attr:`port` and its HID link on :attr:`tcp_url`
    until :meth:`close` (which does not close the Pico)."""

    def __init__(self, pico: EmulatedPico, *, device_id: str = "K1") -> None:
        self.pico = pico
        self.device_id = device_id
        self.lock = threading.RLock()
        """Held while the thread touches the Pico: take it to do anything else to the Pico."""
        self.error: BaseException | None = None
        """What stopped the thread, if anything did (the emulator failing)."""
        self._master = self._slave = -1
        self.port = ""
        """The pseudo-terminal a tool opens, like /dev/ttyACM0 of a real board; a new one each
        time the board comes back after leaving the bus."""
        self._plug_in()
        self._cdc_up = False  # the host has the board's CDC port open (as of the last step)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.tcp_url = f"tcp://127.0.0.1:{self._server.getsockname()[1]}/{device_id}"
        """The keypad's HID link for ``ratepad.open`` and the CLI."""
        self._client: socket.socket | None = None
        self._greeted = False
        self._inbox = bytearray()  # client bytes: the handshake, then the stream to the keypad
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="pico-console", daemon=True)
        self._thread.start()

    # -- the thread -----------------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            moved = True
            while not self._stop.is_set():
                moved = self._step(0 if moved else IDLE_WAIT_S)
        except BaseException as exc:  # the emulator failed: keep the reason for the test
            self.error = exc

    def _plug_in(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)

    def _unplug(self) -> None:
        # The board left the bus (a reset, a re-plug of its USB): its port goes away, and a
        # program holding it open gets an error, as with a real /dev/ttyACM0 (closing a pty's
        # master hangs up its terminal).
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    def _follow_the_bus(self) -> None:
        up = self.pico.console_ready
        if self._cdc_up and not up:
            self._unplug()
        elif up and self._master < 0:
            self._plug_in()
        self._cdc_up = up

    def _step(self, wait: float) -> bool:
        sources: list[int | socket.socket] = [self._server]
        if self._master >= 0:
            sources.append(self._master)
        if self._client is not None:
            sources.append(self._client)
        ready, _, _ = select.select(sources, [], [], wait)
        moved = False
        with self.lock:
            if self._master in ready:
                data = self._read_pty()
                if data:
                    self.pico.write_console(data)
                    moved = True
            if self._server in ready:
                self._accept()
            if self._client is not None and self._client in ready:
                moved |= self._read_client()
            self.pico.run_for(STEP_MS)
            self._follow_the_bus()
            out = self.pico.take_console()
            if out and self._master >= 0:
                self._write_pty(out)
                moved = True
            reports = self.pico.take_reports()
            if reports and self._client is not None and self._greeted:
                with contextlib.suppress(OSError):
                    self._client.sendall(b"".join(reports))
                moved = True
        return moved

    def _read_pty(self) -> bytes:
        try:
            return os.read(self._master, 4096)
        except OSError:  # no tool has the terminal open (EIO): nothing typed
            return b""

    def _write_pty(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except OSError:  # the terminal's buffer is full (nobody reads it): the bytes are
                return  # lost, as a board's are when no program has its port open
            view = view[written:]

    def _accept(self) -> None:
        conn, _ = self._server.accept()
        if self._client is not None:  # one client at a time, as one program opens a HID device
            conn.sendall(b"ERR busy\n")
            conn.close()
            return
        self._client, self._greeted = conn, False
        self._inbox.clear()

    def _read_client(self) -> bool:
        assert self._client is not None
        try:
            data = self._client.recv(4096)
        except OSError:
            data = b""
        if not data:
            self._client.close()
            self._client = None
            return False
        self._inbox.extend(data)
        if not self._greeted:
            line, newline, rest = bytes(self._inbox).partition(b"\n")
            if not newline:
                return True
            self._inbox[:] = rest
            if line != b"RATEPAD " + self.device_id.encode():
                self._client.sendall(b"ERR no such keypad\n")
                self._client.close()
                self._client = None
                return True
            self._client.sendall(b"OK\n")
            self._greeted = True
        while self._inbox:
            chunk = bytes(self._inbox[:REPORT])
            del self._inbox[:REPORT]
            self.pico.write_hid(chunk)
        return True

    # -- the outside ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop serving; close the terminal and the socket (not the Pico).  Idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for sock in (self._client, self._server):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._client = None
        self._unplug()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
