# The device loop (rpfw.device) on the fake board: key pins, LEDs, buzzer, watchdog and the
# fake USB host, with the real core, journal (in memory) and USB device code, on a virtual clock.
# Runs on CPython and on MicroPython (where the heap lock makes "allocates nothing" a proof).
import sys
import machine  # the fake board (sim/mp/machine.py): the harness maps it on both engines

from sim.memstorage import MemStorage
from rpfw import board, codec, device, usbhid

_SERIAL = "KP-0042"
_KEY_GPIO = (2, 3, 4, 5, 6)
_LED_GPIO = (10, 11, 12, 13, 14)


class Clock:
    def __init__(self, t):
        self.t = t

    def now(self):
        return self.t


class Host:
    # The PC side of USB: reads IN reports into a stream, writes frames as OUT reports.
    def __init__(self, dev, usbd):
        self.dev = dev
        self.usbd = usbd
        self.stream = bytearray()
        self.frames = []  # (type name, fields) in arrival order
        self.reading = True
        self._seq = 0

    def poll(self):
        # Read the IN report in flight, if any (the host polls every 1 ms). True if one came.
        if not self.reading:
            return False
        data = self.usbd.host_read(self.dev.usb.ep_in)
        if data is None:
            return False
        rx = self.stream
        rx.extend(data)
        start = 0
        for i in range(len(rx)):
            if rx[i] == 0:
                if i > start:
                    try:
                        self.frames.append(codec.decode_frame(bytes(rx[start : i + 1])))
                    except ValueError:
                        self.frames.append(("bad", None))
                start = i + 1
        self.stream = rx[start:]
        return True

    def send(self, name, fields):
        self._seq += 1
        frame = codec.encode_frame(name, fields, self._seq)
        for o in range(0, len(frame), 64):
            report = bytearray(64)
            chunk = frame[o : o + 64]
            report[0 : len(chunk)] = chunk
            # the host's OUT transfer waits (NAKed) until the device loop has armed one
            if self.usbd.pending(self.dev.usb.ep_out) is None:
                self.dev.service()
            assert self.usbd.host_write(self.dev.usb.ep_out, report)
            self.dev.service()
        return self._seq

    def hello(self):
        return self.send("host_hello", {"protocol_version": codec.PROTOCOL_VERSION,
                                        "schema_fingerprint": codec.SCHEMA_FINGERPRINT,
                                        "software": "fwtest"})

    def take(self, name):
        out = [f for n, f in self.frames if n == name]
        self.frames = [(n, f) for n, f in self.frames if n != name]
        return out


def _world(settings=None, cause=machine.PWRON_RESET, storage=None, console=None):
    # A powered keypad on a configured USB bus: (device, host, clock, usbd).
    machine.fake_reset(cause)
    st = MemStorage() if storage is None else storage
    values = {"serial": _SERIAL, "debounce_ms": 5, "chord_ms": 40}
    if settings:
        for k in settings:
            values[k] = settings[k]
    st.files["settings"] = bytearray("".join(k + "=" + str(values[k]) + "\n" for k in values)
                                     .encode())
    link = usbhid.boot(st, False)
    usbd = machine.USBDevice()
    usbd.configure()
    clock = Clock(1000)
    dev = device.Device(st, link, "pico", clock.now, console)
    dev.start()
    host = Host(dev, usbd)
    return dev, host, clock, usbd


def run(dev, host, clock, ms):
    # The device loop on the virtual clock: sleep dev.timeout(), then a pass; the host reads
    # every IN report as it comes. Returns the number of passes.
    end = clock.t + ms
    passes = 0
    for _ in range(100000):
        host.poll()  # the host polls every 1 ms: an IN report in flight is read at once
        t = dev.timeout(clock.t)
        if clock.t + t > end:
            break
        clock.t += t
        dev.service()
        passes += 1
    else:
        raise AssertionError("the loop never sleeps")
    clock.t = end
    return passes


