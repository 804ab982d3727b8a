# Rating rules: which debounced key presses become ratings. Sans-IO: debounced key edges and
# host commands in, ratings out through `sink.rate(...)`, deadlines reported by next_deadline().
#
# One prompt, one rating: the host arms a prompt; the first valid press answers it; then idle.
# A press is decided `chord_ms` after its key went down (so several keys pressed together can be
# told apart from one), and is then, in this order:
#   - several keys: another non-stuck key went down at the same time -> counted (multi_key)
#   - a repeat: within `repeat_guard_ms` of the last rating (or during the thank-you)
#               -> counted (repeats), never a rating
#   - prompted: a rating answering the prompt (flags: no_staff, stuck_key when they apply)
#   - unprompted: counted, and a rating flagged `unprompted` unless settings say "ignore"
# A key held longer than `stuck_ms` is reported stuck and ignored until it is released; a key
# already down at boot is ignored until released. Times are ticks_ms values (ticks.py).
from micropython import const
from rpfw.ticks import earliest, ticks_add, ticks_diff
from rpfw.codec import (
    DEVICE_STATE_IDLE,
    DEVICE_STATE_PROMPTED,
    DEVICE_STATE_THANKS,
    RATING_FLAGS_NO_STAFF,
    RATING_FLAGS_STUCK_KEY,
    RATING_FLAGS_UNPROMPTED,
)

_NONE = const(-1)
_MAX_KEYS = const(5)
_MAX_TIMEOUT = const(0x1FFFFFFF)


