# A keypad core on a virtual clock, with fake hardware and a minimal host side: used by the
# firmware tests (on CPython and MicroPython) and by the simulator.
from rpfw import codec
from rpfw.core import Core
from rpfw.ticks import ticks_add, ticks_diff
from sim.memstorage import MemStorage


class FakeHw:
    def __init__(self):
        self.led_mask = 0
        self.status = False
        self.buzzes = 0
        self.watchdog_reset = False
        self.maintenance = False
        self.failed = ""

    def leds(self, mask):
        self.led_mask = mask

    def status_led(self, on):
        self.status = on

    def buzz(self, ms):
        self.buzzes += 1

    def self_test(self):
        return self.failed


class Bench:
    def __init__(self, storage=None, now=0, raw=0, settings=None, auto_ack=True):
        self.auto_ack = auto_ack  # ACK every rating as it arrives, as the host does
        self.storage = MemStorage() if storage is None else storage
        if settings:
            text = "\n".join(k + "=" + str(settings[k]) for k in settings) + "\n"
            self.storage.files["settings"] = bytearray(text.encode())
        self.hw = FakeHw()
        self.now = now
        self.raw = raw
        self.received = []  # (type_name, fields, seq, header flag names), in arrival order
        self._seq = 0
        self._rx = bytearray()
        self._report = bytearray(64)
        self.core = Core(self.hw, self.storage)
        self.core.boot(raw, now)

    # -- host side ----------------------------------------------------------------------------
    def send(self, name, fields):
        self._seq = (self._seq + 1) & 0xFFFF
        self.core.receive(codec.encode_frame(name, fields, self._seq), self.now)
        self.drain()
        return self._seq

    def hello(self):
        return self.send("host_hello", {"protocol_version": codec.PROTOCOL_VERSION,
                                        "schema_fingerprint": codec.SCHEMA_FINGERPRINT,
                                        "software": "bench"})

    def drain(self):
        r = self._report
        while self.core.pull(r):
            self._rx.extend(r)
        start = 0
        ack = 0
        rx = self._rx
        for i in range(len(rx)):
            if rx[i] != 0:
                continue
            frame = bytes(rx[start : i + 1])
            start = i + 1
            if len(frame) > 1:
                name, fields = codec.decode_frame(frame)
                seq, flags = codec.header_of(frame)
                self.received.append((name, fields, seq, flags))
                if name == "rating" and fields["journal_seq"] > ack:
                    ack = fields["journal_seq"]
        self._rx = rx[start:]
        if ack and self.auto_ack:
            self.send("ack", {"journal_seq": ack})

    def take(self, name):
        # Remove and return the fields of every received frame of this type.
        out = []
        rest = []
        for item in self.received:
            if item[0] == name:
                out.append(item[1])
            else:
                rest.append(item)
        self.received = rest
        return out

    def results(self):
        return [(f["request_seq"], f["code"], f["detail"]) for f in self.take("result")]

    # -- keys and time ------------------------------------------------------------------------
    def advance(self, ms):
        # Let `ms` of virtual time pass, waking the core exactly at its deadlines.
        end = ticks_add(self.now, ms)
        for _ in range(100000):
            d = self.core.next_deadline(self.now)
            if d == -1 or ticks_diff(d, end) > 0:
                break
            if ticks_diff(d, self.now) > 0:
                self.now = d
            self.core.step(self.raw, self.now)
            self.drain()
        else:
            raise AssertionError("core keeps a deadline in the past")
        self.now = end

    def keys(self, raw):
        self.raw = raw
        self.core.step(raw, self.now)
        self.drain()

    def press(self, key, hold_ms=120, settle_ms=200):
        # Press key number `key` (1-based) for hold_ms, then wait settle_ms.
        self.keys(self.raw | (1 << (key - 1)))
        self.advance(hold_ms)
        self.keys(self.raw & ~(1 << (key - 1)))
        self.advance(settle_ms)
