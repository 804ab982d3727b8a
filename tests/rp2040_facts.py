"""What the real MicroPython binary answered: the figures the fakes are compared with.

MicroPython v1.28.0, rp2 port, board RPI_PICO (``../shared/micropython-rp2/``), run in rp2040js
1.4.1 with the boot ROM's flash routines trapped and a small emulated USB host.  Measured by
running the probes in ``tests/rp2040_probes/`` over the emulated CDC console's raw REPL on a
freshly started Pico (erased flash: MicroPython formats littlefs itself), then installing the
firmware bundle listed in :data:`BUNDLE` as ``ratepad flash`` does (folders outermost first, files
written through ``open``), then ``/journal/settings`` (``serial=RP-1``) through a rename, then
booting it with keys released and letting it run 500 simulated ms.  ``test_fakes_vs_rp2040.py``
compares the fakes with these figures, and with the live binary where the rp2040 harness is
available.
"""

from __future__ import annotations

from typing import Any

MICROPYTHON = "MicroPython v1.28.0"
MACHINE = "Raspberry Pi Pico with RP2040"

# tests/rp2040_probes/fs_calls.py on the fresh Pico: errno numbers (None: the call succeeded),
# os.stat()[:7], os.statvfs('/').  A folder's st_size is whatever littlefs leaves in the
# lfs_info it does not fill (extmod/vfs_lfsx.c stat): not a fact to compare.
FS_CALLS: dict[str, Any] = {
    "after_rename": (["d", "f"], "defg"),
    "before_cleanup": [("d", 16384)],
    "ilistdir_root": [],
    "listdir_file": 20,
    "listdir_fresh": [],
    "listdir_missing": 2,
    "mkdir_exists": 17,
    "mkdir_nested_missing_parent": 2,
    "mkdir_on_file": 17,
    "open_dir": 21,
    "open_missing": 2,
    "open_under_file": 20,
    "open_write_missing_dir": 2,
    "remove_dir": None,
    "remove_missing": 2,
    "rename_dir_onto_file": 20,
    "rename_file_onto_dir": 21,
    "rename_file_onto_file": None,
    "rename_missing": 2,
    "rmdir_file": None,
    "rmdir_missing": 2,
    "rmdir_nonempty": 39,
    "stat_dir": (16384, 0, 0, 0, 0, 0, 3),
    "stat_file": (32768, 0, 0, 0, 0, 0, 3),
    "stat_missing": 2,
    "statvfs_after_cleanup": (4096, 4096, 352, 350, 350, 0, 0, 0, 0, 255),
    "statvfs_fresh": (4096, 4096, 352, 350, 350, 0, 0, 0, 0, 255),
    "statvfs_one_dir": (4096, 4096, 352, 346, 346, 0, 0, 0, 0, 255),
    "statvfs_two_dirs_nested": (4096, 4096, 352, 342, 342, 0, 0, 0, 0, 255),
    "sys_path": ["", ".frozen", "/lib"],
}
FS_UNDEFINED = ("stat_dir",)
FS_STATVFS = tuple(key for key in FS_CALLS if key.startswith("statvfs"))

# The bundle installed (firmware 0.1.0 from `ratepad fw build`: path, bytes) and the free blocks
# os.statvfs('/') gave: after the bundle, after /journal/settings, and after the keypad's first
# boot (its journal: /journal/state and the tail folders t0..t7).
BUNDLE = (
    ("lib/rpfw/__init__.mpy", 31), ("lib/rpfw/board.mpy", 589), ("lib/rpfw/codec.mpy", 7909),
    ("lib/rpfw/commands.mpy", 2016), ("lib/rpfw/core.mpy", 5433),
    ("lib/rpfw/debounce.mpy", 949), ("lib/rpfw/device.mpy", 4466),
    ("lib/rpfw/journal.mpy", 3721), ("lib/rpfw/link.mpy", 1352), ("lib/rpfw/rules.mpy", 2065),
    ("lib/rpfw/settings.mpy", 2302), ("lib/rpfw/storage.mpy", 901), ("lib/rpfw/ticks.mpy", 285),
    ("lib/rpfw/usbhid.mpy", 2326), ("board.json", 2699), ("boot.py", 1082), ("main.py", 687),
)  # fmt: skip
FREE_AFTER_BUNDLE = 324
FREE_AFTER_SETTINGS = 320
FREE_AFTER_FIRST_BOOT = 288

