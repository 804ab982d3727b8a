# A fake `machine` module for the firmware tests and the simulator; runs on MicroPython and on
# CPython. The harness maps `import machine` to it (the firmware namespace on CPython,
# sys.modules on the MicroPython VM); it is never installed on a keypad.
#
# Besides the API the firmware uses, it has hooks for the outside world ("test hooks" below):
# drive a pin (firing its IRQ), play the USB host and the USB task (configure, bus reset, complete
# transfers, control requests), read what the firmware did (LED levels, PWM duty, watchdog feeds).
# As in micropython-lib's usb tests, disable_irq() LOCKS THE HEAP: on MicroPython, anything that
# allocates inside a critical section raises MemoryError. Hard IRQ handlers run with the heap
# locked too (on CPython the `micropython` stand-in checks what it can, see sim/mp).
#
# Where each behaviour comes from (MicroPython sources, v1.24-v1.28):
#   Pin(id, mode, pull, value), value(), on/off/toggle; Pin(id) is the same object every time
#     (rp2's pins are a static table: Pin(2) is Pin(2)); Pin("LED") names the board's LED
#                                        ports/rp2/machine_pin.c machine_pin_find
#                                        (&machine_pin_obj_table[pin]; pins.csv names)
#   Pin.irq(handler, trigger, hard), IRQ_FALLING = 4, IRQ_RISING = 8 (pico-sdk GPIO_IRQ_EDGE_*);
#     a hard handler runs in the interrupt itself, at the edge (even in the middle of a heap
#     collection: rp2's GC lock is a mutex, interrupts stay on), where allocating fails; its
#     argument is that same Pin object ...... machine_pin.c gpio_irq (irq->base.parent =
#     &machine_pin_obj_table[pin]), shared/runtime/mpirq.c mp_irq_dispatch (gc_lock() around
#     a hard handler), py/gc.c GC_ENTER, ports/rp2/mpthreadport.c. So drive() runs the handler
#     at once: a handler that reads the clock (time.ticks_ms() on a board: a small int, no
#     allocation: extmod/modtime.c time_ticks_ms, ports/rp2/mphalport.h mp_hal_ticks_ms) sees
#     the tick of the edge, however long the device loop takes to scan it.
#   PWM(pin), freq(), duty_u16() ........ ports/rp2/machine_pwm.c
#   unique_id(): 8 bytes (the flash chip's id) ....... ports/rp2/modmachine.c mp_machine_unique_id
#   bootloader() never returns (reset_usb_boot) ...... ports/rp2/modmachine.c
#   disable_irq()/enable_irq(state) ..... extmod/modmachine.c (MICROPY_BEGIN_ATOMIC_SECTION); the
#     heap lock inside is this fake's, as in micropython-lib's usb tests
#   Timer(mode, period, callback): soft by default (the callback is scheduled)
#                                        ports/rp2/machine_timer.c
#   reset() is a watchdog reboot, so reset_cause() says WDT_RESET afterwards; a soft reset does
#     not change it ..................... ports/rp2/modmachine.c mp_machine_reset (watchdog_reboot),
#                                         mp_machine_reset_cause (watchdog_caused_reboot)
#   PWRON_RESET = 1, WDT_RESET = 3 ..... ports/rp2/modmachine.c RP2_RESET_PWRON / RP2_RESET_WDT
#   WDT timeout above 8388 ms: ValueError; the chip resets when not fed in time
#                                        ports/rp2/machine_wdt.c mp_machine_wdt_make_new
#                                        (0x7fffff us, the RP2040 watchdog's 24-bit counter)
#   an exception in an IRQ handler disables that IRQ and is printed
#                                        shared/runtime/mpirq.c mp_irq_dispatch
#   USBDevice is a singleton ........... extmod/machine_usb_device.c usb_device_make_new
#   active(v) only flags the change; the USB task applies it later, and until then submit_xfer
#     raises OSError(EINVAL) ............ usb_device_active, usb_device_check_active
#   active(True) with no descriptors and no built-in driver: OSError(EINVAL) ... usb_device_active
#   config() is allowed while active ... usb_device_config (no active check); desc_strs is a
#     required argument (TypeError without it, although the docs call it optional), desc_dev and
#     desc_cfg must be buffers and desc_strs None or indexable (ValueError naming the argument)
#                                        usb_device_config allowed_args and its checks
#   builtin_driver can only change while inactive (EINVAL) ............ usb_device_attr
#   stall() while inactive: OSError(EINVAL), as submit_xfer ........ usb_device_stall
#   submit_xfer: ValueError for endpoint 0, OSError(EBUSY) when a transfer is already in flight
#     on the endpoint (usbd_edpt_claim fails), TypeError for a read-only OUT buffer, else the
#     bool usbd_edpt_xfer returns ...... usb_device_submit_xfer
#   xfer_cb(ep, result, xferred_bytes) gets TinyUSB's xfer_result_t: 0 = success (XFER_SUCCESS),
#     1 = failed, 2 = stalled ........... shared/tinyusb/mp_usbd_runtime.c runtime_dev_xfer_cb;
#                                        TinyUSB src/common/tusb_types.h XFER_RESULT_SUCCESS = 0
#   a bus reset drops every transfer in flight, then reset_cb ...... runtime_dev_reset
#   open_itf_cb only for interfaces above the built-in ones ......... runtime_dev_open
#   an exception in a USB callback is kept and printed when the USB task ends (it never reaches
#     the code that was interrupted) .... usbd_callback_function_n, usbd_pend_exception
#   USB callbacks run from the USB task, scheduled at any bytecode boundary (mp_usbd_task_callback
#     via mp_sched_schedule), and inside flash I/O: ports/rp2/rp2_flash.c rp2_flash_readblocks
#     and rp2_flash_writeblocks call mp_event_handle_nowait() after each read, erase and program.
#     tests/fw/fwtest_inject.py runs them at such points (configure(), host_read(), host_write(),
#     complete(), bus_reset() below are the host's side of them).
import micropython

