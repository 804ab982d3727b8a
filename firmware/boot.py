# Runs before main.py and before USB enumerates: this boot's USB personality.
# Normal: MicroPython's built-in CDC (REPL) + the ratepad HID interface (rpfw.usbhid).
# Maintenance (key 1 held at power-up, or asked for by a reboot command or Ctrl-C; used once):
# built-in CDC only, so mpremote and `ratepad flash` have the REPL to themselves.
# Nothing here may stop the keypad: on any exception main.py still runs the device loop (which
# then starts USB itself) and the reason is printed and kept in /journal/error.log.
try:
    import time
    from machine import Pin
    from rpfw import board, usbhid
    from rpfw.storage import FileStorage

    _key1 = Pin(board.pins(board.detect(), 1)[board.KEYS][0], Pin.IN, Pin.PULL_UP)
    time.sleep_ms(2)  # let the pull-up charge the line
    usbhid.boot(FileStorage("/journal"), _key1.value() == 0)
except Exception as e:
    _line = "ratepad boot.py: %s %s\n" % (type(e).__name__, e)
    print(_line, end="")
    try:
        with open("/journal/error.log", "a") as _f:
            _f.write(_line)
    except Exception:
        pass