def _pin(gpio):
    return machine.Pin(gpio)


def test_hello_on_connect_then_host_hello_exchange():
    dev, host, clock, usbd = _world()
    run(dev, host, clock, 10)
    assert dev.up
    hello = host.take("hello")  # the link came up: the keypad introduces itself
    assert len(hello) == 1 and hello[0]["serial"] == _SERIAL and hello[0]["board"] == "pico"
    host.hello()
    run(dev, host, clock, 10)
    names = [n for n, f in host.frames]
    assert names == ["hello", "status"], names
    h = host.take("hello")[0]
    assert h["key_count"] == 5 and h["protocol_version"] == codec.PROTOCOL_VERSION
    assert h["firmware_version"] == device.VERSION
    s = host.take("status")[0]
    assert s["state"] == "idle" and "watchdog_reset" not in s["faults"]
    assert _pin("LED").value() == 1  # status LED: a host session is up


def test_prompted_press_becomes_a_rating_over_usb():
    dev, host, clock, usbd = _world(settings={"buzzer": 1})
    host.hello()
    run(dev, host, clock, 10)
    host.frames = []
    seq = host.send("prompt", {"prompt_id": 9, "timeout_ms": 30000, "staff_id": "S001"})
    run(dev, host, clock, 10)
    assert (seq, "ok") in [(f["request_seq"], f["code"]) for f in host.take("result")]
    assert [_pin(g).value() for g in _LED_GPIO] == [1, 1, 1, 1, 1]  # every key invites
    key4 = _pin(_KEY_GPIO[3])
    key4.drive(0)  # pressed, with a bounce
    key4.drive(1)
    key4.drive(0)
    assert dev.hw.edge and dev.timeout(clock.t) == 0
    run(dev, host, clock, 120)
    key4.drive(1)
    run(dev, host, clock, 100)
    ratings = host.take("rating")
    assert len(ratings) == 1
    r = ratings[0]
    assert (r["score"], r["prompt_id"], r["staff_id"], r["journal_seq"]) == (4, 9, "S001", 1)
    assert [_pin(g).value() for g in _LED_GPIO] == [0, 0, 0, 1, 0]  # thanks on key 4
    pwm = dev.hw._pwm
    assert pwm.duty_u16() == 0 and pwm.freq() > 0  # the buzz has ended
    host.send("ack", {"journal_seq": 1})
    assert dev.core.journal.unacked() == 0
    run(dev, host, clock, 3000)
    assert [_pin(g).value() for g in _LED_GPIO] == [0, 0, 0, 0, 0]


def test_buzzer_sounds_for_a_rating_and_stops_on_time():
    dev, host, clock, usbd = _world(settings={"buzzer": 1})
    host.hello()
    key1 = _pin(_KEY_GPIO[0])
    key1.drive(0)
    pwm = dev.hw._pwm
    for _ in range(100):  # pass by pass until the rating is journalled
        clock.t += dev.timeout(clock.t)
        dev.service()
        host.poll()
        if pwm.duty_u16():
            break
    assert pwm.duty_u16() > 0
    start = clock.t
    assert dev.timeout(clock.t) <= 80  # the loop wakes to stop it
    while pwm.duty_u16():
        clock.t += dev.timeout(clock.t)
        dev.service()
    assert clock.t - start == 80


