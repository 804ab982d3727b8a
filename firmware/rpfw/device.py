# The keypad's device loop: pins, USB, flash and the watchdog around the sans-IO core.
#
# Loop: sleep until a key pin edge, a USB callback or the next deadline (at most _FEED_MS),
# then one pass (service()):
#   feed the watchdog; follow the USB link (up = configured and the last IN report not stuck
#   for _STALL_MS: a suspended host, or one nobody reads) -> core.connect/disconnect; scan the
#   keys -> core.scan; an OUT report -> core.receive; core.pull -> one IN report (the first
#   after the link comes up is all zeros, to end any frame the link going down cut off); stop
#   the buzzer when due; reboot when the host asked (after flushing the reply).
# The pin IRQ (hard) and the USB callbacks only stamp and set flags; the work is all here. A pass
# can take a while (a heap collection takes ~25 ms on an RP2040), so the pin IRQ stamps each key
# edge with its tick and the scan replays them at those ticks (Core.scan): a rating is dated
# when the key went down, not when the loop got to it. The heap check waits until no key is
# down or debouncing and no press is being decided.
#
# Sleeping: select.poll on a waker object that is readable once a flag is set. On bare-metal
# ports poll() waits with WFE until any interrupt or the timeout, then asks the waker again, so
# the loop runs once per event and never per millisecond (asyncio's ThreadSafeFlag works this
# way). time.sleep_ms does not return early on an interrupt; machine.lightsleep on rp2 gates
# the clocks (USB off until configured, PWM stopped) and needs a timeout to wake on a pin.
from micropython import const
import io
import select
import machine
from machine import PWM, Pin
from rpfw import board, usbhid
from rpfw.codec import REBOOT_MODE_BOOTLOADER, REBOOT_MODE_MAINTENANCE
from rpfw.core import VERSION, Core
from rpfw.edges import Edges
from rpfw.ticks import earliest, ticks_add, ticks_diff

try:
    from time import ticks_ms
except ImportError:  # CPython: no ticks; the caller passes a clock
    ticks_ms = None

_NONE = const(-1)
_WDT_MS = const(8000)
_FEED_MS = const(2000)  # longest sleep: the watchdog is fed on every pass
_STALL_MS = const(3000)  # an IN report unread this long: the link is down
_FLUSH_MS = const(1000)  # a reboot waits this long at most for the reply to leave
_BUZZ_HZ = const(2700)
_BUZZ_DUTY = const(32768)
_MIN_FREE = const(8192)  # heap the firmware needs to keep working (self-test, low_memory fault)
_MEM_CHECK_MS = const(10000)  # how often the loop checks the free heap
_MP_STREAM_POLL = const(3)
_POLLIN = const(1)
_PLANNED = "rebooted"  # storage file: the next reset is one the firmware asked for
_LOG = "error.log"  # storage file: why the device loop stopped (one line each)
_LOG_MAX = const(2048)
_FAULT_BLINK_MS = const(100)  # the status LED's pattern when the loop could not run


