# No allocation on the scan path, proven on MicroPython with the heap locked (on CPython the
# `micropython` stand-in refuses memory allocated and kept while locked; see sim/mp).
# The heap budget is measured from the host side: tests/test_firmware_memory.py.
import micropython
from sim.keypad import Bench


def test_scan_path_allocates_nothing():
    # Contact bounce, debounced edges, deadline wake-ups: with the heap locked, any allocation
    # raises MemoryError on MicroPython.
    b = Bench(settings={"debounce_ms": 20, "chord_ms": 60}, now=1000)
    b.hello()
    b.send("time_sync", {"epoch_ms": 1_800_000_000_000})
    core = b.core
    t = b.now
    core.step(0, t)
    micropython.heap_lock()
    try:
        for i in range(12):  # a bouncing key: raw edges every ms, never stable long enough
            core.step(1 if i % 2 == 0 else 0, t + i)
        core.step(0, t + 40)  # the pending timer ends with the key released: no edge
        core.step(0b100, t + 50)  # a clean press: debounced edge at t + 70
        d = core.next_deadline(t + 50)
        core.step(0b100, d)
        core.next_deadline(d)
        core.step(0, d + 10)  # released before the chord window ends: no decision yet
    finally:
        micropython.heap_unlock()
    assert core.rules.presses == 0


def test_the_heap_lock_catches_an_allocation():
    # The lock is real on both engines: memory allocated and kept while locked is refused
    # (MicroPython: at once; the CPython stand-in: at the unlock).
    keep = []
    caught = False
    micropython.heap_lock()
    try:
        keep.append(bytearray(200))
    except MemoryError:
        caught = True
    finally:
        try:
            micropython.heap_unlock()
        except MemoryError:
            caught = True
    assert caught