def test_irq_handler_and_scan_allocate_nothing():
    dev, host, clock, usbd = _world(settings={"debounce_ms": 20, "chord_ms": 60})
    host.hello()
    host.send("time_sync", {"epoch_ms": 1_800_000_000_000})
    run(dev, host, clock, 50)
    key2 = _pin(_KEY_GPIO[1])
    t0 = clock.t
    t1 = t0 + 1
    t2 = t0 + 20
    t3 = t0 + 30
    hw = dev.hw
    core = dev.core
    st = machine.disable_irq()  # heap locked: any allocation below raises MemoryError
    try:
        key2.drive(0)  # the pin IRQ: a flag
        key2.drive(1)  # bounce
        key2.drive(0)
        dev.scan(t0)  # one scan: read the pins, core.step
        dev.scan(t1)
        dev.scan(t2)  # debounced press: the chord window opens, no rating yet
        key2.drive(1)
        dev.scan(t3)  # released
    finally:
        machine.enable_irq(st)
    assert not hw.edge  # every edge was scanned
    assert core.rules.presses == 0 and core.journal.unacked() == 0
    assert core.debouncer.state == 0b10  # pressed, the release still debouncing


def test_idle_loop_sleeps_until_deadlines_not_every_millisecond():
    dev, host, clock, usbd = _world(settings={"status_ms": 10000})
    host.hello()
    run(dev, host, clock, 100)
    assert dev.timeout(clock.t) == 2000  # nothing due: only the watchdog's feed interval
    passes = run(dev, host, clock, 60000)  # a quiet minute
    assert passes <= 40, passes  # ~30 feeds + 6 status reports, not 60000 scans
    wdt = machine.WDT.last
    assert wdt.timeout == 8000 and wdt.feeds > passes  # fed on every pass
    # an edge, or any USB callback, ends the sleep at once
    _pin(_KEY_GPIO[2]).drive(0)
    assert dev.timeout(clock.t) == 0
    run(dev, host, clock, 1)
    assert 0 < dev.timeout(clock.t) <= 5  # the debounce deadline
    run(dev, host, clock, 100)
    usbd.bus_reset()
    assert dev.timeout(clock.t) == 0


def test_the_loop_waker_wakes_select_poll():
    # On MicroPython the loop sleeps in select.poll on the waker; CPython's poll only takes
    # file descriptors.
    if sys.implementation.name != "micropython":
        return
    import select

    dev, host, clock, usbd = _world()
    run(dev, host, clock, 10)
    poller = select.poll()
    poller.register(device._Waker(dev), select.POLLIN)
    assert poller.poll(0) == []
    _pin(_KEY_GPIO[0]).drive(0)
    assert len(poller.poll(0)) == 1
    run(dev, host, clock, 1)
    assert poller.poll(0) == []
    usbd.bus_reset()
    assert len(poller.poll(0)) == 1


def test_link_goes_down_on_bus_reset_and_on_an_unread_in_report():
    dev, host, clock, usbd = _world()
    host.hello()
    run(dev, host, clock, 10)
    assert dev.up and dev.core.session
    usbd.bus_reset()
    run(dev, host, clock, 10)
    assert not dev.up and not dev.core.session
    usbd.configure()
    host.frames = []
    run(dev, host, clock, 10)
    assert dev.up and [n for n, f in host.frames] == ["hello"], host.frames
    host.hello()
    run(dev, host, clock, 10)
    # the host stops reading (suspended, or nobody has the device open)
    host.reading = False
    host.send("get_config", {"key": "serial"})
    run(dev, host, clock, 2999)
    assert dev.up
    run(dev, host, clock, 1)
    assert not dev.up and not dev.core.session and dev.core.pending() == 0
    host.reading = True
    host.frames = []
    host.stream = bytearray()
    run(dev, host, clock, 10)  # the stuck report goes; the link is up again: hello
    names = [n for n, f in host.frames]
    # the stuck report held the reply, and the start of a frame that the link going down cut
    # off: it ends at the first report after (all zeros) and is seen as bad, so the hello
    # behind it decodes
    assert dev.up and names == ["config_value", "result", "bad", "hello"], names


