# USB callbacks at any moment: the device loop with the USB host's events (IN reports read, OUT
# reports written, bus resets) injected at random points, seeded. On a keypad the USB task runs
# TinyUSB's callbacks from MicroPython's scheduler at any bytecode boundary, including while the
# rp2 flash driver waits on an erase or a program. Here they are injected during every flash
# operation and between loop passes on both engines, and, on CPython, at random bytecodes of the
# firmware itself (sys.settrace with opcode events). Nothing may be lost or stuck: every rating
# reaches the host, every one is ACKed in the end, and the link is up and idle.
import sys
import machine

from sim.memstorage import MemStorage
from rpfw import codec, device, usbhid

_KEY_GPIO = (2, 3, 4, 5, 6)


class Rand:
    # A small LCG: the same sequence on both engines for a seed.
    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


class Host:
    # The PC: reads IN reports, ACKs ratings, answers the keypad's hello; every action is one
    # USB event (a transfer completing: xfer_cb), run whenever the injector says.
    def __init__(self, usbd, rand):
        self.usbd = usbd
        self.rand = rand
        self.dev = None
        self.stream = bytearray()
        self.out = []  # OUT reports waiting for the keypad to arm its endpoint
        self.seqs = {}  # journal seq -> times received
        self.resets = 0
        self._seq = 0
        self.busy = False

    def queue(self, name, fields):
        self._seq += 1
        frame = codec.encode_frame(name, fields, self._seq)
        for o in range(0, len(frame), 64):
            r = bytearray(64)
            chunk = frame[o : o + 64]
            r[0 : len(chunk)] = chunk
            self.out.append(r)

    def act(self):
        # One USB event, if one is due; never re-entered.
        if self.busy or self.dev is None:
            return
        self.busy = True
        try:
            link = self.dev.usb
            k = self.rand.below(16)
            if k == 0 and self.resets < 3:
                self.resets += 1
                self.usbd.bus_reset()
                self.usbd.configure()
                self.stream = bytearray()
                self.out = []
                self.queue_hello()
            elif k < 9:
                data = self.usbd.host_read(link.ep_in)
                if data is not None:
                    self._frames(data)
            elif self.out and self.usbd.pending(link.ep_out) is not None:
                self.usbd.host_write(link.ep_out, self.out.pop(0))
        finally:
            self.busy = False

    def queue_hello(self):
        self.queue("host_hello", {"protocol_version": codec.PROTOCOL_VERSION,
                                  "schema_fingerprint": codec.SCHEMA_FINGERPRINT,
                                  "software": "inject"})

    def _frames(self, data):
        rx = self.stream
        rx.extend(data)
        start = 0
        for i in range(len(rx)):
            if rx[i] == 0:
                if i > start:
                    try:
                        name, f = codec.decode_frame(bytes(rx[start : i + 1]))
                    except ValueError:
                        name = "bad"
                    if name == "rating":
                        s = f["journal_seq"]
                        self.seqs[s] = self.seqs.get(s, 0) + 1
                        self.queue("ack", {"journal_seq": s})
                start = i + 1
        self.stream = rx[start:]


class InjectingStorage(MemStorage):
    # The flash, with USB events during its operations (as rp2's flash driver allows).
    def __init__(self, host):
        super().__init__()
        self.host = host

    def _around(self):
        if self.host.rand.below(2) == 0:
            self.host.act()

    def write(self, name, data):
        self._around()
        super().write(name, data)
        self._around()

    def append(self, name, data, more=None):
        self._around()
        super().append(name, data, more)
        self._around()

    def read_into(self, name, offset, buf):
        self._around()
        return super().read_into(name, offset, buf)

    def replace(self, name, data):
        self._around()
        super().replace(name, data)
        self._around()


def _tracer(host):
    # CPython: USB events at random bytecodes of the firmware's own code.
    import micropython

    def local(frame, event, arg):
        # not inside a hard IRQ handler (heap locked): the USB task never runs there
        if event == "opcode" and not micropython.heap_locked() and host.rand.below(40) == 0:
            host.act()
        return local

    def glob(frame, event, arg):
        if "/rpfw/" in frame.f_code.co_filename:
            frame.f_trace_opcodes = True
            return local
        return None

    return glob


def _run(seed, presses):
    machine.fake_reset()
    rand = Rand(seed)
    usbd = machine.USBDevice()
    host = Host(usbd, rand)
    st = InjectingStorage(host)
    st.files["settings"] = bytearray(b"serial=KP-1\ndebounce_ms=5\nchord_ms=20\n"
                                     b"repeat_guard_ms=0\nthanks_ms=200\nack_timeout_ms=300\n")
    link = usbhid.boot(st, False)
    usbd.configure()
    clock = [1000]
    dev = device.Device(st, link, "pico", lambda: clock[0])
    dev.start()
    host.dev = dev
    host.queue_hello()
    tracing = hasattr(sys, "settrace") and sys.implementation.name != "micropython"
    if tracing:
        sys.settrace(_tracer(host))
    try:
        t_end = clock[0]
        for i in range(presses):
            key = machine.Pin(_KEY_GPIO[i % 5])
            for phase in (0, 1):
                key.drive(phase)
                t_end = clock[0] + (60 if phase == 0 else 300)
                while clock[0] < t_end:
                    host.act()
                    dev.service()
                    clock[0] += 1 + rand.below(20)
        # then quiet: everything drains and is ACKed (retransmitted where a reset cut it off)
        for _ in range(4000):
            host.act()
            dev.service()
            clock[0] += 5
            if dev.core.journal.unacked() == 0 and not host.out and dev.core.pending() == 0:
                break
    finally:
        if tracing:
            sys.settrace(None)
    return dev, host, usbd


def _check(dev, host, usbd, presses):
    j = dev.core.journal
    assert j.next_seq == presses + 1, (j.next_seq, presses)  # every press journalled once
    for seq in range(1, presses + 1):
        assert host.seqs.get(seq, 0) >= 1, seq  # every rating reached the host
    assert j.unacked() == 0, j.unacked()  # and was ACKed
    assert dev.up and dev.usb.configured and not dev.usb.in_busy  # not stuck
    assert usbd.callback_errors == [] and machine.irq_errors() == []


def test_usb_events_injected_anywhere_lose_nothing_seed_1():
    dev, host, usbd = _run(1, 12)
    _check(dev, host, usbd, 12)


def test_usb_events_injected_anywhere_lose_nothing_seed_2():
    dev, host, usbd = _run(2, 12)
    _check(dev, host, usbd, 12)


def test_usb_events_injected_anywhere_lose_nothing_seed_3():
    dev, host, usbd = _run(3, 12)
    _check(dev, host, usbd, 12)
