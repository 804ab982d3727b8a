"""The fakes against what the real MicroPython binary answered (``rp2040_facts.py``, measured on
MicroPython v1.28.0's rp2 image in the emulated Pico; ``test_rp2040_flash.py`` checks those
figures against the live binary again where the emulator runs).

Each fake difference the real binary showed has its test here: littlefs free space as
``os.statvfs`` counts it and the firmware's own files on the simulated flash
(``firmware/sim/lfsstorage.py``), the USB descriptors and ``machine``'s answers
(``firmware/sim/mp/machine.py``, on CPython and on the MicroPython VM), and the raw-REPL
simulator's filesystem (``ratepad.tools.rawrepl_sim``).
"""

from __future__ import annotations

import ast
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import rp2040_facts as facts
from firmware_engines import VM_SETUP, cpython_namespace, load_into_vm

pytest.importorskip("littlefs")

NS = cpython_namespace()
lfsstorage: Any = NS.import_module("sim.lfsstorage")
PROBES = Path(__file__).resolve().parent / "rp2040_probes"


def fresh_pico_fs() -> tuple[Any, Any]:
    dev = lfsstorage.FlashDevice(*lfsstorage.GEOMETRY["pico"])
    return dev, lfsstorage.mount(dev)


def statvfs_free(key: str) -> int:
    free: int = facts.FS_CALLS[key][3]
    return free


# -- littlefs free space ---------------------------------------------------------------------
def test_free_space_counts_each_folder_as_micropython_statvfs_does() -> None:
    """MicroPython's statvfs counts a folder's metadata pair twice (lfs2_fs_traverse); littlefs'
    own lfs_fs_size, which the fake used, once: 2 blocks more free per folder than the Pico."""
    dev, fs = fresh_pico_fs()
    assert lfsstorage.statvfs_free(fs) == statvfs_free("statvfs_fresh")
    fs.mkdir("/d")
    assert lfsstorage.statvfs_free(fs) == statvfs_free("statvfs_one_dir")
    fs.mkdir("/d/e")
    assert lfsstorage.statvfs_free(fs) == statvfs_free("statvfs_two_dirs_nested")
    storage = lfsstorage.LfsStorage(dev, root="/d", fs=fs)
    assert storage.free_blocks() == (4096, statvfs_free("statvfs_two_dirs_nested"))


def test_the_firmware_takes_on_the_simulated_flash_what_it_took_on_the_pico() -> None:
    dev, fs = fresh_pico_fs()
    lfsstorage.install(fs, facts.BUNDLE)
    assert lfsstorage.statvfs_free(fs) == facts.FREE_AFTER_BUNDLE
    storage = lfsstorage.LfsStorage(dev, fs=fs)  # makes /journal, as a first boot would
    storage.replace("settings", b"serial=RP-1\n")
    assert storage.free_blocks() == (4096, facts.FREE_AFTER_SETTINGS)


def test_a_simulated_keypad_has_the_free_space_of_a_real_one() -> None:
    """The simulator's flash holds the firmware as ratepad flash installs it (it held none),
    so after the first boot's journal it has what the Pico had, and advertises what it would."""
    from ratepad.sim.simulated import SimulatedKeypad

    kp = SimulatedKeypad("RP-1", flash="pico")
    assert kp.storage.free_blocks() == (4096, facts.FREE_AFTER_FIRST_BOOT)


def test_the_simulators_firmware_is_the_size_of_the_current_bundle() -> None:
    """lfsstorage.FIRMWARE_FILES (what a simulated keypad's flash holds besides the journal)
    takes the blocks the firmware built now takes: if this fails, copy the bundle's sizes
    (``ratepad fw build``, manifest.json) into it."""
    from ratepad.sim.rp2040 import flashfs

    _, current = fresh_pico_fs()
    lfsstorage.install(current, flashfs.bundle_files())
    _, simulated = fresh_pico_fs()
    lfsstorage.install(simulated, lfsstorage.FIRMWARE_FILES)
    assert lfsstorage.statvfs_free(simulated) == lfsstorage.statvfs_free(current)