# tests/rp2040_probes/machine_facts.py (the parts a fake models; unique_id is the emulator's
# zeros, freq and the heap are the chip's).
MACHINE_FACTS: dict[str, Any] = {
    "reset_cause": 1,
    "reset_consts": [("PWRON_RESET", 1), ("WDT_RESET", 3)],
    "pin_consts": [
        ("IN", 0),
        ("OUT", 1),
        ("OPEN_DRAIN", 2),
        ("ALT", 3),
        ("PULL_UP", 1),
        ("PULL_DOWN", 2),
        ("IRQ_FALLING", 4),
        ("IRQ_RISING", 8),
    ],
    "timer_consts": (0, 1),
    "wdt_too_long": ("ValueError", ("timeout exceeds 8388",)),
    "usb_singleton": True,
    "builtin_default_is_cdc": True,
    "usb_active": False,
    "submit_inactive": ("OSError", (22,)),
    "stall_inactive": ("OSError", (22,)),
    "config_without_strs": "TypeError",
    "config_bad_dev": ("ValueError", ("desc_dev",)),
    "config_bad_strs": ("ValueError", ("desc_strs",)),
    "builtin": [
        ("BUILTIN_NONE", 0, 0, 1, bytes.fromhex("12010002ef0201408a2e0500000101020301"), b""),
        (
            "BUILTIN_CDC",
            2,
            3,
            5,
            bytes.fromhex("12010002ef0201408a2e0500000101020301"),
            bytes.fromhex(
                "09024b00020100807d080b0002020200000904000001020200040524002001052401000104240206"
                "05240600010705810308000109040100020a0000000705020240000007058202400000"
            ),
        ),
    ],
}
# machine.reset_cause() at the REPL after each way of (re)starting: a soft reset (Ctrl-D) keeps
# the cause; machine.reset() is a watchdog reboot on rp2.
RESET_CAUSES = {
    "power on": 1,
    "soft reset": 1,
    "machine.reset()": 3,
    "watchdog": 3,
    "power cycle": 1,
}

# USB as the emulated host enumerated it: MicroPython alone (CDC REPL), then the keypad after
# its boot.py (serial RP-1); string 3 is the serial, string 4 MicroPython's CDC interface.
USB_FRESH = {
    "device": bytes.fromhex("12010002ef0201408a2e0500000101020301"),
    "strings": {1: "MicroPython", 2: "Board in FS mode", 3: "0000000000000000"},
}
USB_KEYPAD = {
    "device": bytes.fromhex("12010002ef02014009120100000101020301"),
    "configuration": bytes.fromhex(
        "09026b00030100807d080b000202020000090400000102020004052400200105240100010424020605240600"
        "010705810308000109040100020a0000000705020240000007058202400000090402000203000005092111"
        "010001221b000705830340000107050303400001"
    ),
    "strings": {1: "ratepad", 2: "ratepad keypad", 3: "RP-1", 4: "Board CDC", 5: "ratepad link"},
}

# The REPL byte for byte, as mpremote and ratepad flash drive it (after "\r\x03\x03" at the
# friendly prompt): (sent, received). The banner's build date is the image's.
BANNER = (
    b"MicroPython v1.28.0 on 2026-12-07; Raspberry Pi Pico with RP2040\r\n"
    b'Type "help()" for more information.\r\n>>> '
)
REPL_TRANSCRIPT = [
    (b"\r\x01", b"\r\n>>> \r\nraw REPL; CTRL-B to exit\r\n>"),  # raw REPL
    (b"\x05A\x01", b"R\x01\x80\x00\x01"),  # raw-paste: accepted, a 128-byte window
    (b"\x04", b"\x04\x04\x04>"),  # empty code: end of paste, no output, no error
    (b"\x04", b"OK\r\nMPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>"),  # soft reset
    (b"\x02", b"\r\n" + BANNER),  # friendly REPL
    (b"\x04", b"\r\nMPY: soft reboot\r\n" + BANNER),  # soft reset there
]
