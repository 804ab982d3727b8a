# Runs after boot.py: the keypad's device loop (returns at once in maintenance mode, leaving
# the REPL to mpremote). If the loop cannot run, rpfw.device.fallback() logs why, blinks the
# status LED fast and makes the next boot a maintenance boot; if the firmware itself does not
# import, the LED blinks and the REPL stays (no watchdog was started).
try:
    from rpfw import device
except Exception as e:
    print("ratepad main.py: %s %s" % (type(e).__name__, e))
    import machine

    _led = machine.Pin("LED", machine.Pin.OUT)
    _blink = machine.Timer(period=100, mode=machine.Timer.PERIODIC,
                           callback=lambda t: _led.toggle())
else:
    device.main()
