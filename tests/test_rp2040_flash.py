"""`ratepad flash` and `ratepad selftest` against the real MicroPython binary on an emulated Pico.

The Pico (``ratepad.sim.rp2040``) runs MicroPython v1.28.0's rp2 image; its CDC console is on a
pseudo-terminal and its HID link on a local tcp:// port (``ratepad.sim.rp2040.console``), so the
CLI runs as an engineer runs it: ``ratepad flash --port`` with the real mpremote, then
``ratepad selftest`` pressing each key it asks for.  Boards: a freshly started Pico (MicroPython
formats its flash itself: an empty filesystem) and keypads holding an older firmware.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rp2040_facts as facts
from rp2040_live import harness, mpremote, wait_for

from ratepad.sim.rp2040 import Harness, flashfs
from ratepad.sim.rp2040.console import PicoConsole
from ratepad.sim.rp2040.pico import MS, EmulatedPico
from ratepad.tools import firmware as firmware_tools
from ratepad.tools import fwsource
from ratepad.tools.firmware import build_bundle

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
VERSION = firmware_tools._read_firmware_facts(FIRMWARE)[0]
OLD_VERSION = "0.0.9"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Harness]:
    with harness() as h:
        yield h


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    build_bundle(out)
    return out


@pytest.fixture(scope="module")
def older(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    """(path, content) of an older firmware's bundle: another VERSION and a module since gone."""
    src = tmp_path_factory.mktemp("older-src")
    shutil.copytree(FIRMWARE / "rpfw", src / "rpfw", ignore=shutil.ignore_patterns("__pycache__"))
    for script in ("boot.py", "main.py"):
        shutil.copy(FIRMWARE / script, src / script)
    core = src / "rpfw" / "core.py"
    text = re.sub(r"^VERSION = .*$", f'VERSION = "{OLD_VERSION}"', core.read_text(), flags=re.M)
    core.write_text(text)
    (src / "rpfw" / "legacy.py").write_text("GONE = True\n")
    out = tmp_path_factory.mktemp("older")
    built = build_bundle(out, src=src)
    return [(e["path"], (out / e["path"]).read_bytes()) for e in built.manifest["files"]]


def older_keypad(files: list[tuple[str, Any]], settings: bytes) -> bytes:
    """The littlefs image of a keypad flashed with ``files`` and ``settings``."""
    lfs = fwsource.load("sim.lfsstorage")
    dev = lfs.FlashDevice(*lfs.GEOMETRY["pico"])
    fs = lfs.mount(dev)
    lfs.install(fs, [*files, ("journal/settings", settings)])
    fs.unmount()
    return bytes(dev.buffer)


BLOB = ("data/photos.bin", 1_000_000)


def simulated_capacity(files: list[tuple[str, Any]], settings: str) -> int:
    """What the simulator's keypad advertises with ``files`` on its flash."""
    lfs = fwsource.load("sim.lfsstorage")
    storage = lfs.board_storage("pico", firmware=files)
    kp = fwsource.load("sim.simkeypad").SimKeypad("RP-0002", settings.encode(), storage=storage)
    capacity: int = kp.core.journal.capacity
    return capacity


def fake_capacity_on(image: bytes) -> int:
    """The firmware's journal on a flash image, through the fake littlefs storage."""
    lfs = fwsource.load("sim.lfsstorage")
    dev = lfs.FlashDevice(*lfs.GEOMETRY["pico"])
    dev.buffer[:] = image
    journal = fwsource.load("rpfw.journal").Journal(lfs.LfsStorage(dev))
    journal.open()
    capacity: int = journal.capacity
    return capacity