# -- USB and machine -------------------------------------------------------------------------
def test_the_keypads_usb_descriptors_are_what_the_real_binary_enumerates() -> None:
    """The fake's built-in CDC had ACM capabilities 2 and a 16 ms notification interval;
    TinyUSB's TUD_CDC_DESCRIPTOR says 6 and 1 ms."""
    machine: Any = NS.import_module("machine")
    machine.fake_reset()
    usbdesc: Any = NS.import_module("sim.usbdesc")
    device, configuration, _report, strings, *_ = usbdesc.keypad_descriptors()
    assert device == facts.USB_KEYPAD["device"]
    assert configuration == facts.USB_KEYPAD["configuration"]
    real = {i: s for i, s in facts.USB_KEYPAD["strings"].items() if i != 3}  # 3: the serial
    assert strings == real


def test_the_fake_machines_reset_causes_are_the_real_ones() -> None:
    machine: Any = NS.import_module("machine")
    causes = facts.RESET_CAUSES
    try:
        machine.fake_reset()  # power on
        assert machine.reset_cause() == causes["power on"]
        with pytest.raises(machine.Reset):
            machine.soft_reset()
        assert machine.reset_cause() == causes["soft reset"]
        with pytest.raises(machine.Reset):
            machine.reset()
        assert machine.reset_cause() == causes["machine.reset()"]
        machine.fake_reset(machine.WDT_RESET)  # how the tests stand for a watchdog bite
        assert machine.reset_cause() == causes["watchdog"]
        machine.fake_reset()
        assert machine.reset_cause() == causes["power cycle"]
    finally:
        machine.fake_reset()


def _machine_facts_source() -> str:
    return (PROBES / "machine_facts.py").read_text(encoding="utf-8")


def test_the_fake_machine_answers_as_the_real_one_on_cpython() -> None:
    machine: Any = NS.import_module("machine")
    machine.fake_reset()
    scope: dict[str, Any] = {"__name__": "machine_facts"}
    exec(compile(_machine_facts_source(), "machine_facts.py", "exec"), scope)
    try:
        assert scope["facts"](machine) == facts.MACHINE_FACTS
    finally:
        machine.fake_reset()


@pytest.mark.micropython
def test_the_fake_machine_answers_as_the_real_one_on_the_micropython_vm() -> None:
    from ratepad.tools.mpvm import MicroPythonVM

    with MicroPythonVM(timeout=60) as vm:
        load_into_vm(vm)
        vm.exec(VM_SETUP + "machine.fake_reset()\n")
        vm.exec(_machine_facts_source().replace('if __name__ == "__main__":', "if True:"))
        out = vm.exec("print(repr(facts(machine)))")
    assert ast.literal_eval(out.strip()) == facts.MACHINE_FACTS