PWRON_RESET = 1
WDT_RESET = 3
_EINVAL = 22
_EBUSY = 16
_WDT_MAX_MS = 8388
XFER_SUCCESS = 0
XFER_FAILED = 1
XFER_STALLED = 2


class Reset(Exception):
    # reset() and bootloader() never return on a keypad; here they raise this (args[0]: kind).
    pass


class _State:
    def __init__(self):
        self.reset_cause = PWRON_RESET
        self.irq_depth = 0
        self.irq_errors = []  # exceptions raised by IRQ handlers (printed on a board)


_state = _State()


def reset():
    # rp2: watchdog_reboot(), so the next boot's reset_cause() is WDT_RESET
    _state.reset_cause = WDT_RESET
    raise Reset("reset")


def soft_reset():
    raise Reset("soft_reset")


def bootloader(*args):
    raise Reset("bootloader")


def reset_cause():
    return _state.reset_cause


def unique_id():
    return b"\xe6\x61\x38\x52\x83\x2a\x4b\x2f"


def freq(*args):
    return 125000000


def idle():
    pass


def lightsleep(ms=None):
    pass


def deepsleep(ms=None):
    raise Reset("deepsleep")


def disable_irq():
    _state.irq_depth += 1
    micropython.heap_lock()
    return _state.irq_depth


def enable_irq(state):
    micropython.heap_unlock()
    _state.irq_depth -= 1


# -- pins ---------------------------------------------------------------------------------------
class _Gpio:
    # One GPIO, shared by every Pin object made for its id (as on a real chip).
    def __init__(self):
        self.mode = -1
        self.pull = -1
        self.out = 0
        self.ext = -1  # level driven from outside (test hook); -1 = floating
        self.handler = None
        self.trigger = 0
        self.hard = False
        self.irq_pin = None

    def level(self):
        if self.mode == Pin.OUT:
            return self.out
        if self.ext >= 0:
            return self.ext
        return 1 if self.pull == Pin.PULL_UP else 0


