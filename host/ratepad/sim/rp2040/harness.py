"""The emulated Raspberry Pi Pico: the real MicroPython rp2 image in rp2040js, driven from Python.

``Harness`` starts ``node harness.mjs IMAGE BOOTROM`` (this folder) and talks to it with one JSON
request per line; each emulated keypad in it is a chip on its own simulated clock (see
``keypad.mjs`` and ``chip.mjs`` for what is emulated and how). Where things are:

* the MicroPython image: ``$RATEPAD_MICROPYTHON_IMAGE`` — MicroPython v1.28's RPI_PICO
  ``firmware.bin`` (flash from offset 0) or the official ``.uf2`` download;
* the RP2040 boot ROM (rev B1, 16 KiB; MicroPython calls its flash and float routines):
  ``$RATEPAD_RP2040_BOOTROM``, else ``bootrom-rp2040-b1.bin`` beside the image;
* rp2040js: the ``node_modules`` that holds it (``$RATEPAD_NODE_MODULES``, else the first one
  above this file or the current folder; ``make setup`` installs the pinned version).

``missing()`` says in one line what is absent (the CLI prints it and exits 2; tests skip).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import weakref
from collections import deque
from pathlib import Path
from typing import IO, Any

from ...errors import ToolError

__all__ = [
    "BOOTROM_ENV",
    "BOOTROM_NAME",
    "IMAGE_ENV",
    "PACKAGE",
    "Harness",
    "HarnessError",
    "HarnessUnavailable",
    "find_bootrom",
    "find_image",
    "find_rp2040js",
    "missing",
]

IMAGE_ENV = "RATEPAD_MICROPYTHON_IMAGE"
BOOTROM_ENV = "RATEPAD_RP2040_BOOTROM"
BOOTROM_NAME = "bootrom-rp2040-b1.bin"
PACKAGE = "rp2040js"
NODE_MODULES_ENV = "RATEPAD_NODE_MODULES"
SCRIPT = Path(__file__).with_name("harness.mjs")
BOOTROM_SIZE = 16384
DEFAULT_TIMEOUT = 600.0


class HarnessUnavailable(ToolError):
    """Node.js, rp2040js, the MicroPython image or the boot ROM is missing."""


class HarnessError(ToolError, RuntimeError):
    """The emulator process failed or refused a request."""


def find_image() -> Path:
    """The MicroPython image named by ``$RATEPAD_MICROPYTHON_IMAGE``."""
    value = os.environ.get(IMAGE_ENV)
    if not value:
        raise HarnessUnavailable(
            f"the rp2040 engine needs MicroPython for the Raspberry Pi Pico: set ${IMAGE_ENV} to "
            "its firmware .bin or the official RPI_PICO .uf2 (v1.28)"
        )
    path = Path(value)
    if not path.is_file():
        raise HarnessUnavailable(f"${IMAGE_ENV}={value}: no such file")
    head = path.read_bytes()[:4]
    if path.suffix.lower() == ".uf2" and head != b"UF2\n":
        raise HarnessUnavailable(f"${IMAGE_ENV}={value} is not a UF2 file")
    return path


def find_bootrom(image: Path | None = None) -> Path:
    """The RP2040 boot ROM: ``$RATEPAD_RP2040_BOOTROM``, else beside the image."""
    value = os.environ.get(BOOTROM_ENV)
    path = Path(value) if value else (image or find_image()).with_name(BOOTROM_NAME)
    if not path.is_file():
        raise HarnessUnavailable(
            f"the rp2040 engine needs the RP2040 boot ROM ({BOOTROM_NAME}, 16 KiB): set "
            f"${BOOTROM_ENV} or put it beside the MicroPython image (not found: {path})"
        )
    if path.stat().st_size != BOOTROM_SIZE:
        raise HarnessUnavailable(f"{path} is not an RP2040 boot ROM (not 16 KiB)")
    return path


def find_rp2040js() -> Path:
    """The ``node_modules`` folder holding rp2040js."""
    env = os.environ.get(NODE_MODULES_ENV)
    starts = [Path(env)] if env else [Path(__file__).resolve().parent, Path.cwd().resolve()]
    for start in starts:
        for directory in (start, *start.parents) if not env else (start,):
            candidate = directory / "node_modules" if not env else directory
            if (candidate / PACKAGE / "package.json").is_file():
                return candidate
    raise HarnessUnavailable(
        f"the rp2040 engine needs the npm package {PACKAGE} (`npm install {PACKAGE}` here or in "
        f"a parent folder, or set ${NODE_MODULES_ENV}; a source checkout: `make setup`)"
    )


def missing() -> str | None:
    """Why the emulated Pico cannot run here (one line), or None."""
    if shutil.which("node") is None:
        return "the rp2040 engine needs Node.js (`node` is not on PATH)"
    try:
        find_rp2040js()
        find_bootrom(find_image())
    except HarnessUnavailable as e:
        return str(e)
    return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class Harness:
    """One Node process hosting emulated keypads; ``request`` is one synchronous round trip."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        reason = missing()
        if reason is not None:
            raise HarnessUnavailable(reason)
        image = find_image()
        node = shutil.which("node")
        assert node is not None
        self.timeout = timeout
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=20)
        # rp2040js is an ES module: Node resolves it from the script's folder upwards only
        script = _script_beside(find_rp2040js())
        self._proc = subprocess.Popen(
            [node, str(script), str(image), str(find_bootrom(image))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._finalizer = weakref.finalize(self, _kill, self._proc)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        lines, tail = self._lines, self._stderr
        _pump(self._proc.stdout, lines.put, lambda: lines.put(None))
        _pump(self._proc.stderr, lambda b: tail.append(b.decode(errors="replace")), None)

    def request(self, op: str, **fields: Any) -> Any:
        proc = self._proc
        if proc.poll() is not None:
            raise HarnessError(f"the emulator has stopped{self._why()}")
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps({"op": op, **fields}).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            raise HarnessError(f"the emulator has stopped{self._why()}") from None
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self.close()
            raise HarnessError(f"the emulator did not answer {op} in {self.timeout:g} s") from None
        if line is None:
            raise HarnessError(f"the emulator has stopped{self._why()}")
        answer = json.loads(line)
        if "error" in answer:
            raise HarnessError(f"emulator: {answer['error']}")
        return answer["ok"]

    def _why(self) -> str:
        # Node ends an uncaught error with its stack and its own version: say the error
        tail = "".join(self._stderr).strip().splitlines()
        errors = [line.strip() for line in tail if re.match(r"\s*\w*Error\b.*: ", line)]
        if errors:
            return f": {errors[0]}"
        return f": {tail[-1]}" if tail else ""

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._finalizer()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _script_beside(node_modules: Path) -> Path:
    """harness.mjs where Node resolves ``rp2040js`` from: here if a parent of this folder holds
    that node_modules, else a copy of the scripts in a cache folder linked to it."""
    here = SCRIPT.parent.resolve()
    if node_modules.resolve().parent in here.parents:
        return SCRIPT
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ratepad" / "rp2040"
    cache.mkdir(parents=True, exist_ok=True)
    for src in here.glob("*.mjs"):
        dest = cache / src.name
        if not dest.is_file() or dest.read_bytes() != src.read_bytes():
            dest.write_bytes(src.read_bytes())
    link = cache / "node_modules"
    if link.is_symlink() and link.resolve() != node_modules.resolve():
        link.unlink()
    if not link.exists():
        link.symlink_to(node_modules.resolve(), target_is_directory=True)
    return cache / SCRIPT.name


def _pump(stream: IO[bytes], sink: Any, end: Any) -> None:
    def run() -> None:
        for line in stream:
            sink(line)
        if end is not None:
            end()

    threading.Thread(target=run, daemon=True).start()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
