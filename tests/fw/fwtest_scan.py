# Late scans: the device loop scans the keys when it gets to them (a heap collection or a flash
# write can keep it busy for ~25 ms), with the pin IRQ's stamps of what happened meanwhile
# (rpfw.edges); Core.scan replays them. The debounced edges and the ratings must come out as
# from a core stepped on every edge and at every deadline (what the simulator does), to the
# millisecond, for every debounce mode, near the ticks wrap too.
# Runs on CPython and on MicroPython (plain asserts).
import machine

from rpfw.core import Core
from rpfw.edges import Edges
from rpfw.journal import F_FLAGS, F_KEY_COUNT, F_SCORE, F_UPTIME
from rpfw.ticks import PERIOD, ticks_add, ticks_diff
from sim.keypad import FakeHw
from sim.memstorage import MemStorage
from rpfw import device

_KEY_GPIO = (2, 3, 4, 5, 6)


class Rand:
    # A small LCG: the same sequence on both engines for a seed.
    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


def _presses(rand, mode_ms, n):
    # Raw edges (ms, key index, level) of `n` presses: each bounces (the contact toggles every
    # millisecond, fewer ms than the debounce time) on press and release; now and then a second
    # key joins (a chord) or a press follows the last one closely.
    out = []
    t = 50
    for _ in range(n):
        k = rand.below(5)
        keys = [k]
        if rand.below(6) == 0:
            keys.append((k + 1 + rand.below(4)) % 5)
        start = t
        for j in range(len(keys)):
            key = keys[j]
            at = start + j * rand.below(30)
            hold = 40 + rand.below(200)
            for base, level in ((at, 1), (at + hold, 0)):
                bounce = rand.below(mode_ms - 1)
                for i in range(bounce + 1):
                    out.append((base + i, key, level if i % 2 == 0 else 1 - level))
                if bounce % 2:
                    out.append((base + bounce + 1, key, level))
        t = start + 300 + rand.below(3 if rand.below(3) == 0 else 900)
    out.sort()
    return out, t + 500


def _core(settings, t0):
    st = MemStorage()
    st.files["settings"] = bytearray("".join(k + "=" + str(settings[k]) + "\n"
                                             for k in settings).encode())
    core = Core(FakeHw(), st)
    core.boot(0, t0)
    log = []
    keys = core.rules.keys

    def logged(changed, down, now):
        log.append((changed, down, now))
        keys(changed, down, now)

    core.rules.keys = logged
    return core, log


def _tk(base, v):
    return (base + v) % PERIOD


def _deadline(core, base, v):
    # Virtual ms of the core's next deadline seen from v, or None.
    d = core.next_deadline(_tk(base, v))
    if d == -1:
        return None
    return v + ticks_diff(d, _tk(base, v))


def _reference(settings, edges, end, base):
    # The core on every edge and at every deadline (deadlines at an edge's ms: with the edge).
    core, log = _core(settings, _tk(base, 0))
    raw = 0
    v = 0
    for i in range(len(edges) + 1):
        upto = edges[i][0] if i < len(edges) else end + 1
        for _ in range(1000):
            d = _deadline(core, base, v)
            if d is None or d >= upto:
                break
            v = max(v, d)
            core.step(raw, _tk(base, v))
        if i < len(edges):
            t, key, level = edges[i]
            raw = raw | (1 << key) if level else raw & ~(1 << key)
            v = t
            core.step(raw, _tk(base, v))
    return core, log


def _late(settings, edges, end, base, rand):
    # The device loop's way: the IRQ stamps each edge; the loop wakes for an edge or a
    # deadline, but only once its last pass is over (each takes 0-3 ms, a quarter 25 ms: a
    # heap collection), and scans with the stamps.
    core, log = _core(settings, _tk(base, 0))
    irq = Edges(5)
    taken = Edges(5)
    raw = 0
    v = 0  # time of the last scan
    busy = 0  # the last pass ends here
    first = None  # the earliest edge not scanned yet
    i = 0
    for _ in range(100000):
        wake = _deadline(core, base, v)
        if first is not None and (wake is None or first < wake):
            wake = first
        if wake is not None and wake < busy:
            wake = busy
        if i < len(edges) and (wake is None or edges[i][0] <= wake):
            t, key, level = edges[i]  # the edge comes first: the IRQ stamps it
            raw = raw | (1 << key) if level else raw & ~(1 << key)
            irq.stamp(key, _tk(base, t))
            if first is None:
                first = t
            i += 1
            continue
        if wake is None or wake > end:
            break
        v = wake
        irq.move_to(taken)
        first = None
        core.scan(raw, _tk(base, v), taken)
        busy = v + (25 if rand.below(4) == 0 else rand.below(4))
    else:
        raise AssertionError("the loop never ends")
    return core, log


def _ratings(core):
    j = core.journal
    out = []
    for seq in range(1, j.next_seq):
        assert j.read(seq)
        f = j.fields()
        out.append((f[F_SCORE], f[F_KEY_COUNT], f[F_FLAGS], f[F_UPTIME]))
    return out


def _same(mode, seed, base):
    ms = 5 if mode != "eager" else 8
    settings = {"debounce": mode, "debounce_ms": ms, "chord_ms": 20, "repeat_guard_ms": 500,
                "thanks_ms": 200}
    rand = Rand(seed)
    edges, end = _presses(rand, ms, 40)
    ref, ref_log = _reference(settings, edges, end, base)
    late, late_log = _late(settings, edges, end, base, rand)
    assert late_log == ref_log, (mode, seed, late_log, ref_log)
    assert _ratings(late) == _ratings(ref), (mode, seed)
    r = ref.rules
    s = late.rules
    assert (s.presses, s.multi_key, s.repeats) == (r.presses, r.multi_key, r.repeats)
    return len(ref_log), r.presses, r.multi_key, r.repeats


