# What a keypad is wired to, per board, in one place; and how it chooses its mode at boot.
#
# Wiring (every board): key i is a push button from its GPIO to GND (internal pull-up, pressed
# reads 0); LED i is GPIO -> resistor -> LED -> GND (on = 1); the status LED is the board's
# own; the buzzer (optional, "buzzer" setting) is a passive piezo on a PWM-capable GPIO.
# Keys are listed for scores 1..5; a keypad with fewer keys ("keys" setting, 3..5) uses the
# first ones. Key 1 held at power-up selects maintenance mode.
from micropython import const

KEYS = const(0)
LEDS = const(1)
STATUS = const(2)
BUZZER = const(3)
NO_PIN = const(-1)

BOARDS = {
    # name: (key GPIOs 1..5, LED GPIOs 1..5, status LED, buzzer GPIO or NO_PIN)
    "pico": ((2, 3, 4, 5, 6), (10, 11, 12, 13, 14), "LED", 15),
    # the Pico W's LED hangs off the radio chip; Pin("LED") reaches it the same way
    "pico_w": ((2, 3, 4, 5, 6), (10, 11, 12, 13, 14), "LED", 15),
}
DEFAULT = "pico"

_FLAG = "maintenance"  # storage file: a reboot command asked for maintenance mode


def detect():
    # Board name from the firmware's own description ("Raspberry Pi Pico W with RP2040").
    try:
        import sys

        desc = sys.implementation._machine
    except AttributeError:
        return DEFAULT
    return "pico_w" if "Pico W" in desc else DEFAULT


def pins(name, nkeys=5):
    # (key GPIOs, LED GPIOs, status LED, buzzer GPIO) of board `name` with `nkeys` keys fitted.
    b = BOARDS[name]
    if not 0 < nkeys <= len(b[KEYS]):
        raise ValueError("keys")
    return b[KEYS][:nkeys], b[LEDS][:nkeys], b[STATUS], b[BUZZER]


# -- boot mode --------------------------------------------------------------------------------
# Maintenance mode: USB is MicroPython's built-in CDC only (the REPL, for mpremote and
# `ratepad flash`), no HID interface, no device loop, no watchdog.


def maintenance_boot(storage, key1_down):
    # True if this boot is a maintenance boot: key 1 held, or the flag a reboot command left
    # (consumed here, so the boot after is normal again).
    flagged = storage.size(_FLAG) >= 0
    if flagged:
        storage.remove(_FLAG)
    return bool(key1_down) or flagged


def request_maintenance(storage):
    # The next boot comes up in maintenance mode.
    storage.replace(_FLAG, b"1")