_gpios = {}
_pins = {}  # id -> the one Pin object for it (ports/rp2: machine_pin_obj_table)


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4  # rp2's values
    IRQ_RISING = 8

    def __new__(cls, id, mode=-1, pull=-1, value=None):
        p = _pins.get(id)
        if p is None:
            p = _pins[id] = object.__new__(cls)
            g = _gpios.get(id)
            if g is None:
                g = _gpios[id] = _Gpio()
            p.id = id
            p._g = g
        return p

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        g = self._g
        if mode != -1:
            g.mode = mode
        if pull != -1:
            g.pull = pull
        if value is not None:
            g.out = 1 if value else 0

    def value(self, v=None):
        g = self._g
        if v is None:
            return g.level()
        g.out = 1 if v else 0
        return None

    def __call__(self, v=None):
        return self.value(v)

    def toggle(self):
        self._g.out ^= 1

    def on(self):
        self._g.out = 1

    def off(self):
        self._g.out = 0

    def irq(self, handler=None, trigger=12, hard=False):
        g = self._g
        g.handler = handler
        g.trigger = trigger
        g.hard = hard
        g.irq_pin = self
        return self

    # test hooks
    def drive(self, level):
        # Drive the input from outside (1/0, -1 = let go); fires the IRQ on a matching edge.
        # Allocates nothing, so it can run inside disable_irq().
        g = self._g
        before = g.level()
        g.ext = level
        after = g.level()
        if g.handler is not None and before != after:
            edge = Pin.IRQ_RISING if after else Pin.IRQ_FALLING
            if g.trigger & edge:
                if g.hard:
                    micropython.heap_lock()
                try:
                    g.handler(g.irq_pin)
                except Exception as e:
                    # mpirq.c: "Uncaught exception in IRQ callback handler", IRQ disabled
                    g.handler = None
                    g.trigger = 0
                    _state.irq_errors.append(e)
                finally:
                    if g.hard:
                        micropython.heap_unlock()

    def mode(self):
        return self._g.mode

    def pull(self):
        return self._g.pull

    def irq_handler(self):
        return self._g.handler


class PWM:
    def __init__(self, dest, freq=0, duty_u16=0):
        self.pin = dest
        self._freq = freq
        self._duty = duty_u16

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f
        return None

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        self._duty = d
        return None

    def deinit(self):
        self._duty = 0


class Timer:
    # rp2 machine.Timer (ports/rp2/machine_timer.c): a soft timer by default; here the test
    # fires it (fire()).
    ONE_SHOT = 0
    PERIODIC = 1
    last = None  # test hook: the timer made most recently

    def __init__(self, id=-1, mode=PERIODIC, period=-1, callback=None, freq=-1, hard=False):
        self.mode = mode
        self.period = period
        self.callback = callback
        Timer.last = self

    def deinit(self):
        self.callback = None

    # test hook
    def fire(self):
        if self.callback is not None:
            self.callback(self)


class WDT:
    last = None  # test hook: the watchdog started most recently
    clock = None  # test hook: a function giving ms, to tell when the watchdog would bite

    def __init__(self, id=0, timeout=5000):
        if timeout > _WDT_MAX_MS:
            raise ValueError("timeout exceeds %d" % _WDT_MAX_MS)
        self.timeout = timeout
        self.feeds = 0
        self.fed_at = WDT.clock() if WDT.clock else 0
        WDT.last = self

    def feed(self):
        self.feeds += 1
        if WDT.clock:
            self.fed_at = WDT.clock()

    # test hook
    def starved(self, now):
        # True if the chip would have reset by `now` (ms) for lack of feeding.
        return now - self.fed_at > self.timeout


# -- USB ----------------------------------------------------------------------------------------
class _Builtin:
    def __init__(self, itf_max, ep_max, str_max, desc_dev, desc_cfg):
        self.itf_max = itf_max
        self.ep_max = ep_max
        self.str_max = str_max
        self.desc_dev = desc_dev
        self.desc_cfg = desc_cfg


# What MicroPython's rp2 port compiles in: a CDC ACM (the REPL) behind an IAD, strings 1-4;
# the bytes of TinyUSB's TUD_CDC_DESCRIPTOR (lib/tinyusb/src/device/usbd.h: ACM capabilities 6 =
# line coding + send break, notification endpoint polled every 1 ms), as the real rp2 binary
# answers them (tests/test_fakes_vs_rp2040.py).
_CDC_DEV = bytes((18, 1, 0x00, 0x02, 0xEF, 0x02, 0x01, 64, 0x8A, 0x2E, 0x05, 0x00, 0x00, 0x01,
                  1, 2, 3, 1))
