"""The firmware on the real MicroPython binary (v1.28, RPI_PICO) in an emulated RP2040, as
``ratepad flash`` installs it: enumeration as a PC reads it, hello, a prompted bouncy press rated
and ACKed with the LEDs and the buzzer read back from the pins, a planned reboot and a watchdog
reset, Ctrl-C into maintenance mode, and the capacity it advertises on its real filesystem.
The journal across power cuts is in test_rp2040_power_cut.py.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_rp2040_engine import SHARED, use_shared_image

from ratepad.sim.rp2040 import IMAGE_ENV, Harness, flashfs, missing
from ratepad.sim.rp2040.linked import LinkedPico
from ratepad.sim.rp2040.pico import EmulatedPico
from ratepad.tools import fwsource
from ratepad.wire import codec
from ratepad.wire.values import Faults, RebootMode

SETTINGS = {"debounce_ms": 5, "chord_ms": 20, "repeat_guard_ms": 0, "thanks_ms": 300, "buzzer": 1}
usbhid: Any = fwsource.load("rpfw.usbhid")


def parse_config(desc: bytes) -> list[dict[str, Any]]:
    """The interfaces of a configuration descriptor: class and endpoints, as a host lists them."""
    itfs: list[dict[str, Any]] = []
    i = 0
    while i + 1 < len(desc) and desc[i] >= 2:
        kind = desc[i + 1]
        if kind == 4:
            itfs.append({"number": desc[i + 2], "cls": desc[i + 5], "eps": []})
        elif kind == 5 and itfs:
            mps = int.from_bytes(desc[i + 4 : i + 6], "little")
            itfs[-1]["eps"].append(
                {"addr": desc[i + 2], "attr": desc[i + 3], "mps": mps, "interval": desc[i + 6]}
            )
        i += desc[i]
    return itfs


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with pytest.MonkeyPatch.context() as mp:
        use_shared_image(mp)
        reason = missing()
        if reason is not None:
            pytest.skip(reason)
        with Harness() as h:
            yield h


@pytest.fixture(scope="module")
def keypad(harness: Harness) -> LinkedPico:
    """One keypad flashed with serial RP1, enumerated, its session open (module-wide: the
    tests below follow one keypad's life in order)."""
    link = LinkedPico(EmulatedPico(harness, flashfs.fs_image("RP1", SETTINGS)))
    link.run_until(lambda: link.hello is not None, timeout_ms=3000, step_ms=5)
    return link


def test_it_enumerates_as_a_pc_reads_it(keypad: LinkedPico) -> None:
    d = keypad.pico.descriptors()
    dev, cfg = d["deviceDescriptor"], d["configDescriptor"]
    assert dev is not None and cfg is not None
    assert int.from_bytes(dev[8:10], "little") == usbhid.VID
    assert int.from_bytes(dev[10:12], "little") == usbhid.PID
    assert keypad.pico.state["strings"] == {
        "manufacturer": "ratepad",
        "product": "ratepad keypad",
        "serial": "RP1",
    }
    itfs = parse_config(cfg)
    assert [i["cls"] for i in itfs] == [2, 10, 3]  # CDC control, CDC data (the REPL), HID
    hid = itfs[2]
    assert sorted((e["addr"] & 0x80, e["attr"], e["mps"], e["interval"]) for e in hid["eps"]) == [
        (0, 3, 64, 1),
        (0x80, 3, 64, 1),
    ]
    assert d["reportDescriptor"] == usbhid.REPORT_DESC
    # what the simulator's USB bus enumerates (the fake machine's built-in CDC) is this
    fake_dev, fake_cfg, fake_report, *_ = fwsource.load("sim.usbdesc").keypad_descriptors()
    assert (dev, cfg, d["reportDescriptor"]) == (fake_dev, fake_cfg, fake_report)


def test_it_answers_host_hello(keypad: LinkedPico) -> None:
    hello = keypad.hello
    assert hello is not None
    assert (hello.serial, hello.board, hello.key_count, hello.schema_matches) == (
        "RP1",
        "pico",
        5,
        True,
    )
    answers = [f for f in keypad.frames if isinstance(f.message, codec.Hello)]
    assert any(f.flags & codec.HeaderFlags.RESPONSE for f in answers)


def test_a_prompted_bouncy_press_is_rated_acked_lit_and_beeped(keypad: LinkedPico) -> None:
    keypad.command(codec.Prompt(7, 30000, "S009"))
    keypad.run_for(20)
    before = len(keypad.ratings())
    seen_leds = [0]
    seen_buzz: list[tuple[int, int]] = []

    def watch() -> None:  # the pins, every simulated millisecond
        seen_leds[0] |= keypad.pico.leds()
        if (b := keypad.pico.buzzer()) is not None:
            seen_buzz.append(b)

    keypad.on_step = watch
    keypad.press(1 << 2, hold_ms=150, bounce_ms=3)  # key 3, chattering 3 ms each way
    keypad.run_for(400)
    keypad.on_step = None
    ratings = keypad.ratings()[before:]
    assert [(r.score, r.prompt_id, r.staff_id, int(r.flags)) for r in ratings] == [
        (3, 7, "S009", 0)
    ]
    assert seen_leds[0] & (1 << 2)  # the key's LED thanked the customer
    assert seen_buzz and all(abs(f - 2700) < 30 and d == 32768 for f, d in seen_buzz)
    assert 70 <= len(seen_buzz) <= 90  # a beep of 80 ms
    seq = ratings[0].journal_seq
    keypad.run_until(lambda: any(s.acked_seq >= seq for s in keypad.statuses()), 3000)


def test_a_planned_reboot_is_not_a_watchdog_fault(keypad: LinkedPico) -> None:
    sessions = keypad.sessions
    keypad.command(codec.Reboot(RebootMode.NORMAL))
    keypad.run_until(lambda: keypad.sessions > sessions and keypad.hello is not None, 5000, 5)
    boots = [e for e in keypad.pico.events if e["what"] == "boot"]
    assert boots[-1]["reason"] != 0  # a reset through the watchdog (machine.reset)
    keypad.run_until(lambda: bool(keypad.statuses()) and keypad.hello is not None, 3000)
    keypad.run_for(300)
    assert not keypad.statuses()[-1].faults & Faults.WATCHDOG_RESET


def test_a_hung_firmware_is_reset_by_the_watchdog_and_says_so(keypad: LinkedPico) -> None:
    sessions = keypad.sessions
    keypad.pico.hang()
    keypad.run_until(lambda: keypad.sessions > sessions and keypad.hello is not None, 12000, 20)
    keypad.run_until(lambda: bool(keypad.statuses()), 3000)
    keypad.run_for(300)
    assert keypad.statuses()[-1].faults & Faults.WATCHDOG_RESET
    # the journal went on: the rating of before is still ACKed, the next one follows it
    assert keypad.hello is not None and keypad.hello.acked_seq >= 1


def test_ctrl_c_on_the_console_gives_maintenance_mode_and_the_capacity_is_the_real_one(
    keypad: LinkedPico,
) -> None:
    advertised = keypad.hello.journal_capacity if keypad.hello else -1
    pico = keypad.pico
    pico.take_console()
    pico.write_console(b"\x03")
    ups = pico.state["linkUps"]
    pico.run_until(lambda: pico.state["enumerations"] > 0 and not pico.hid_ready, 3000)
    pico.run_until(lambda: pico.console_ready, 5000, 5)
    assert pico.state["linkUps"] == ups  # no HID interface in maintenance mode
    cfg = pico.descriptors()["configDescriptor"]
    assert cfg is not None and [i["cls"] for i in parse_config(cfg)] == [2, 10]
    pico.run_for(100)
    pico.write_console(b"\r\n")
    pico.run_until(lambda: b">>> " in pico.console, 3000)
    # the firmware's own capacity rule on the real littlefs (MicroPython's statvfs)
    pico.take_console()
    pico.write_console(
        b"from rpfw.journal import Journal\r\nfrom rpfw.storage import FileStorage\r\n"
        b"j = Journal(FileStorage('/journal')); j.open(); print('CAP', j.capacity, j.room)\r\n"
    )
    pico.run_until(lambda: b"CAP " in pico.console and pico.console.endswith(b">>> "), 5000)
    line = next(x for x in pico.take_console().splitlines() if x.startswith(b"CAP "))
    capacity, room = (int(v) for v in line.split()[1:3])
    assert advertised == capacity
    assert room > capacity  # a Pico's 1408 KiB hold more than the setting's 20000
    assert pico.status_led()  # maintenance mode: the status LED on


def _uf2(image: bytes) -> bytes:
    """``image`` as MicroPython's official downloads carry it: 512-byte UF2 blocks of 256 bytes
    for flash address 0x10000000 + offset, family RP2040."""
    total = (len(image) + 255) // 256
    out = bytearray()
    for n in range(total):
        chunk = image[n * 256 : n * 256 + 256].ljust(256, b"\0")
        head = struct.pack(
            "<IIIIIIII",
            0x0A324655,
            0x9E5D5157,
            0x2000,
            0x10000000 + n * 256,
            256,
            n,
            total,
            0xE48BFF56,
        )
        out += head + chunk + bytes(476 - 256) + struct.pack("<I", 0x0AB16F30)
    return bytes(out)


def test_the_official_uf2_download_boots_too(harness: Harness, tmp_path: Path) -> None:
    del harness  # only for the skip: the image is there
    uf2 = tmp_path / "RPI_PICO-v1.28.0.uf2"
    uf2.write_bytes(_uf2(Path(os.environ[IMAGE_ENV]).read_bytes()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(IMAGE_ENV, str(uf2))
        mp.setenv("RATEPAD_RP2040_BOOTROM", str(Path(os.environ[IMAGE_ENV]).parent / "x"))
        assert "boot ROM" in str(missing())  # not beside the .uf2: named by the setting
        mp.setenv("RATEPAD_RP2040_BOOTROM", str(SHARED / "bootrom-rp2040-b1.bin"))
        with Harness() as h:
            pico = EmulatedPico(h)  # a fresh MicroPython: formats its own filesystem
            pico.run_until(lambda: pico.console_ready, 3000)
            pico.write_console(b"\r\nimport sys; print(sys.implementation._machine)\r\n")
            pico.run_until(lambda: b"with RP2040" in pico.console, 3000)
    assert b"Raspberry Pi Pico with RP2040" in pico.console
