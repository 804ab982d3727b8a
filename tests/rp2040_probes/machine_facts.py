# What `machine` answers, as far as the fake board models it (tests/rp2040_facts.py MACHINE_FACTS).
# Runs on the real binary (raw REPL), on the MicroPython VM and on CPython with the fake machine.
def facts(machine):
    r = {}

    def exc(f):
        try:
            f()
            return None
        except Exception as e:
            return (type(e).__name__, e.args)

    r["reset_cause"] = machine.reset_cause()
    r["reset_consts"] = [
        (n, getattr(machine, n))
        for n in ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET")
        if hasattr(machine, n)
    ]
    pin = machine.Pin
    r["pin_consts"] = [
        (n, getattr(pin, n))
        for n in (
            "IN",
            "OUT",
            "OPEN_DRAIN",
            "ALT",
            "PULL_UP",
            "PULL_DOWN",
            "IRQ_FALLING",
            "IRQ_RISING",
            "IRQ_LOW_LEVEL",
            "IRQ_HIGH_LEVEL",
        )
        if hasattr(pin, n)
    ]
    r["timer_consts"] = (machine.Timer.ONE_SHOT, machine.Timer.PERIODIC)
    r["wdt_too_long"] = exc(lambda: machine.WDT(timeout=8389))
    u = machine.USBDevice()
    r["usb_singleton"] = u is machine.USBDevice()
    b = machine.USBDevice
    r["builtin_default_is_cdc"] = b.BUILTIN_DEFAULT is b.BUILTIN_CDC
    r["builtin"] = [
        (
            n,
            getattr(b, n).itf_max,
            getattr(b, n).ep_max,
            getattr(b, n).str_max,
            bytes(getattr(b, n).desc_dev),
            bytes(getattr(b, n).desc_cfg),
        )
        for n in ("BUILTIN_NONE", "BUILTIN_CDC")
    ]
    r["usb_active"] = u.active()
    r["submit_inactive"] = exc(lambda: u.submit_xfer(0x83, bytearray(8)))
    r["stall_inactive"] = exc(lambda: u.stall(0x83))
    # config(): desc_strs is required (the docs say optional); the descriptors must be buffers
    missing = exc(lambda: u.config(b"", b""))
    r["config_without_strs"] = missing and missing[0]
    r["config_bad_dev"] = exc(lambda: u.config(1, b"", None))
    r["config_bad_strs"] = exc(lambda: u.config(b"", b"", 5))
    return r


if __name__ == "__main__":
    import machine

    print(repr(facts(machine)))