def test_reboot_flushes_the_reply_then_resets_into_maintenance():
    dev, host, clock, usbd = _world()
    host.hello()
    run(dev, host, clock, 10)
    host.frames = []
    host.reading = False
    seq = host.send("reboot", {"mode": "maintenance"})  # reply queued, not yet read
    assert dev.core.reboot_mode == 1
    dev.service()  # still flushing: no reset yet
    host.reading = True
    try:
        run(dev, host, clock, 100)
        raise AssertionError("no reset")
    except machine.Reset as e:
        assert e.args[0] == "reset"
    assert (seq, "ok") in [(f["request_seq"], f["code"]) for f in host.take("result")]
    st = dev.storage
    # the next boot: maintenance mode (once), and not reported as a watchdog fault
    assert usbhid.boot(st, False) is None and usbhid.MAINTENANCE
    dev2, host2, clock2, usbd2 = _world(cause=machine.WDT_RESET, storage=st)
    assert not dev2.hw.watchdog_reset and not usbhid.MAINTENANCE


def test_reboot_into_the_bootloader_and_give_up_flushing_after_a_second():
    dev, host, clock, usbd = _world()
    host.hello()
    run(dev, host, clock, 10)
    host.reading = False  # nobody reads the reply
    host.send("reboot", {"mode": "bootloader"})
    run(dev, host, clock, 999)
    try:
        run(dev, host, clock, 1)
        raise AssertionError("no reset")
    except machine.Reset as e:
        assert e.args[0] == "bootloader"


def test_watchdog_reset_is_reported():
    dev, host, clock, usbd = _world(cause=machine.WDT_RESET)
    assert machine.WDT.last is not None and machine.WDT.last.timeout == 8000
    host.hello()
    run(dev, host, clock, 10)
    assert "watchdog_reset" in host.take("status")[0]["faults"]


def test_self_test_names_a_stuck_key():
    dev, host, clock, usbd = _world(settings={"keys": 3})
    assert len(dev.hw.keys) == 3 and dev.hw.self_test() == ""
    host.hello()
    _pin(_KEY_GPIO[2]).drive(0)
    _pin(_KEY_GPIO[4]).drive(0)  # not fitted on a 3-key keypad
    run(dev, host, clock, 10)
    host.frames = []
    seq = host.send("self_test", {})
    run(dev, host, clock, 10)
    res = [f for f in host.take("result") if f["request_seq"] == seq]
    assert res[0]["code"] == "failed" and res[0]["detail"] == "key3"


def test_key_pins_are_pulled_up_inputs_with_edge_irqs():
    dev, host, clock, usbd = _world()
    pins = board.pins("pico")
    assert pins[board.KEYS] == _KEY_GPIO and pins[board.LEDS] == _LED_GPIO
    for g in _KEY_GPIO:
        p = _pin(g)
        assert p.mode() == machine.Pin.IN and p.pull() == machine.Pin.PULL_UP
        assert p.irq_handler() is not None
    for g in _LED_GPIO:
        assert _pin(g).mode() == machine.Pin.OUT


def test_an_unprovisioned_keypad_reports_its_chip_id_as_serial():
    dev, host, clock, usbd = _world(settings={"serial": ""})
    run(dev, host, clock, 10)
    hello = host.take("hello")
    expected = "".join("%02X" % b for b in machine.unique_id())[:16]
    assert len(hello) == 1 and hello[0]["serial"] == expected and len(expected) == 16


def test_the_watchdog_limit_is_rp2s():
    machine.fake_reset()
    try:
        machine.WDT(timeout=8389)
        raise AssertionError("rp2 takes at most 8388 ms")
    except ValueError:
        pass
    assert machine.WDT(timeout=8388).timeout == 8388  # the firmware asks for 8000


def test_a_starved_watchdog_would_reset_and_the_loop_never_starves_it():
    dev, host, clock, usbd = _world()
    machine.WDT.clock = clock.now
    wdt = machine.WDT.last
    wdt.feed()
    host.hello()
    run(dev, host, clock, 60000)  # a quiet minute: the loop sleeps at most _FEED_MS at a time
    assert not wdt.starved(clock.t)
    assert wdt.starved(clock.t + 8001)  # with nobody feeding it, the chip would reset