class Hardware:
    # The `hw` the core drives (LEDs, status LED, buzzer, self-test) and the key pins.
    def __init__(self, board_name, nkeys, clock, watchdog_reset=False):
        keys, leds, status, buzzer = board.pins(board_name, nkeys)
        self.nkeys = nkeys
        self._clock = clock
        # the serial an unprovisioned keypad reports: the chip's unique id, as USB does
        self.unique_id = "".join("%02X" % b for b in machine.unique_id())[:16]
        self.keys = [Pin(g, Pin.IN, Pin.PULL_UP) for g in keys]
        self._leds = [Pin(g, Pin.OUT, value=0) for g in leds]
        self._status = Pin(status, Pin.OUT, value=0)
        self._pwm = None
        if buzzer != board.NO_PIN:
            self._pwm = PWM(Pin(buzzer))
            self._pwm.freq(_BUZZ_HZ)
            self._pwm.duty_u16(0)
        self.buzz_off = _NONE
        self.watchdog_reset = watchdog_reset
        self.low_memory = False  # the free heap was below _MIN_FREE at the last check
        self.maintenance = False  # the loop only runs in normal mode
        self.edge = False  # a key pin changed since the last scan
        self.edges = Edges(nkeys)  # the pin IRQ's stamps since the last scan
        self.scanned = Edges(nkeys)  # the stamps the last scan took (take_keys)

    def irq_on(self):
        for p in self.keys:
            p.irq(handler=self._irq, trigger=Pin.IRQ_FALLING | Pin.IRQ_RISING, hard=True)

    def _irq(self, pin):
        # Hard IRQ (heap locked): stamp the edge with the tick it happened and flag it. The
        # clock is time.ticks_ms, which returns a small int (extmod/modtime.c time_ticks_ms):
        # no allocation; `pin` is the object Pin(gpio) returned (rp2's pins are static).
        t = self._clock()
        keys = self.keys
        for i in range(self.nkeys):
            if keys[i] is pin:
                self.edges.stamp(i, t)
        self.edge = True

    def take_keys(self):
        # The pressed keys, and the edges since the last call moved to self.scanned, with IRQs
        # off so that no edge falls between the two (one that comes later wakes another pass).
        st = machine.disable_irq()
        self.edge = False
        raw = self.read_keys()
        self.edges.move_to(self.scanned)
        machine.enable_irq(st)
        return raw

    def read_keys(self):
        # Pressed keys as a bitmask (bit i = key i + 1); pins are active low.
        raw = 0
        keys = self.keys
        for i in range(self.nkeys):
            if not keys[i].value():
                raw |= 1 << i
        return raw

    def leds(self, mask):
        leds = self._leds
        for i in range(self.nkeys):
            leds[i].value((mask >> i) & 1)

    def status_led(self, on):
        self._status.value(1 if on else 0)

    def buzz(self, ms):
        if self._pwm is not None:
            self._pwm.duty_u16(_BUZZ_DUTY)
            self.buzz_off = ticks_add(self._clock(), ms)

    def poll(self, now):
        if self.buzz_off != _NONE and ticks_diff(now, self.buzz_off) >= 0:
            self._pwm.duty_u16(0)
            self.buzz_off = _NONE

    def check_memory(self):
        # Collect, then compare the free heap with what the firmware needs. True if that
        # changed the low_memory fault. (CPython has no mem_free: never low.)
        import gc

        gc.collect()
        try:
            low = gc.mem_free() < _MIN_FREE
        except AttributeError:
            return False
        if low != self.low_memory:
            self.low_memory = low
            return True
        return False

    def self_test(self):
        # What failed, space separated ("" = nothing): a key reading pressed is stuck (or held
        # during the test); the heap must have room to keep working.
        failed = ""
        for i in range(self.nkeys):
            if not self.keys[i].value():
                failed += " key%d" % (i + 1)
        try:
            import gc

            gc.collect()
            if gc.mem_free() < _MIN_FREE:
                failed += " memory"
        except AttributeError:  # CPython has no mem_free
            pass
        return failed.strip()


class _Waker(io.IOBase):
    # What the loop's select.poll waits on: readable once an IRQ or a USB callback set a flag.
    def __init__(self, dev):
        self._dev = dev

    def ioctl(self, req, arg):
        if req == _MP_STREAM_POLL:
            d = self._dev
            if d.hw.edge or d.usb.event:
                return arg & _POLLIN
        return 0


class Console:
    # The REPL's input while the device loop runs. main() turns Ctrl-C into plain data
    # (micropython.kbd_intr(-1)), so a KeyboardInterrupt can never land inside a USB callback
    # (MicroPython would print it there and carry on: lost) or inside a flash write (rp2's flash
    # driver runs pending events, so it could cut a littlefs commit short); the loop reads it
    # here, between passes, and goes to maintenance mode.
    def __init__(self):
        import sys

        self.stream = sys.stdin  # the loop's poller wakes on it too
        self._in = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._buf = bytearray(1)

    def ctrl_c(self):
        seen = False
        for _ in self._poll.ipoll(0):
            if self._in.readinto(self._buf) and self._buf[0] == 3:
                seen = True
        return seen


