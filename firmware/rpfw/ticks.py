# Wrapping millisecond tick arithmetic, same semantics as MicroPython's
# time.ticks_add / time.ticks_diff (ticks_ms values live in [0, PERIOD)).
#
# Every intermediate value stays inside the 31-bit small-int range of 32-bit
# ports ([-2**30, 2**30)), so these never allocate. PERIOD itself (2**30) is
# not a small int there: it is exported for callers, never used below.

from micropython import const

PERIOD = const(1 << 30)
_MASK = const(0x3FFFFFFF)  # PERIOD - 1
_HALF = const(0x20000000)  # PERIOD // 2


# t + delta, wrapped into [0, PERIOD). t in [0, PERIOD), |delta| < PERIOD/2.
def ticks_add(t, delta):
    if delta < 0:
        return (t + delta) & _MASK
    # t - PERIOD is in [-PERIOD, 0), so adding a non-negative delta cannot overflow
    return (t - _MASK - 1 + delta) & _MASK


# Signed a - b in [-PERIOD/2, PERIOD/2), for a, b in [0, PERIOD).
def ticks_diff(a, b):
    d = (a - b) & _MASK
    if d >= _HALF:
        d = d - _MASK - 1
    return d


# The earlier of two deadlines seen from `now` (-1 = no deadline).
def earliest(a, b, now):
    if a == -1:
        return b
    if b == -1:
        return a
    return a if ticks_diff(a, now) <= ticks_diff(b, now) else b