def test_late_scans_date_every_key_change_as_scanning_on_every_edge_does():
    for mode in ("defer", "eager", "asym"):
        edges, presses, chords, repeats = _same(mode, 7, 1000)
        assert edges >= 80 and presses >= 30 and chords >= 1 and repeats >= 1


def test_late_scans_across_the_ticks_wrap():
    for mode in ("defer", "asym"):
        _same(mode, 11, PERIOD - 9000)  # ticks_ms wraps to 0 in the middle


def test_a_scan_without_stamps_is_a_plain_step():
    # No edge since the last scan: the core steps at `now` (and at any deadline before it).
    core, log = _core({"debounce_ms": 5, "chord_ms": 0}, 100)
    none = Edges(5)
    core.scan(0b100, 100, none)  # an edge the IRQ did not stamp (IRQs off): dated at the scan
    core.scan(0b100, 130, none)  # the debounce deadline (105) passed meanwhile: dated there
    assert log == [(0b100, 0b100, 105)]


def test_the_pin_irq_stamps_each_key_edge_with_its_tick():
    # The device loop's hard IRQ on the fake board: the scan 30 ms later still dates the
    # press at the edge's tick (+ the debounce time), and IRQ and scan allocate nothing.
    machine.fake_reset()
    st = MemStorage()
    st.files["settings"] = bytearray(b"debounce_ms=5\nchord_ms=20\n")
    clock = [5000]
    dev = device.Device(st, _NoLink(), "pico", lambda: clock[0])
    dev.start()
    key3 = machine.Pin(_KEY_GPIO[2])
    assert key3 is dev.hw.keys[2]  # rp2: Pin(2) is Pin(2), the object the IRQ is given
    seen = [0, 0]  # debounced edges, the time of the last (nothing may allocate below)
    keys = dev.core.rules.keys

    def logged(changed, down, now):
        seen[0] += 1
        seen[1] = now
        keys(changed, down, now)

    dev.core.rules.keys = logged
    stamps = [0, 0, 0, 0]
    state = machine.disable_irq()  # heap locked: any allocation below raises MemoryError
    try:
        clock[0] = 5100
        key3.drive(0)  # pressed, bouncing for 2 ms
        clock[0] = 5101
        key3.drive(1)
        clock[0] = 5102
        key3.drive(0)
        e = dev.hw.edges
        stamps[0] = e.keys
        stamps[1] = e.multi
        stamps[2] = e.first[2]
        stamps[3] = e.last[2]
        clock[0] = 5120  # the loop was busy
        dev.scan(clock[0])
    finally:
        machine.enable_irq(state)
    assert stamps == [0b100, 0b100, 5100, 5102] and machine.irq_errors() == []
    assert seen == [1, 5107] and dev.hw.edges.keys == 0 and not dev.hw.edge
    assert dev.core.rules.deciding()  # the chord window opened at 5107: not idle


class _NoLink:
    # The USB link while no host is there (the loop only scans here).
    event = False
    rx_ready = False
    configured = False
    in_busy = False
    tx = bytearray(64)

    def arm(self):
        pass


def test_the_heap_check_runs_at_boot_then_every_10_s_while_no_key_is_busy():
    # gc.collect() keeps the CPU busy for ~25 ms: at boot, then every 10 s, each one waiting
    # until no key is down or debouncing. Ticks wrap 3 s in (the first check is not there).
    machine.fake_reset()
    st = MemStorage()
    st.files["settings"] = bytearray(b"debounce_ms=5\nchord_ms=20\n")
    base = PERIOD - 3000
    now = [0]  # virtual ms

    def ticks():  # as time.ticks_ms: a small int, nothing allocated (it runs in the IRQ)
        return ticks_add(base, now[0])

    dev = device.Device(st, _NoLink(), "pico", ticks)
    checks = []
    dev.hw.check_memory = lambda: checks.append(now[0]) or False
    dev.start()
    key1 = machine.Pin(_KEY_GPIO[0])
    for at, level in ((29000, 0), (32000, 1), (45000, -1)):  # key 1 held over the 30 s check
        for _ in range(1000):
            t = dev.timeout(ticks())
            if now[0] + t > at:
                break
            now[0] += t
            dev.service()
        now[0] = at
        if level >= 0:
            key1.drive(level)
    assert checks == [0, 10000, 20000, 32005, 42005], checks
    assert dev.core.journal.next_seq == 2 and machine.irq_errors() == []  # the press was rated


def test_a_key_held_down_delays_the_heap_check_one_interval_at_most():
    machine.fake_reset()
    st = MemStorage()
    st.files["settings"] = bytearray(b"debounce_ms=5\nchord_ms=20\nstuck_ms=600000\n")
    now = [1000]
    dev = device.Device(st, _NoLink(), "pico", lambda: now[0])
    checks = []
    dev.hw.check_memory = lambda: checks.append(now[0]) or False
    dev.start()
    machine.Pin(_KEY_GPIO[0]).drive(0)  # held for good
    for _ in range(1000):
        now[0] += dev.timeout(now[0])
        if now[0] > 32000:
            break
        dev.service()
    # due at 11000, waited for the key; the first pass 10 s later checks anyway (the loop wakes
    # every 2 s to feed the watchdog), and the next is due 10 s after that
    assert len(checks) == 2 and checks[0] == 1000 and 21000 <= checks[1] <= 23000, checks
    assert machine.irq_errors() == []
