"""A MicroPython board on a pseudo-terminal, for testing tools that speak the raw REPL.

:class:`RawReplSim` opens a pty pair and answers on it like a board's USB serial REPL: the
friendly REPL (``>>>``), the raw REPL (Ctrl-A; code ended by Ctrl-D, answered ``OK`` + stdout +
``\\x04`` + stderr + ``\\x04>``), raw-paste mode (``\\x05A\\x01``, with flow control) and soft
reset (Ctrl-D).  Code runs on a real MicroPython VM (`MicroPythonVM`), whose
filesystem then holds whatever a tool copied::

    with RawReplSim() as board:              # board.port is e.g. "/dev/pts/7"
        subprocess.run(["mpremote", "connect", board.port, "ls"])
        board.read_file("/lib/rpfw/core.mpy")

The board it poses as is a Raspberry Pi Pico (``sys.platform == "rp2"``) running the VM's
MicroPython version, or the ``version`` given, so a tool's version check can be tested.  Its
filesystem starts as a freshly flashed Pico's does: empty (no ``/lib``), and ``os`` and ``open``
answer as MicroPython's littlefs does on the real rp2 binary (measured, see
tests/test_fakes_vs_rp2040.py): errno numbers (ENOENT is 2, not the VM's WASI 44), ``os.stat``
and ``os.ilistdir`` tuples as extmod/vfs_lfsx.c builds them, ``os.remove`` and ``os.rmdir`` both
``lfs_remove`` (either takes a file or an empty folder), ``os.mkdir`` one level only (ENOENT).
What it does not do: a soft reset clears the VM's modules and globals but runs neither boot.py
nor main.py (the VM has no ``machine`` module or USB), there is no hard reset, and
``os.statvfs`` is the VM's (a Pico's flash figures are the ``rp2040`` engine's to give).

Beside the emulated Pico (``ratepad.sim.rp2040.console``: the real MicroPython binary, on which
``ratepad flash`` and ``selftest`` are tested end to end) this simulator stays for what that
board cannot be or does slowly: any MicroPython version or board (the tool's refusals), a keypad
claiming to run normally, a busy port, in about a second a test instead of tens. It is kept
honest by a test running the same filesystem probe on it as on the real binary
(tests/test_fakes_vs_rp2040.py).

``python -m ratepad.tools.rawrepl_sim`` serves one until interrupted and prints its port.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import struct
import threading
import tty
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from .mpvm import MicroPythonBridgeError, MicroPythonError, MicroPythonVM

__all__ = ["RawReplSim"]

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
# The WebAssembly port's filesystem raises OSError with WASI errno numbers; a board raises
# MicroPython's (Linux) numbers and prints them as "OSError: [Errno 2] ENOENT".
_WASI_ERRNO = {
    2: (13, "EACCES"),
    6: (11, "EAGAIN"),
    8: (9, "EBADF"),
    10: (16, "EBUSY"),
    20: (17, "EEXIST"),
    28: (22, "EINVAL"),
    29: (5, "EIO"),
    31: (21, "EISDIR"),
    43: (19, "ENODEV"),
    44: (2, "ENOENT"),
    48: (12, "ENOMEM"),
    51: (28, "ENOSPC"),
    54: (20, "ENOTDIR"),
    55: (39, "ENOTEMPTY"),
    63: (1, "EPERM"),
    69: (30, "EROFS"),
}
_OSERROR_NUMBER = re.compile(r"^OSError: (\d+)$", re.M)


def _board_errno(match: re.Match[str]) -> str:
    number = int(match.group(1))
    if number not in _WASI_ERRNO:
        return match.group(0)
    code, name = _WASI_ERRNO[number]
    return f"OSError: [Errno {code}] {name}"


# The VM folder that is the board's filesystem, "/" for the board's code: it starts empty, as a
# fresh Pico's does (the VM's own root holds /tmp, /dev, ...). The VM's VfsPosix(root) cannot
# serve it (its rename passes one buffer as both paths: extmod/vfs_posix.c
# vfs_posix_get_path_str), so `os` and `open` below put the folder in front of every path.
BOARD_ROOT = "/board"
_PERSONA = """\
def __rp_littlefs(errnos, top):
    # os and open as MicroPython's littlefs answers them (extmod/vfs_lfsx.c), see the docstring
    import builtins, sys
    import os as real
    real_open = getattr(builtins, '_rp_real_open', builtins.open)
    builtins._rp_real_open = real_open
    try:
        real.mkdir(top)
    except OSError:
        pass
    def at(path):
        return top + path if path.startswith('/') else path
    def call(f, *args, **kw):
        try:
            return f(*args, **kw)
        except OSError as e:
            n = e.args[0] if e.args else 0
            raise OSError(errnos.get(n, n)) from None
    def stat(path):
        st = call(real.stat, at(path))
        folder = st[0] & 0x4000
        return (0x4000 if folder else 0x8000, 0, 0, 0, 0, 0, 0 if folder else st[6],
                st[7], st[8], st[9])
    def kind(path):
        try:
            return stat(path)[0]
        except OSError:
            return 0
    def ilistdir(path=''):
        out = []
        for entry in call(real.ilistdir, at(path)):
            full = entry[0] if path in ('', '.') else path.rstrip('/') + '/' + entry[0]
            out.append((entry[0], stat(full)[0], 0, stat(full)[6]))
        return iter(out)
    def listdir(path=''):
        return [entry[0] for entry in ilistdir(path)]
    def remove(path):
        if stat(path)[0] & 0x4000:
            call(real.rmdir, at(path))
        else:
            call(real.remove, at(path))
    def rename(old, new):
        was, there = kind(old), kind(new)
        if was and there and was != there:
            raise OSError(21 if there == 0x4000 else 20)  # EISDIR, ENOTDIR
        call(real.rename, at(old), at(new))
    def getcwd():
        cwd = real.getcwd()
        return cwd[len(top):] or '/' if cwd.startswith(top) else cwd
    def open(path, *args, **kw):
        if kind(path) == 0x4000:
            raise OSError(21)  # EISDIR
        return call(real_open, at(path), *args, **kw)
    class Os:
        def __getattr__(self, name):
            return getattr(real, name)
    board = Os()
    board.mkdir = lambda path: call(real.mkdir, at(path))
    board.chdir = lambda path: call(real.chdir, at(path))
    board.statvfs = lambda path: call(real.statvfs, at(path))
    board.getcwd = getcwd
    board.stat = stat
    board.ilistdir = ilistdir
    board.listdir = listdir
    board.remove = remove
    board.rmdir = remove
    board.rename = rename
    sys.modules['os'] = board
    builtins.open = open
    real.chdir(top)
    if top + '/lib' not in sys.path:
        sys.path.append(top + '/lib')