def test_machine_reset_reads_back_as_a_watchdog_reset():
    machine.fake_reset()
    try:
        machine.reset()
    except machine.Reset:
        pass
    assert machine.reset_cause() == machine.WDT_RESET  # rp2: machine.reset() is a watchdog reboot


def test_an_exception_in_a_hard_irq_disables_that_irq():
    machine.fake_reset()
    p = machine.Pin(7, machine.Pin.IN, machine.Pin.PULL_UP)
    calls = []

    def handler(pin):
        calls.append(1)
        raise ValueError("bug")

    p.irq(handler=handler, trigger=machine.Pin.IRQ_FALLING, hard=False)
    p.drive(0)
    p.drive(1)
    p.drive(0)
    assert len(calls) == 1 and p.irq_handler() is None and len(machine.irq_errors()) == 1


def test_planned_resets_and_the_flashing_flow_report_no_watchdog_fault():
    # reboot command -> (watchdog) reset -> the next boot says WDT_RESET, but it was planned
    dev, host, clock, usbd = _world()
    host.hello()
    run(dev, host, clock, 10)
    host.send("reboot", {"mode": "normal"})
    try:
        run(dev, host, clock, 100)
        raise AssertionError("no reset")
    except machine.Reset:
        pass
    cause = machine.reset_cause()
    assert cause == machine.WDT_RESET
    dev2, host2, clock2, usbd2 = _world(cause=cause, storage=dev.storage)
    host2.hello()
    run(dev2, host2, clock2, 10)
    assert "watchdog_reset" not in host2.take("status")[0]["faults"]
    # Ctrl-C on the REPL (mpremote, ratepad flash): maintenance, and no fault after flashing
    console = FakeConsole()
    dev3, host3, clock3, usbd3 = _world(cause=machine.WDT_RESET, storage=dev2.storage,
                                        console=console)
    run(dev3, host3, clock3, 10)
    console.typed = b"\r\x03"  # wakes the loop's poll on a keypad; here the next pass sees it
    try:
        run(dev3, host3, clock3, 2100)
        raise AssertionError("Ctrl-C did not reset")
    except machine.Reset:
        pass
    st = dev3.storage
    assert usbhid.boot(st, False) is None and usbhid.MAINTENANCE  # maintenance: flash it
    # after flashing, Ctrl-D (soft reset: the reset cause stays WDT_RESET) -> a normal boot
    dev4, host4, clock4, usbd4 = _world(cause=machine.reset_cause(), storage=st)
    assert not dev4.hw.watchdog_reset and not usbhid.MAINTENANCE


class FakeConsole:
    # The REPL's input as the device loop reads it (Ctrl-C is data there, see rpfw.device).
    def __init__(self):
        self.typed = b""

    def ctrl_c(self):
        seen = False
        for b in self.typed:
            if b == 3:
                seen = True
        self.typed = b""
        return seen


def test_a_crashed_loop_logs_blinks_and_comes_back_in_maintenance():
    machine.fake_reset()
    st = MemStorage()
    timer = device.fallback(ValueError("bad thing"), st, "pico")
    assert st.read("error.log") == b"ratepad: device loop stopped: ValueError bad thing\n"
    led = _pin("LED")
    before = led.value()
    timer.fire()
    assert led.value() != before and timer.period == 100  # blinking fast
    assert usbhid.boot(st, False) is None and usbhid.MAINTENANCE  # the next boot: maintenance


def test_low_memory_is_reported_as_a_fault():
    dev, host, clock, usbd = _world()
    host.hello()
    run(dev, host, clock, 10)
    host.take("status")
    dev.hw.check_memory = lambda: (setattr(dev.hw, "low_memory", True) or True)
    run(dev, host, clock, 10500)  # the loop checks every 10 s
    assert "low_memory" in host.take("status")[-1]["faults"]
