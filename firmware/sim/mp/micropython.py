# CPython stand-in for MicroPython's `micropython` module, so the firmware runs unchanged on
# CPython (the simulator and host-side tests). Only what the firmware and its tests use.
#
# heap_lock()/heap_unlock(): on MicroPython any allocation with the heap locked raises
# MemoryError at once (py/gc.c gc_alloc: "memory allocation failed, heap is locked"). CPython
# allocates for nearly everything (ints above 256, frames), so this stand-in checks what it can:
# memory still held at heap_unlock() that was allocated while the heap was locked (tracemalloc),
# outside the Python library itself, raises MemoryError there. Blocks of 32 bytes or less are
# let through: CPython boxes every int above 256 (tick values, deadlines), which MicroPython keeps
# as small ints without allocating. Temporaries freed before the unlock go unnoticed here too;
# the MicroPython VM catches those. Under a trace function (sys.settrace: tests that inject events
# at any bytecode), CPython gives a code object its line table the first time the tracer sees it
# run, kept for good and counted at the function's `def` line: interpreter bookkeeping,
# not the firmware's, so it is let through too.
import linecache
import os
import sys
import tracemalloc

_locks = []
_LIBRARY = tuple(
    {q for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) for q in (p, os.path.realpath(p))}
)
_HERE = (__file__, os.path.realpath(__file__))


def const(value):
    return value


def _ours(filename):
    # (no allocation here that outlives the call: it runs inside outer locks)
    return not (filename in _HERE or filename.startswith(_LIBRARY) or filename.startswith("<"))


def _trace_cache(frame):
    # A block counted at a `def` line while a trace function runs (see above).
    if sys.gettrace() is None:
        return False
    return linecache.getline(frame.filename, frame.lineno).lstrip().startswith("def ")


def heap_lock():
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(1)
    _locks.append((tracemalloc.take_snapshot(), started))
    return len(_locks) - 1


def heap_unlock():
    if not _locks:
        return 0
    before, started = _locks.pop()
    after = tracemalloc.take_snapshot()
    if started:
        tracemalloc.stop()
    for stat in after.compare_to(before, "lineno"):
        frame = stat.traceback[0]
        n = stat.count_diff
        if (stat.size_diff > 0 and n > 0 and stat.size_diff > 32 * n and _ours(frame.filename)
                and not _trace_cache(frame)):
            raise MemoryError(
                "memory allocation failed, heap is locked (%s:%d, %d bytes)"
                % (frame.filename, frame.lineno, stat.size_diff)
            )
    return len(_locks)


def heap_locked():
    return len(_locks)


def kbd_intr(chr):
    pass


def schedule(func, arg):
    func(arg)