# -- the raw-REPL simulator --------------------------------------------------------------------
@pytest.mark.micropython
def test_the_raw_repl_simulator_answers_filesystem_calls_as_the_real_board() -> None:
    """A fresh board's filesystem is empty (the simulator's had /lib and the VM's own folders);
    errno numbers, os.stat, os.remove/rmdir and rename answer as littlefs does. Not compared:
    statvfs (the VM's own; flash figures are the rp2040 engine's) and a folder's st_size."""
    pytest.importorskip("mpremote")
    from ratepad.tools.rawrepl_sim import RawReplSim

    with RawReplSim() as board:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "mpremote",
                "connect",
                board.port,
                "run",
                str(PROBES / "fs_calls.py"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert out.returncode == 0, out.stderr
    answers = ast.literal_eval(out.stdout.strip())
    skip = (*facts.FS_STATVFS, *facts.FS_UNDEFINED)
    assert {k: v for k, v in answers.items() if k not in skip} == {
        k: v for k, v in facts.FS_CALLS.items() if k not in skip
    }


def _exchange(fd: int, sent: bytes, expected: bytes) -> bytes:
    """Send ``sent`` on the terminal ``fd``; what comes back until ``expected``'s last bytes
    arrive (at most 5 s)."""
    os.write(fd, sent)
    got = b""
    deadline = time.monotonic() + 5
    while not got.endswith(expected[-4:]) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            got += os.read(fd, 4096)
    return got


def _drain(fd: int) -> None:
    """Read what the board still sends, until it is quiet for 0.3 s (at most 3 s)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and select.select([fd], [], [], 0.3)[0]:
        os.read(fd, 4096)


@pytest.mark.micropython
def test_the_raw_repl_simulator_speaks_the_real_boards_repl() -> None:
    """Byte for byte as the real board (its Ctrl-D at the friendly prompt lacked the "\\r\\n"
    pyexec ends the line with); only the banner's build date differs."""
    from ratepad.tools.rawrepl_sim import RawReplSim

    def dated(data: bytes) -> bytes:
        return re.sub(rb" on \d{4}-\d\d-\d\d;", b" on (date);", data)

    with RawReplSim(version=(1, 28, 0)) as board:
        fd = os.open(board.port, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"\r\x03\x03")
            _drain(fd)
            for sent, expected in facts.REPL_TRANSCRIPT:
                assert dated(_exchange(fd, sent, expected)) == dated(expected), sent
        finally:
            os.close(fd)


# -- the recorded figures, against the live binary ---------------------------------------------
def test_the_recorded_figures_are_what_the_live_binary_answers() -> None:
    """A fresh emulated Pico answers the probes, USB strings and reset causes as recorded (the
    figures the tests above hold the fakes to; the flash tests check the rest)."""
    from rp2040_live import harness, probe, wait_for

    from ratepad.sim.rp2040.console import PicoConsole
    from ratepad.sim.rp2040.pico import EmulatedPico

    def cause(board: PicoConsole) -> int:
        value: int = probe(board.port, "reset_cause.py")
        return value

    with harness() as h:
        pico = EmulatedPico(h)  # erased flash
        try:
            with PicoConsole(pico) as board:
                wait_for(board, lambda: pico.console_ready, "enumerated")
                strings = [e["strings"] for e in pico.events if e["what"] == "configured"]
                assert strings[0] == {
                    name: facts.USB_FRESH["strings"][i]
                    for i, name in enumerate(("manufacturer", "product", "serial"), 1)
                }
                answers = probe(board.port, "fs_calls.py")
                skip = facts.FS_UNDEFINED
                assert {k: v for k, v in answers.items() if k not in skip} == {
                    k: v for k, v in facts.FS_CALLS.items() if k not in skip
                }
                assert probe(board.port, "machine_facts.py") == facts.MACHINE_FACTS
                fd = os.open(board.port, os.O_RDWR | os.O_NOCTTY)
                try:
                    os.write(fd, b"\r\x03\x03")
                    _drain(fd)
                    for sent, expected in facts.REPL_TRANSCRIPT:
                        assert _exchange(fd, sent, expected) == expected, sent
                finally:
                    os.close(fd)
                assert cause(board) == facts.RESET_CAUSES["power on"]
                with board.lock:
                    boots = len(list(pico.boots()))
                    pico.write_console(b"\x04")  # soft reset at the friendly REPL
                    pico.run_for(300)
                assert cause(board) == facts.RESET_CAUSES["soft reset"]
                with board.lock:
                    pico.write_console(b"import machine; machine.reset()\r")
                wait_for(board, lambda: len(list(pico.boots())) > boots, "reset")
                wait_for(board, lambda: pico.console_ready, "back")
                assert cause(board) == facts.RESET_CAUSES["machine.reset()"]
                with board.lock:
                    pico.write_console(b"import machine; w = machine.WDT(timeout=100)\r")
                wait_for(board, lambda: len(list(pico.boots())) > boots + 1, "bitten")
                wait_for(board, lambda: pico.console_ready, "back")
                assert cause(board) == facts.RESET_CAUSES["watchdog"]
                with board.lock:
                    pico.power(False)
                    pico.run_for(10)
                    pico.power(True)
                wait_for(board, lambda: pico.console_ready, "powered")
                assert cause(board) == facts.RESET_CAUSES["power cycle"]
        finally:
            pico.close()
