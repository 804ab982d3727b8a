# A simulated keypad on a virtual clock: the real core with fake pins, LEDs and flash. Written
# once, for both engines: CPython imports it in the simulator, and the MicroPython engine runs
# this same file on the MicroPython VM, so both engines see exactly the same keypad.
from rpfw.core import Core
from sim.keypad import FakeHw
from sim.memstorage import MemStorage, PowerCut

PERIOD = 1 << 30  # ticks_ms wraps here
_HALF = PERIOD // 2


class SimKeypad:
    def __init__(self, device_id, settings_text, now_ms=0, ticks_offset=0, storage=None):
        self.device_id = device_id
        if storage is None:
            storage = MemStorage()
            storage.files["settings"] = bytearray(settings_text)
        elif storage.read("settings") is None:
            storage.replace("settings", settings_text)
        self.storage = storage
        self.hw = FakeHw()
        self.ticks_offset = ticks_offset
        self.now_ms = now_ms
        self.raw = 0
        self.powered = False
        self.linked = False
        self.core = None
        self.key_edges = []  # (time ms, key number, down)
        self.power_cuts = []  # times the power failed in the middle of a write
        self._report = bytearray(64)
        self._deadline = None  # cached next_deadline_ms(); None = to be computed
        self.power_on(now_ms)

    def ticks(self, now_ms):
        return (now_ms + self.ticks_offset) % PERIOD

    def next_deadline_ms(self):
        # Virtual time of the core's next deadline, or -1. Cached: only a call into the core
        # can change it.
        if self._deadline is not None:
            return self._deadline
        if not self.powered:
            return -1
        now = self.ticks(self.now_ms)
        d = self.core.next_deadline(now)
        if d == -1:
            self._deadline = -1
        else:
            delta = (d - now + _HALF) % PERIOD - _HALF
            self._deadline = self.now_ms + (delta if delta > 0 else 0)
        return self._deadline

    def advance_to(self, now_ms, inclusive=True):
        # Let time pass up to now_ms, waking the core at its deadlines (those at now_ms itself
        # only if inclusive).
        while self.powered:
            d = self.next_deadline_ms()
            if d == -1 or d > now_ms or (d == now_ms and not inclusive):
                break
            self.now_ms = d
            self._step(d)
        if now_ms > self.now_ms:
            self.now_ms = now_ms

    def _step(self, now_ms):
        before = self.core.debouncer.state
        self._guarded(0, now_ms, None)
        if self.powered:
            after = self.core.debouncer.state
            changed = after ^ before
            for k in range(5):
                if (changed >> k) & 1:
                    self.key_edges.append((now_ms, k + 1, bool((after >> k) & 1)))

    def _guarded(self, what, now_ms, data):
        # Run one core call; the fake flash raises PowerCut when a planned cut happens, and
        # the keypad is then dead until power_on().
        self._deadline = None
        t = self.ticks(now_ms)
        try:
            if what == 0:
                self.core.step(self.raw, t)
            else:
                self.core.receive(data, t)
        except PowerCut:
            self.power_off()
            self.power_cuts.append(self.now_ms)

    def set_keys(self, raw, now_ms):
        # Raw pins from now_ms on: the edge first, then whatever is due at now_ms (one scan).
        self.advance_to(now_ms, False)
        self.raw = raw
        if now_ms > self.now_ms:
            self.now_ms = now_ms
        if self.powered:
            self._step(now_ms)

    def connect(self, now_ms):
        self.advance_to(now_ms)
        self._deadline = None
        self.linked = True
        if self.powered:
            self.core.connect(self.ticks(now_ms))

    def disconnect(self, now_ms):
        self.advance_to(now_ms)
        self._deadline = None
        self.linked = False
        if self.powered:
            self.core.disconnect(self.ticks(now_ms))

    def write(self, data, now_ms):
        self.advance_to(now_ms)
        if self.powered and self.linked:
            self._guarded(1, now_ms, data)

    def read_reports(self):
        out = []
        if not (self.powered and self.linked):
            return out
        while self.core.pull(self._report):
            out.append(bytes(self._report))
        return out

    def power_off(self):
        self._deadline = None
        self.powered = False
        self.core = None

    def power_on(self, now_ms):
        self._deadline = None
        if now_ms > self.now_ms:
            self.now_ms = now_ms
        if hasattr(self.storage, "budget"):
            self.storage.budget = -1  # power is back: writes complete again
        if hasattr(self.storage, "remount"):
            self.storage.remount()  # littlefs: mount what the flash holds now
        self.core = Core(self.hw, self.storage, "sim")
        self.core.boot(self.raw, self.ticks(self.now_ms))
        self.powered = True
        if self.linked:
            self.core.connect(self.ticks(self.now_ms))

    def plan_power_cut(self):
        # The power fails in the next rating's journal write (a tail slot: "t<d>/<slot>").
        self.storage.cut_in_next_append("/")

    def key_for_score(self, score):
        order = self.core.settings.get("key_order") if self.core else "12345"
        i = order.find(str(score))
        return i + 1 if i >= 0 else score

    def journal_next_seq(self):
        return self.core.journal.next_seq if self.core else -1