def ratepad(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def flash(board: PicoConsole, bundle: Path, serial: str) -> subprocess.CompletedProcess[str]:
    # the hello is read by selftest below (the CLI's own reader looks for hid://, not here)
    return ratepad(
        "flash", "--port", board.port, "--serial", serial, "--bundle", str(bundle), "--no-verify"
    )


def prompted(pico: EmulatedPico) -> bool:
    """What the engineer sees of a prompt: every key's LED lit."""
    return pico.leds() == (1 << len(pico.key_gpios)) - 1


def selftest(board: PicoConsole, *options: str) -> tuple[int, list[tuple[str, str, str]]]:
    """``ratepad selftest`` on the keypad's HID link, pressing each key it asks for, as the
    engineer does; (PASS or FAIL, check, detail) of each check."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ratepad", "selftest", board.tcp_url, "--rounds", "3", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    checks = []
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if match := re.match(r"(PASS|FAIL)\s+(\S+)\s+(.*)", line):
            checks.append((match[1], match[2], match[3]))
        elif match := re.search(r"press key (\d+)", line):
            # the engineer waits for the prompt (every key's LED lit), then presses: 150 ms
            wait_for(board, lambda: prompted(board.pico), "prompted")
            with board.lock:
                board.pico.press_keys(1 << (int(match[1]) - 1))
                board.pico.run_for(150)
                board.pico.press_keys(0)
    code = proc.wait(timeout=120)
    assert checks, "".join(lines)
    return code, checks


def keypad_running(board: PicoConsole) -> None:
    """Until the flashed keypad enumerates and its device loop has had time to start (main.py
    imports the firmware for about half a simulated second; a host's hello before that waits)."""
    pico = board.pico
    wait_for(board, lambda: pico.hid_ready, "enumerated as a keypad")
    with board.lock:
        start = pico.now
    wait_for(board, lambda: pico.now >= start + 1500 * MS, "running")


def files_on(pico: EmulatedPico) -> dict[str, bytes]:
    return flashfs.read_files(pico.fs_image())


def test_flash_then_selftest_on_a_freshly_started_pico(emulator: Harness, bundle: Path) -> None:
    pico = EmulatedPico(emulator)  # erased flash: MicroPython formats littlefs itself
    try:
        with PicoConsole(pico, device_id="RP-0001") as board:
            wait_for(board, lambda: pico.console_ready, "enumerated")
            assert mpremote(board.port, "ls", "/").stdout.split() == ["ls", ":/"]  # empty

            out = flash(board, bundle, "RP-0001")
            assert out.returncode == 0, out.stdout + out.stderr
            assert "serial number RP-0001 written to /journal/settings" in out.stdout
            assert f"firmware {VERSION} imports on the board" in out.stdout
            assert "soft reset: the keypad restarts with the new firmware" in out.stdout

            # Ctrl-C while the restarting keypad's main.py still imports the firmware (the first
            # half second) stops it before the device loop and its watchdog start: the REPL
            # stays, in normal mode. ratepad flash used to refuse such a keypad for good
            # ("restarts in maintenance mode by itself": it never does); the watchdog, off,
            # says the REPL is free.
            wait_for(board, lambda: pico.hid_ready, "enumerated as a keypad")
            with board.lock:
                pico.write_console(b"\x03")
                pico.run_for(1000)
                assert pico.take_console().endswith(b">>> ")
            again = flash(board, bundle, "RP-0001")
            assert again.returncode == 0, again.stdout + again.stderr
            assert "interrupted while starting, before its device loop ran" in again.stderr
            assert again.stdout.count(" unchanged") == len(flashfs.bundle_files())

            keypad_running(board)
            code, checks = selftest(board, "--no-keys")
            assert code == 0, checks
            assert [c[:2] for c in checks] == [("PASS", "link"), ("PASS", "self_test")]
            assert f"RP-0001: firmware {VERSION} on pico, 5 keys" in checks[0][2]
            with board.lock:
                on_flash = files_on(pico)
                seen = pico.descriptors()
    finally:
        pico.close()
    # the descriptors the fakes are held to (test_fakes_vs_rp2040.py), as a host reads them
    assert seen["deviceDescriptor"] == facts.USB_KEYPAD["device"]
    assert seen["configDescriptor"] == facts.USB_KEYPAD["configuration"]
    fwsource.load("machine").fake_reset()
    assert seen["reportDescriptor"] == fwsource.load("sim.usbdesc").keypad_descriptors()[2]
    for path, data in flashfs.bundle_files():
        assert on_flash["/" + path] == data, path
    assert on_flash["/journal/settings"] == b"serial=RP-0001\n"


def test_flash_over_an_older_firmware_then_selftest_every_key(
    emulator: Harness, bundle: Path, older: list[tuple[str, bytes]]
) -> None:
    # a big file of the customer's fills most of the flash: the journal advertises what fits
    image = older_keypad([*older, BLOB], b"keys=4\nthanks_ms=300\nserial=OLD-7\n")
    pico = EmulatedPico(emulator, image, nkeys=4)
    try:
        pico.run_until(lambda: pico.hid_ready, timeout_ms=5000)
        pico.run_for(3000)  # the device loop runs: Ctrl-C is its to read
        boots = len(list(pico.boots()))
        with PicoConsole(pico, device_id="RP-0002") as board:
            first = flash(board, bundle, "RP-0002")
            assert first.returncode == 2, first.stdout + first.stderr
            assert "maintenance mode" in first.stderr, first.stderr
            # the keypad took the Ctrl-C as a planned reset into maintenance mode
            wait_for(
                board,
                lambda: (
                    len(list(pico.boots())) > boots and pico.console_ready and not pico.hid_ready
                ),
                "back in maintenance mode",
            )
            # free space as the board counts it is what the fakes count on its flash
            # (resume: no soft reset, which would end maintenance mode)
            statvfs = mpremote(board.port, "resume", "exec", "import os; print(os.statvfs('/'))")
            assert statvfs.returncode == 0, statvfs.stderr
            with board.lock:
                lfs = fwsource.load("sim.lfsstorage")
                dev = lfs.FlashDevice(*lfs.GEOMETRY["pico"])
                dev.buffer[:] = pico.fs_image()
                assert ast.literal_eval(statvfs.stdout.strip())[3] == lfs.statvfs_free(
                    lfs.mount(dev)
                )
            out = flash(board, bundle, "RP-0002")
            assert out.returncode == 0, out.stdout + out.stderr
            assert "removed stale /lib/rpfw/legacy.mpy" in out.stdout
            assert f"firmware {VERSION} imports on the board" in out.stdout

            keypad_running(board)
            with board.lock:
                at_hello = pico.fs_image()
            code, checks = selftest(board, "--key-timeout", "20")
            assert code == 0, checks
            # the capacity the real keypad advertises is what the simulator's keypad advertises
            # on the same files, and what the fakes count on the real flash
            capacity = simulated_capacity([*flashfs.bundle_files(), BLOB], "keys=4\n")
            assert capacity < 20000
            assert f"journal for {capacity:,};" in checks[0][2]
            assert fake_capacity_on(at_hello) == capacity
            assert [c[:2] for c in checks] == [
                ("PASS", "link"),
                ("PASS", "self_test"),
                ("PASS", "keys"),
            ]
            assert f"RP-0002: firmware {VERSION} on pico, 4 keys" in checks[0][2]
            with board.lock:
                on_flash = files_on(pico)
    finally:
        pico.close()
    assert "/lib/rpfw/legacy.mpy" not in on_flash
    for path, data in flashfs.bundle_files():
        assert on_flash["/" + path] == data, path
    assert on_flash["/journal/settings"] == b"keys=4\nthanks_ms=300\nserial=RP-0002\n"
