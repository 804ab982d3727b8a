# Runs before main.py and before USB enumerates: this boot's USB personality.
# Normal: MicroPython's built-in CDC (REPL) + the ratepad HID interface (rpfw.usbhid).
# Maintenance (key 1 held at power-up, or asked for by a reboot command; used once): built-in
# CDC only, so mpremote and `ratepad flash` have the REPL to themselves.
import time
from machine import Pin
from rpfw import board, usbhid
from rpfw.storage import FileStorage

_key1 = Pin(board.pins(board.detect(), 1)[board.KEYS][0], Pin.IN, Pin.PULL_UP)
time.sleep_ms(2)  # let the pull-up charge the line
usbhid.boot(FileStorage("/journal"), _key1.value() == 0)
