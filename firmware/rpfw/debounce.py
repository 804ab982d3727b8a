# Per-key, time-based key debouncing with the semantics of QMK's per-key
# algorithms (sym_defer_pk, sym_eager_pk, asym_eager_defer_pk); independent
# implementation, written for event-driven scanning.
#
# Each key has at most one timer, kept as an absolute ticks_ms deadline.
# One update() is one scan, in this order for every key:
#   1. expiry: a timer whose deadline has arrived (now - deadline >= 0) stops;
#      defer: state := raw;  eager: nothing;
#      asym: press lock-out: nothing, release timer: state := raw.
#   2. start/cancel, against the state left by step 1:
#      defer: raw != state and no timer -> start one (it is never restarted
#             while raw stays different); raw == state -> cancel the timer.
#      eager: raw != state and no timer -> flip state now, lock the key.
#      asym:  raw != state and no timer -> pressing: flip state now and lock;
#             releasing: start a release timer. raw == state -> cancel a
#             release timer (a press lock-out always runs to its end).
# Timers start at the scan's `now` and last `ms`. Because a deadline is
# absolute, calling update() only on pin edges and at next_deadline() gives
# the same debounced edges as scanning every millisecond (QMK counts elapsed
# time per scan; both expire a timer at the first scan >= start + ms). A late
# call behaves like QMK's delayed scan: the expiry happens at that call (it
# must come within 2**29 ms of the deadline, as for any ticks_diff).
#
# After every update() each key whose raw differs from its state has a timer
# running, so a key is never left waiting for a scan nobody schedules.

from array import array

from micropython import const

from rpfw.ticks import ticks_add, ticks_diff

MODE_DEFER = const(0)  # sym_defer_pk: report once raw has been stable for ms
MODE_EAGER = const(1)  # sym_eager_pk: report at once, then ignore the key for ms
MODE_ASYM = const(2)  # asym_eager_defer_pk: eager press, deferred release
MODE_NAMES = ("defer", "eager", "asym")

# Cheap tactile and arcade buttons mostly settle within 5-10 ms and worn ones
# bounce longer; 20 ms still sits far below a human press or double press.
DEFAULT_MS = const(20)
_MAX_MS = const(255)  # QMK's limit (8-bit counters); keeps deadlines near
_MAX_KEYS = const(16)  # keeps bitmasks small ints on every port


class Debouncer:
    def __init__(self, nkeys, mode=MODE_DEFER, ms=DEFAULT_MS):
        if not 0 < nkeys <= _MAX_KEYS:
            raise ValueError("nkeys")
        self.nkeys = nkeys
        self._all = (1 << nkeys) - 1
        self._deadline = array("l", [0] * nkeys)  # valid where _busy has the bit
        self.mode = MODE_DEFER
        self.ms = DEFAULT_MS
        self.set_mode(mode, ms)
        self.reset()

    # Debounced state := raw (the pins are taken as settled), no timers. `now`
    # is accepted for symmetry with update(); no timer depends on it.
    def reset(self, raw=0, now=0):
        self.state = raw & self._all
        self._busy = 0  # keys with a running timer
        self._kind = 0  # per timer: 1 = started by a press, 0 = by a release

    # Change algorithm and/or time. The debounced state is kept; running timers
    # keep their deadlines and are handled by the new mode when they expire (or
    # cancelled by its rules), so the scan at a deadline still comes. ms = 0
    # disables debouncing: each update() copies raw and drops all timers.
    def set_mode(self, mode, ms=DEFAULT_MS):
        if not 0 <= mode <= MODE_ASYM:
            raise ValueError("mode")
        if not 0 <= ms <= _MAX_MS:
            raise ValueError("ms")
        self.mode = mode
        self.ms = ms

    # One scan: raw = pressed-key bitmask read now, now = ticks_ms.
    # Returns the bitmask of keys whose debounced state changed.
    def update(self, raw, now):
        raw &= self._all
        st = self.state
        ms = self.ms
        if not ms:
            self.state = raw
            self._busy = 0
            return raw ^ st
        old = st
        mode = self.mode
        busy = self._busy
        kind = self._kind
        dl = self._deadline
        todo = busy | (raw ^ st)
        bit = 1
        i = 0
        while bit <= todo:
            if todo & bit:
                # a defer timer, or a release timer of asym, transfers raw
                defer = mode == MODE_DEFER or (mode == MODE_ASYM and not kind & bit)
                if busy & bit and ticks_diff(now, dl[i]) >= 0:
                    busy ^= bit
                    if defer:
                        st = (st & ~bit) | (raw & bit)
                if (raw ^ st) & bit:
                    if not busy & bit:
                        busy |= bit
                        dl[i] = ticks_add(now, ms)
                        kind = (kind & ~bit) | (raw & bit)
                        if mode == MODE_EAGER or (mode == MODE_ASYM and raw & bit):
                            st ^= bit
                elif busy & bit and defer:
                    busy ^= bit
            bit <<= 1
            i += 1
        self.state = st
        self._busy = busy
        self._kind = kind
        return st ^ old

    # Earliest pending deadline (a ticks_ms value), or -1 when no timer runs.
    # Every running timer counts, even one whose expiry will change nothing:
    # the scan at that moment is what clears it.
    def next_deadline(self):
        busy = self._busy
        dl = self._deadline
        best = -1
        i = 0
        while busy:
            if busy & 1 and (best < 0 or ticks_diff(dl[i], best) < 0):
                best = dl[i]
            busy >>= 1
            i += 1
        return best