__rp_littlefs({errnos!r}, {top!r})
del __rp_littlefs
def __rp_persona(version, platform, machine):
    import sys
    real = sys
    class Implementation:
        pass
    impl = Implementation()
    impl.name = 'micropython'
    impl.version = version + ('',)
    impl._machine = machine
    impl._mpy = real.implementation._mpy
    class Sys:
        def __getattr__(self, name):
            return getattr(real, name)
    fake = Sys()
    fake.implementation = impl
    fake.platform = platform
    fake.path = ['', '.frozen', '/lib']  # what the board shows; imports use the real list
    real.modules['sys'] = fake
__rp_persona({version!r}, {platform!r}, {machine!r})
del __rp_persona
"""
_SOFT_RESET = """\
def __rp_reset():
    import sys
    g = globals()
    for name in list(g):
        if name != '__name__':
            del g[name]  # this function's own name too
    for name in list(sys.modules):
        del sys.modules[name]
__rp_reset()
"""


class RawReplSim:
    """One simulated board on a pty; see the module docstring.

    ``version`` (e.g. ``(1, 20, 0)``) is what ``sys.implementation.version`` says, the VM's own
    version by default; ``platform`` and ``machine`` likewise.  ``vm`` is used if given (and
    then not closed by :meth:`close`).  ``window`` is the raw-paste flow-control window.
    """

    def __init__(
        self,
        *,
        version: tuple[int, int, int] | None = None,
        platform: str = "rp2",
        machine: str = "Raspberry Pi Pico with RP2040",
        vm: MicroPythonVM | None = None,
        window: int = 128,
    ) -> None:
        self._own_vm = vm is None
        self.vm = MicroPythonVM(sys_path=()) if vm is None else vm
        self.version: tuple[int, ...] = version or tuple(
            int(v) for v in self.vm.version.split(".")[:3]
        )
        self.platform = platform
        self.machine = machine
        self.window = window
        self.soft_resets = 0
        """How many soft resets the board has done."""
        self._lock = threading.Lock()
        self._mode = "friendly"  # "friendly", "raw" or "paste"
        self._line = bytearray()
        self._paste_remain = 0
        self._stop = threading.Event()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        """The path a tool opens, like /dev/ttyACM0 of a real board."""
        self._persona()
        self._thread = threading.Thread(target=self._serve, name="rawrepl-sim", daemon=True)
        self._thread.start()

    # -- test access -------------------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        """A file of the board's filesystem (``FileNotFoundError`` if absent)."""
        with self._lock:
            return self.vm.read_file(BOARD_ROOT + path)

    def add_files(self, files: dict[str, bytes]) -> None:
        """Put files onto the board's filesystem, creating parent directories."""
        with self._lock:
            self.vm.add_files({BOARD_ROOT + path: data for path, data in files.items()})

    def exec(self, code: str) -> str:
        """Run code on the board (outside the REPL) and return its console output."""
        with self._lock:
            return self.vm.exec(code)

    def close(self) -> None:
        """Stop serving and close the pty (and the VM if this object made it).  Idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        if self._own_vm:
            self.vm.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the board ---------------------------------------------------------------------------

    def _persona(self) -> None:
        with self._lock:
            self.vm.exec(
                _PERSONA.format(
                    version=tuple(self.version),
                    platform=self.platform,
                    machine=self.machine,
                    errnos={wasi: board for wasi, (board, _) in _WASI_ERRNO.items()},
                    top=BOARD_ROOT,
                )
            )

    def _banner(self) -> bytes:
        version = ".".join(str(v) for v in self.version)
        return (
            f"MicroPython v{version} on 2025-01-01; {self.machine}\r\n"
            'Type "help()" for more information.\r\n>>> '
        ).encode()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._master, 4096)
            except (OSError, ValueError):
                return
            for byte in data:
                self._feed(byte)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except OSError:
                return
            view = view[written:]

    def _run(self, code: bytes) -> tuple[bytes, bytes]:
        """(stdout, stderr) of running ``code`` on the VM, with a board's \\r\\n line ends."""
        with self._lock:
            try:
                out, err = self.vm.exec(code.decode("utf-8", "replace")), ""
            except MicroPythonError as exc:
                out, err = exc.stdout, _OSERROR_NUMBER.sub(_board_errno, exc.traceback)
            except MicroPythonBridgeError as exc:
                out, err = "", f"Traceback (most recent call last):\nRuntimeError: {exc}\n"
        return (
            out.encode().replace(b"\n", b"\r\n"),
            err.encode().replace(b"\n", b"\r\n"),
        )

    def _soft_reset(self) -> None:
        self.soft_resets += 1
        self._send(b"MPY: soft reboot\r\n")
        with self._lock:
            self.vm.exec(_SOFT_RESET)
        self._persona()

    def _feed(self, c: int) -> None:
        if self._mode == "paste":
            self._feed_paste(c)
        elif self._mode == "raw":
            self._feed_raw(c)
        else:
            self._feed_friendly(c)

    def _feed_raw(self, c: int) -> None:
        if c == 0x01:  # Ctrl-A: raw-paste request ("\x05A" before it) or raw REPL reset
            if len(self._line) == 2 and self._line[0] == 0x05:
                if self._line[1:] == b"A":
                    self._line.clear()
                    self._mode = "paste"
                    self._paste_remain = self.window
                    # "R\x01", the window size, and \x01: the host may send two windows
                    self._send(b"R\x01" + struct.pack("<H", self.window) + b"\x01")
                    return
                self._send(b"R\x00")
            else:
                self._send(RAW_BANNER)
            self._line.clear()
            self._send(b">")
        elif c == 0x02:  # Ctrl-B: friendly REPL
            self._line.clear()
            self._mode = "friendly"
            self._send(b"\r\n" + self._banner())
        elif c == 0x03:  # Ctrl-C: clear the line
            self._line.clear()
        elif c == 0x04:  # Ctrl-D: run the line, or soft reset if it is empty
            self._send(b"OK")
            if not self._line:
                self._send(b"\r\n")
                self._soft_reset()
                self._send(RAW_BANNER + b">")
                return
            out, err = self._run(bytes(self._line))
            self._line.clear()
            self._send(out + b"\x04" + err + b"\x04>")
        else:
            self._line.append(c)

    def _feed_paste(self, c: int) -> None:
        if c in (0x03, 0x04):  # end of code (Ctrl-D) or abort (Ctrl-C)
            self._send(b"\x04")
            self._mode = "raw"
            code, self._line = bytes(self._line), bytearray()
            if c == 0x03:
                out, err = b"", b"Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n"
            else:
                out, err = self._run(code)
            self._send(out + b"\x04" + err + b"\x04>")
            return
        self._line.append(c)
        self._paste_remain -= 1
        if self._paste_remain == 0:
            self._paste_remain = self.window
            self._send(b"\x01")  # another window is free

    def _feed_friendly(self, c: int) -> None:
        if c == 0x01:  # Ctrl-A: raw REPL
            self._line.clear()
            self._mode = "raw"
            self._send(b"\r\n" + RAW_BANNER + b">")
        elif c == 0x02:  # Ctrl-B: banner again
            self._line.clear()
            self._send(b"\r\n" + self._banner())
        elif c == 0x03:  # Ctrl-C
            self._line.clear()
            self._send(b"\r\n>>> ")
        elif c == 0x04:  # Ctrl-D: soft reset (a board would now run boot.py and main.py)
            self._line.clear()
            self._send(b"\r\n")  # shared/runtime/pyexec.c: the friendly REPL ends its line
            self._soft_reset()
            self._send(self._banner())
        elif c == 0x0D:  # Enter: run the line; an expression's value is printed
            line, self._line = bytes(self._line).decode("utf-8", "replace"), bytearray()
            self._send(b"\r\n")
            if line.strip():
                try:
                    compile(line, "<stdin>", "eval")
                    code = f"_ = ({line})\nif _ is not None:\n    print(repr(_))\n"
                except SyntaxError:
                    code = line
                out, err = self._run(code.encode())
                self._send(out + err)
            self._send(b">>> ")
        elif c in (0x08, 0x7F):  # backspace
            if self._line:
                self._line.pop()
                self._send(b"\x08 \x08")
        elif c >= 0x20:
            self._line.append(c)
            self._send(bytes([c]))  # echo


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ratepad.tools.rawrepl_sim",
        description="Serve a simulated MicroPython board (raw REPL on a pty) until interrupted.",
    )
    parser.add_argument("--micropython", metavar="X.Y.Z", help="version the board claims")
    args = parser.parse_args(argv)
    version = None
    if args.micropython:
        major, minor, patch = (int(p) for p in [*args.micropython.split("."), "0", "0"][:3])
        version = (major, minor, patch)
    with RawReplSim(version=version) as sim:
        print(f"port: {sim.port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