_CDC_CFG = bytes((
    9, 2, 75, 0, 2, 1, 0, 0x80, 125,  # configuration: 75 bytes, 2 interfaces
    8, 0x0B, 0, 2, 2, 2, 0, 0,  # IAD: interfaces 0-1, CDC
    9, 4, 0, 0, 1, 2, 2, 0, 4,  # interface 0: CDC control, 1 endpoint, string 4
    5, 0x24, 0x00, 0x20, 0x01,  # CDC header
    5, 0x24, 0x01, 0x00, 0x01,  # call management
    4, 0x24, 0x02, 0x06,  # ACM: line requests and send break
    5, 0x24, 0x06, 0x00, 0x01,  # union
    7, 5, 0x81, 3, 8, 0, 1,  # notification IN 0x81, every 1 ms
    9, 4, 1, 0, 2, 0x0A, 0, 0, 0,  # interface 1: CDC data, 2 endpoints
    7, 5, 0x02, 2, 64, 0, 0,  # bulk OUT 0x02
    7, 5, 0x82, 2, 64, 0, 0,  # bulk IN 0x82
))


class USBDevice:
    BUILTIN_NONE = _Builtin(0, 0, 1, _CDC_DEV, b"")
    BUILTIN_CDC = _Builtin(2, 3, 5, _CDC_DEV, _CDC_CFG)
    BUILTIN_DEFAULT = BUILTIN_CDC
    _it = None

    def __new__(cls):
        # A singleton, as on MicroPython (see fake_reset()).
        if USBDevice._it is None:
            it = object.__new__(cls)
            it._clear()
            USBDevice._it = it
        return USBDevice._it

    def _clear(self):
        self._builtin = USBDevice.BUILTIN_NONE
        self._active = False
        self._trigger = False  # an active() change the USB task has not applied yet
        self.connected = False  # pull-up on: the host can see the device
        self.callback_errors = []  # exceptions raised by callbacks (printed on a board)
        self.desc_dev = None
        self.desc_cfg = None
        self.desc_strs = None
        self.configs = 0  # test hook: config() calls
        self._open_itf_cb = None
        self._reset_cb = None
        self._control_xfer_cb = None
        self._xfer_cb = None
        self.configured = False
        self._eps = []  # endpoints of the runtime interfaces the host opened
        self._pending = {}  # ep -> buffer of the transfer in flight
        self.stalled = {}

    @property
    def builtin_driver(self):
        return self._builtin

    @builtin_driver.setter
    def builtin_driver(self, value):
        if self._active:
            raise OSError(_EINVAL)
        self._builtin = value

    def config(self, desc_dev, desc_cfg, desc_strs, open_itf_cb=None, reset_cb=None,
               control_xfer_cb=None, xfer_cb=None):
        for name, desc in (("desc_dev", desc_dev), ("desc_cfg", desc_cfg)):
            if not isinstance(desc, (bytes, bytearray, memoryview)):
                raise ValueError(name)
        if desc_strs is not None:
            try:
                desc_strs[0]  # indexable (the C code asks for a subscr slot)
            except TypeError:
                raise ValueError("desc_strs")
            except (IndexError, KeyError):
                pass
        self.desc_dev = desc_dev
        self.desc_cfg = desc_cfg
        self.desc_strs = desc_strs
        self._open_itf_cb = open_itf_cb
        self._reset_cb = reset_cb
        self._control_xfer_cb = control_xfer_cb
        self._xfer_cb = xfer_cb
        self.configs += 1

    def active(self, *value):
        was = self._active
        if value:
            v = bool(value[0])
            if v != was:
                if v and self._builtin is USBDevice.BUILTIN_NONE and self.desc_dev is None:
                    raise OSError(_EINVAL)
                self._active = v
                self._trigger = True  # applied by the USB task (fake_usb_task)
        return was

    def submit_xfer(self, ep, buffer):
        if not self._active or self._trigger:
            raise OSError(_EINVAL)
        if ep & 0x7F == 0 or ep & 0x7F >= 16:
            raise ValueError("ep")
        if not ep & 0x80 and isinstance(buffer, bytes):
            raise TypeError("object with buffer protocol required")
        if ep in self._pending:
            raise OSError(_EBUSY)
        if not self.configured or ep not in self._eps:
            return False
        self._pending[ep] = buffer
        return True

    def stall(self, ep, *stall):
        if not self._active or self._trigger:  # usb_device_stall: usb_device_check_active
            raise OSError(_EINVAL)
        was = self.stalled.get(ep, False)
        if stall:
            self.stalled[ep] = bool(stall[0])
        return was

    def remote_wakeup(self):
        return False

    # test hooks: the USB task and the USB host ---------------------------------------------
    def _call(self, cb, *args):
        # usbd_callback_function_n: an exception is kept for printing, never propagated
        try:
            return cb(*args)
        except Exception as e:
            self.callback_errors.append(e)
            return None

    def task(self):
        # The USB task (mp_usbd_task_inner): apply a pending active() change.
        if self._trigger:
            self._trigger = False
            if self._active:
                self.connected = True
            else:
                self.connected = False
                self.configured = False
                self._eps = []
                self._pending = {}

    def configure(self):
        # SET_CONFIGURATION: open_itf_cb for each runtime interface (the built-in ones belong to
        # the port's own drivers), with a view of its descriptors. Runs the USB task first.
        self.task()
        if not self._active or not self.connected:
            raise OSError(_EINVAL)
        cfg = self.desc_cfg if self.desc_cfg is not None else self._builtin.desc_cfg
        mv = memoryview(cfg)
        first = self._builtin.itf_max
        self._eps = []
        self.configured = True
        start = -1
        o = 0
        opened = []
        while o < len(cfg):
            n = cfg[o]
            t = cfg[o + 1]
            if t == 4:
                if start >= 0:
                    opened.append((start, o))
                start = o if cfg[o + 2] >= first else -1
            elif t == 5 and start >= 0:
                self._eps.append(cfg[o + 2])
            o += n
        if start >= 0:
            opened.append((start, o))
        for a, b in opened:
            if self._open_itf_cb is not None:
                self._call(self._open_itf_cb, mv[a:b])

    def bus_reset(self):
        self.configured = False
        self._eps = []
        self._pending = {}
        if self._reset_cb is not None:
            self._call(self._reset_cb)

    def endpoints(self):
        return list(self._eps)

    def pending(self, ep):
        # The buffer of the transfer in flight on `ep`, or None.
        return self._pending.get(ep)

    def complete(self, ep, n=-1, result=XFER_SUCCESS):
        # The host finished the transfer on `ep` (n bytes; -1 = the whole buffer): xfer_cb
        # with TinyUSB's result code (0 = success). Allocates nothing on success, so it can run
        # inside disable_irq().
        buf = self._pending.pop(ep)
        if n < 0:
            n = len(buf)
        if self._xfer_cb is not None:
            try:  # inline, not _call(): no argument tuple to allocate with the heap locked
                self._xfer_cb(ep, result, n)
            except Exception as e:
                self.callback_errors.append(e)

    def host_write(self, ep, data):
        # The host sends `data` on OUT endpoint `ep`; False if no transfer is armed there.
        buf = self._pending.get(ep)
        if buf is None:
            return False
        n = len(data)
        buf[0:n] = data
        self.complete(ep, n)
        return True

    def host_read(self, ep):
        # The host reads the IN transfer in flight on `ep`: its bytes, or None.
        buf = self._pending.get(ep)
        if buf is None:
            return None
        data = bytes(buf)
        self.complete(ep)
        return data

    def control(self, setup, data=b""):
        # One control transfer through control_xfer_cb: (True, data read) or (False, None) if
        # it stalled. `setup` is the 8-byte request.
        cb = self._control_xfer_cb
        req = memoryview(bytearray(setup))
        length = setup[6] | (setup[7] << 8)
        r = self._call(cb, 1, req)
        if r is False or r is None:
            return False, None
        got = b""
        if r is not True:
            if setup[0] & 0x80:
                got = bytes(memoryview(r)[:length])
            else:
                r[0 : len(data)] = data
            if self._call(cb, 2, req) in (False, None):
                return False, None
        if self._call(cb, 3, req) in (False, None):
            return False, None
        return True, got


def fake_reset(cause=PWRON_RESET):
    # Test hook: a freshly powered board (pins, USB device, watchdog, reset cause).
    _gpios.clear()
    _pins.clear()
    USBDevice._it = None
    WDT.last = None
    WDT.clock = None
    Timer.last = None
    _state.reset_cause = cause
    _state.irq_depth = 0
    _state.irq_errors = []


def irq_errors():
    # Test hook: exceptions IRQ handlers raised (each disabled its IRQ).
    return _state.irq_errors