class Rules:
    def __init__(self, settings, sink):
        self.settings = settings
        self.sink = sink  # sink.rate(key, score, flags, prompt_id, staff, at) -> True if journalled
        self.state = DEVICE_STATE_IDLE
        self.prompt_id = 0
        self.prompt_staff = b""
        self.prompt_until = _NONE
        self.staff = b""  # logged-in staff id
        self.staff_name = b""
        self.thanks_until = _NONE
        self.guard_until = _NONE
        self.down = 0  # debounced keys down
        self.ignored = 0  # keys down at boot or stuck: ignored until released
        self.stuck = 0  # keys reported stuck
        self._stuck_at = [_NONE] * _MAX_KEYS
        self._pending = _NONE  # key waiting for its chord window to end
        self._pending_at = 0
        self._pending_mask = 0
        # counters (reported in status)
        self.presses = 0
        self.unprompted = 0
        self.repeats = 0
        self.multi_key = 0
        self.refused = 0  # ratings the journal could not take

    def boot(self, down, now):
        # Keys already down at boot are not presses.
        self.down = down
        self.ignored = down
        for k in range(_MAX_KEYS):
            if down & (1 << k):
                self._stuck_at[k] = ticks_add(now, self.settings.get("stuck_ms"))

    # -- host commands --------------------------------------------------------------------------
    def arm(self, prompt_id, staff, timeout_ms, now):
        self.prompt_id = prompt_id
        self.prompt_staff = staff
        if timeout_ms > _MAX_TIMEOUT:
            timeout_ms = _MAX_TIMEOUT  # ticks arithmetic reaches 2**29 ms (6.2 days)
        self.prompt_until = _NONE if timeout_ms == 0 else ticks_add(now, timeout_ms)
        self.guard_until = _NONE  # a new prompt is a new customer: no repeat guard
        if self.state != DEVICE_STATE_THANKS:
            self.state = DEVICE_STATE_PROMPTED

    def cancel(self, prompt_id):
        if self.prompt_id == 0 or (prompt_id != 0 and prompt_id != self.prompt_id):
            return False
        self._disarm()
        return True

    def _disarm(self):
        self.prompt_id = 0
        self.prompt_staff = b""
        self.prompt_until = _NONE
        if self.state == DEVICE_STATE_PROMPTED:
            self.state = DEVICE_STATE_IDLE

    def login(self, staff, name):
        self.staff = staff
        self.staff_name = name

    def logout(self, staff):
        if staff and staff != self.staff:
            return False
        self.staff = b""
        self.staff_name = b""
        return True

    # -- keys -----------------------------------------------------------------------------------
    def keys(self, changed, down, now):
        # Debounced edges of one scan: `changed` keys now have the state given by `down`.
        self.down = down
        stuck_ms = self.settings.get("stuck_ms")
        for k in range(_MAX_KEYS):
            bit = 1 << k
            if not changed & bit:
                continue
            if down & bit:
                self._stuck_at[k] = ticks_add(now, stuck_ms)
                if self._pending == _NONE:
                    self._pending = k
                    self._pending_at = now
                    self._pending_mask = down & ~self.ignored
                else:
                    self._pending_mask |= bit
            else:
                self._stuck_at[k] = _NONE
                self.ignored &= ~bit
                self.stuck &= ~bit
        if self._pending != _NONE and self.settings.get("chord_ms") == 0:
            self._decide(now)

    def _decide(self, now):
        k = self._pending
        at = self._pending_at
        mask = self._pending_mask
        self._pending = _NONE
        if self.ignored & (1 << k):
            return
        self.presses += 1
        if mask & (mask - 1):
            self.multi_key += 1
            return
        if self.state == DEVICE_STATE_THANKS or (
            self.guard_until != _NONE and ticks_diff(self.guard_until, at) > 0
        ):
            self.repeats += 1
            return
        flags = 0
        if self.stuck:
            flags |= RATING_FLAGS_STUCK_KEY
        if self.state == DEVICE_STATE_PROMPTED:
            staff = self.prompt_staff or self.staff
            prompt_id = self.prompt_id
        else:
            self.unprompted += 1
            if self.settings.get("unprompted") == "ignore":
                return
            flags |= RATING_FLAGS_UNPROMPTED
            staff = self.staff
            prompt_id = 0
        if not staff:
            flags |= RATING_FLAGS_NO_STAFF
        if not self.sink.rate(k, self.settings.score_of(k), flags, prompt_id, staff, at):
            self.refused += 1
            return
        self._disarm()
        self.state = DEVICE_STATE_THANKS
        self.thanks_until = ticks_add(now, self.settings.get("thanks_ms"))
        self.guard_until = ticks_add(at, self.settings.get("repeat_guard_ms"))

    def deciding(self):
        # A press is waiting for its chord window to end.
        return self._pending != _NONE

    # -- time -----------------------------------------------------------------------------------
    def next_deadline(self, now):
        d = _NONE
        if self._pending != _NONE:
            d = ticks_add(self._pending_at, self.settings.get("chord_ms"))
        d = earliest(d, self.prompt_until, now)
        d = earliest(d, self.thanks_until, now)
        for k in range(_MAX_KEYS):
            if self._stuck_at[k] != _NONE and not self.stuck & (1 << k):
                d = earliest(d, self._stuck_at[k], now)
        return d

    def poll(self, now):
        # Everything due at `now`. Returns True if the state or a fault changed.
        before = self.state
        stuck_before = self.stuck
        if self._pending != _NONE and ticks_diff(
            now, ticks_add(self._pending_at, self.settings.get("chord_ms"))
        ) >= 0:
            self._decide(now)
        if self.thanks_until != _NONE and ticks_diff(now, self.thanks_until) >= 0:
            self.thanks_until = _NONE
            self.state = DEVICE_STATE_PROMPTED if self.prompt_id else DEVICE_STATE_IDLE
        if self.prompt_until != _NONE and ticks_diff(now, self.prompt_until) >= 0:
            self._disarm()
        if self.guard_until != _NONE and ticks_diff(now, self.guard_until) >= 0:
            self.guard_until = _NONE
        for k in range(_MAX_KEYS):
            t = self._stuck_at[k]
            if t != _NONE and ticks_diff(now, t) >= 0 and self.down & (1 << k):
                self.stuck |= 1 << k
                self.ignored |= 1 << k
                self._stuck_at[k] = _NONE
        return self.state != before or self.stuck != stuck_before