class Device:
    def __init__(self, storage=None, link=None, board_name=None, clock=None, console=None):
        if storage is None:
            from rpfw.storage import FileStorage

            storage = FileStorage("/journal")
        self.storage = storage
        self.clock = ticks_ms if clock is None else clock
        name = board.detect() if board_name is None else board_name
        by_watchdog = machine.reset_cause() == machine.WDT_RESET
        planned = storage.size(_PLANNED) >= 0
        if planned:
            storage.remove(_PLANNED)
        self.core = Core(None, storage, board=name, version=VERSION)
        self.hw = Hardware(name, self.core.nkeys, self.clock, by_watchdog and not planned)
        self.core.hw = self.hw
        if link is None:
            link = usbhid.HidLink(serial=self.core.settings.get("serial") or None)
            link.start()  # boot.py did not run: enumerate now
        self.usb = link
        self.wdt = None
        self.up = False  # the link as last told to the core
        self._in_at = 0
        self._mem_at = 0  # next free-heap check (ticks_ms), set by start()
        self._reboot_at = _NONE
        self._resync = False
        self._report = link.tx
        self.console = console  # Ctrl-C from the REPL, or None

    def start(self):
        # Power-up: the core (journal recovery) with the keys as they are, key IRQs, watchdog.
        now = self.clock()
        self.core.boot(self.hw.read_keys(), now)
        if self.hw.check_memory():  # the first check, then one every _MEM_CHECK_MS
            self.core.fault_changed()
        self._mem_at = ticks_add(now, _MEM_CHECK_MS)
        self.hw.irq_on()
        self.wdt = machine.WDT(timeout=_WDT_MS)

    def run(self):
        self.start()
        poller = select.poll()
        poller.register(_Waker(self), select.POLLIN)
        if self.console is not None:
            poller.register(self.console.stream, select.POLLIN)
        clock = self.clock
        while True:
            t = self.timeout(clock())
            if t:
                poller.ipoll(t)
            self.service()

    def timeout(self, now):
        # How long the loop may sleep (ms): 0 while work waits, else until the earliest
        # deadline, never longer than _FEED_MS.
        usb = self.usb
        hw = self.hw
        if hw.edge or usb.event or usb.rx_ready:
            return 0
        if self.up and usb.can_send() and (self._resync or self.core.pending()):
            return 0
        d = self.core.next_deadline(now)
        d = earliest(d, hw.buzz_off, now)
        if self.up and usb.in_busy:
            d = earliest(d, ticks_add(self._in_at, _STALL_MS), now)
        d = earliest(d, self._reboot_at, now)
        if self.core.keys_idle():
            d = earliest(d, self._mem_at, now)  # a heap check now delays no key
        if d == _NONE:
            return _FEED_MS
        t = ticks_diff(d, now)
        if t <= 0:
            return 0
        return t if t < _FEED_MS else _FEED_MS

    def scan(self, now):
        # Read the key pins and the edges since the last scan, and run the core through them
        # (Core.scan). Allocation-free unless a rating or a frame to the host comes out of it.
        hw = self.hw
        raw = hw.take_keys()
        self.core.scan(raw, now, hw.scanned)

    def service(self):
        now = self.clock()
        if self.wdt is not None:
            self.wdt.feed()
        usb = self.usb
        core = self.core
        usb.event = False
        up = usb.configured and not (usb.in_busy and ticks_diff(now, self._in_at) >= _STALL_MS)
        if up != self.up:
            self.up = up
            if up:
                self._resync = True
                core.connect(now)
            else:
                core.disconnect(now)
        usb.arm()
        self.scan(now)
        if usb.rx_ready:
            core.receive(usb.take(), now)
            usb.rx_done()
        if up and usb.can_send():
            r = self._report
            if self._resync:
                # first report after the link came up: all zeros (delimiters), so a frame cut
                # off by the link going down ends there and the host decodes what follows
                for i in range(len(r)):
                    r[i] = 0
                self._resync = False
                ready = True
            else:
                ready = core.pull(r)
            if ready and usb.send(r):
                self._in_at = now
        self.hw.poll(now)
        late = ticks_diff(now, self._mem_at)
        if late >= 0 and (late >= _MEM_CHECK_MS or core.keys_idle()):
            # the collection keeps the CPU busy for a while: wait until no key is down or
            # debouncing (a key held down, stuck, delays it one interval at most)
            self._mem_at = ticks_add(now, _MEM_CHECK_MS)
            if self.hw.check_memory():
                core.fault_changed()
        if self.console is not None and self.console.ctrl_c():
            # Ctrl-C (mpremote, ratepad flash): a planned reset into maintenance mode, where the
            # REPL is free (the watchdog cannot be stopped, so the loop cannot just return)
            core.reboot_mode = REBOOT_MODE_MAINTENANCE
            self._reboot_at = now  # no reply to flush
        if core.reboot_mode != _NONE:
            self._reboot(now)

    def _reboot(self, now):
        # The host asked for a reboot: let the reply (and whatever is queued) reach it, for at
        # most _FLUSH_MS, then reset into the mode asked for.
        if self._reboot_at == _NONE:
            self._reboot_at = ticks_add(now, _FLUSH_MS)
        busy = self.core.pending() or self.usb.in_busy
        if self.up and busy and ticks_diff(now, self._reboot_at) < 0:
            return
        mode = self.core.reboot_mode
        self.core.sync_ack()  # ACKs held in RAM reach the flash first
        self.storage.replace(_PLANNED, b"1")  # not a watchdog fault on the next boot
        if mode == REBOOT_MODE_BOOTLOADER:
            machine.bootloader()
        if mode == REBOOT_MODE_MAINTENANCE:
            board.request_maintenance(self.storage)
        machine.reset()


def main():
    # main.py. Maintenance mode: status LED on, nothing else (the REPL is free for mpremote).
    if usbhid.MAINTENANCE:
        name = board.detect()
        Pin(board.pins(name)[board.STATUS], Pin.OUT, value=1)
        return
    import micropython

    micropython.kbd_intr(-1)  # Ctrl-C is read by the loop (see Console)
    dev = None
    try:
        dev = Device(link=usbhid.LINK, console=Console())
        dev.run()
    except Exception as e:
        fallback(e, None if dev is None else dev.storage)
    finally:
        micropython.kbd_intr(3)


def fallback(exc, storage=None, name=None):
    # The device loop stopped on an exception: one log line (printed, and appended to the
    # storage's error.log), the next boot in maintenance mode, and the status LED blinking fast.
    # A watchdog already started resets the board within _WDT_MS, into maintenance mode; else
    # the REPL stays. Returns the blinking timer (or None).
    line = "ratepad: device loop stopped: %s %s\n" % (type(exc).__name__, exc)
    print(line, end="")
    try:
        if storage is None:
            from rpfw.storage import FileStorage

            storage = FileStorage("/journal")
        if storage.size(_LOG) > _LOG_MAX:
            storage.remove(_LOG)
        storage.append(_LOG, line.encode())
        board.request_maintenance(storage)
    except Exception:
        pass  # the flash itself may be what failed
    try:
        led = Pin(board.pins(board.detect() if name is None else name)[board.STATUS], Pin.OUT)
        return machine.Timer(period=_FAULT_BLINK_MS, mode=machine.Timer.PERIODIC,
                             callback=lambda t: led.toggle())
    except Exception:
        return None
