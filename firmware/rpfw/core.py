# The keypad's sans-IO core: pins, host bytes and time in; LED/buzzer calls, report bytes and
# the next deadline out. No USB, sleeps or machine access here, so the same core runs on the
# keypad, on the MicroPython VM in tests and on CPython in the simulator.
#
# The device loop:  core.boot(raw_keys, now)
#                   repeat: core.step(raw_keys, now)       on a pin edge or at next_deadline()
#                           (on the keypad core.scan(raw_keys, now, edges): the same, with the
#                           pin IRQ's stamps of the edges since, for a scan that comes late)
#                           core.receive(data, now)        on bytes from the host
#                           core.pull(report) -> bool      to fill the next 64-byte IN report
from micropython import const
from rpfw import codec, commands
from rpfw.codec import MAX_FRAME
from rpfw.debounce import MODE_NAMES, Debouncer
from rpfw.journal import F_BOOT, F_FLAGS, F_KEY_COUNT, F_PROMPT, F_SCORE, F_UPTIME, Journal
from rpfw.link import Link
from rpfw.rules import Rules
from rpfw.settings import Settings
from rpfw.ticks import earliest, ticks_add, ticks_diff

VERSION = "0.1.0"
_NONE = const(-1)
_ACK_SYNC_MS = const(2000)  # an ACK not yet in flash is written when no rating came this long
_BLINK_MS = const(500)
_WALK_MS = const(300)  # self-test LED walk: each LED, then the status LED, this long
_HALF = const(1 << 29)
_CATCH_UP = const(32)  # deadlines one late scan replays at their own times (any more: at the scan)


class Core:
    def __init__(self, hw, storage, board="pico", version=VERSION):
        # hw: leds(mask), status_led(on), buzz(ms), self_test() -> "" or what failed,
        #     watchdog_reset (bool), maintenance (bool)
        self.hw = hw
        self.board = board
        self.version = version
        self.settings = Settings(storage)
        self.settings.load()
        s = self.settings
        self.nkeys = s.get("keys")
        self.journal = Journal(storage, s.get("capacity"))
        self.debouncer = Debouncer(self.nkeys, MODE_NAMES.index(s.get("debounce")),
                                   s.get("debounce_ms"))
        self.rules = Rules(s, self)
        # ms since boot as two small ints (no big-int allocation on the scan path):
        # uptime = _up_hi * 2**29 + _up_lo; ticks_ms itself wraps every 2**30 ms
        self._up_hi = 0
        self._up_lo = 0
        self._last = 0
        self.synced = False
        self._sync_epoch = 0
        self._sync_uptime = 0
        # link
        self.session = False  # a host said host_hello on the current link
        self.key_events = False
        self.reboot_mode = _NONE  # set by a reboot command: the device loop resets
        self._seq = 0
        self._frame = bytearray(MAX_FRAME + 8)
        self._frame_mv = memoryview(self._frame)
        self.link = Link(self._frame_in)  # transmit ring, receive framing, send window
        self._status_at = _NONE
        self._ack_sync_at = _NONE
        self._walk = -1  # self-test LED walk: the LED lit (nkeys = the status LED), -1 = none
        self._walk_at = _NONE
        self._status_due = False
        self._raw = 0
        self._bounces = bytearray(5)
        self._leds = -1
        self._status_led = -1
        self._blink_at = _NONE
        self._blink_on = False
        self._rated_key = 0
        self.storage_error = False

    # -- boot and time ------------------------------------------------------------------------
    def boot(self, raw, now):
        self._last = now
        self.journal.open()
        self.debouncer.reset(raw, now)
        self._raw = raw
        self.rules.boot(raw, now)
        self._update_outputs(now)

    def _advance(self, now):
        self._up_lo += ticks_diff(now, self._last)
        self._last = now
        if self._up_lo >= _HALF:
            self._up_hi += 1
            self._up_lo -= _HALF

    @property
    def uptime(self):
        return self._up_hi * _HALF + self._up_lo

    def _uptime32(self, extra=0):
        # Uptime (plus `extra` ms) as the protocol's u32. A small int, so no allocation, for
        # the first 2**29 ms (6.2 days) after boot; then a big int, masked to 32 bits.
        if self._up_hi == 0:
            return self._up_lo + extra
        return (self.uptime + extra) & 0xFFFFFFFF

    def epoch_at(self, uptime):
        if not self.synced:
            return None
        return self._sync_epoch + (uptime - self._sync_uptime)

    def next_deadline(self, now):
        d = self.debouncer.next_deadline()
        d = earliest(d, self.rules.next_deadline(now), now)
        d = earliest(d, self.link.ack_at, now)
        d = earliest(d, self._ack_sync_at, now)
        d = earliest(d, self._walk_at, now)
        d = earliest(d, self._status_at, now)
        d = earliest(d, self._blink_at, now)
        return d

    # -- inputs -------------------------------------------------------------------------------
    def step(self, raw, now):
        # One scan: read pins (raw bitmask), debounce, then everything due at `now`.
        self._advance(now)
        diff = raw ^ self._raw
        if diff:
            b = self._bounces
            for k in range(self.nkeys):
                if diff & (1 << k) and b[k] < 255:
                    b[k] += 1
            self._raw = raw
        changed = self.debouncer.update(raw, now)
        if changed:
            down = self.debouncer.state
            if self.key_events and self.session:
                for k in range(self.nkeys):
                    if changed & (1 << k):
                        self._push_key_event(k, down & (1 << k), now)
            for k in range(self.nkeys):
                if changed & (1 << k):
                    self._bounces[k] = 0
            stuck = self.rules.stuck
            self.rules.keys(changed, down, now)
            if self.rules.stuck != stuck:
                self._status_due = True
        self._poll(now)

    def scan(self, raw, now, edges):
        # One scan of the device loop, which may come late (a heap collection or a flash write
        # kept the CPU busy): `raw` read now, `edges` what the pin IRQ stamped since the last
        # scan (rpfw.edges). Replays what happened since the last scan at the ticks it happened,
        # so it ends as step() would, called on every edge and at every deadline (as the
        # simulator does): the deadlines with the pins as the last scan read them; each key's
        # first edge; its last edge (a key with more edges bounced in between: if it already
        # reads its final level there, it left it just before); then `raw` at `now`. Exact as
        # long as a key's bounce is shorter than the debounce time. Allocation-free unless a
        # rating or a frame to the host comes out of it.
        cur = self._raw
        pend_last = edges.multi
        # a key with one stamp that reads as the last scan read it: its pin went there and back
        # within one interrupt, or its edge came just before the last scan read it: no change
        pend_first = edges.keys & (pend_last | (raw ^ cur))
        for _ in range(2 * self.nkeys):
            best = -1
            at = now
            for k in range(self.nkeys):
                bit = 1 << k
                if pend_first & bit:
                    t = edges.first[k]
                elif pend_last & bit:
                    t = edges.last[k]
                else:
                    continue
                if best < 0 or ticks_diff(t, at) < 0:
                    best = k
                    at = t
            if best < 0:
                break
            # a stamp is never before the last step nor after this scan (an edge that came
            # while the pass ran, before the scan took the stamps, is dated at the scan)
            if ticks_diff(at, self._last) < 0:
                at = self._last
            elif ticks_diff(at, now) > 0:
                at = now
            bit = 1 << best
            self._catch_up(cur, at)
            if pend_first & bit:
                pend_first ^= bit
                cur ^= bit
            else:
                pend_last ^= bit
                if not (cur ^ raw) & bit:
                    self.step(cur ^ bit, at)
                else:
                    cur ^= bit
            self.step(cur, at)
        self._catch_up(cur, now)
        self.step(raw, now)

    def _catch_up(self, raw, t):
        # Steps at the deadlines that fell due after the last step and before `t`, the pins
        # reading `raw` meanwhile. Each step moves past its deadline, so this ends; a deadline
        # already behind (one nothing clears) stops it, and step(t) handles what is left.
        for _ in range(_CATCH_UP):
            last = self._last
            d = self.next_deadline(last)
            if d == _NONE or ticks_diff(d, last) <= 0 or ticks_diff(d, t) >= 0:
                return
            self.step(raw, d)

    def keys_idle(self):
        # No key down or debouncing and no press waiting to be decided: a pause of the loop
        # now delays no debounced edge and no decision (the device loop's heap check waits
        # for this).
        return (not (self._raw or self.debouncer.state) and self.debouncer.next_deadline() == _NONE
                and not self.rules.deciding())

    def _poll(self, now):
        if self.rules.poll(now):
            self._status_due = True
        self.link.poll(now, self.journal.ack_seq)
        if self._walk_at != _NONE and ticks_diff(now, self._walk_at) >= 0:
            self._walk += 1
            if self._walk > self.nkeys:
                self._walk = -1
                self._walk_at = _NONE
            else:
                self._walk_at = ticks_add(now, _WALK_MS)
        if self._ack_sync_at != _NONE and ticks_diff(now, self._ack_sync_at) >= 0:
            self._ack_sync_at = _NONE
            self.sync_ack()
        if self._status_at != _NONE and ticks_diff(now, self._status_at) >= 0:
            self._status_due = True
        if self.session:
            if self._status_due:
                self._push_status(now)
            self._send_ratings(now)
        self._update_outputs(now)

    def connect(self, now):
        # The link came up (USB configured): tell the host who we are.
        self._advance(now)
        self._push_hello()

    def disconnect(self, now):
        # The link went down (unplugged, suspended, host gone): stop sending until host_hello.
        self._advance(now)
        self.session = False
        self.link.down()
        self._status_at = _NONE
        self._update_outputs(now)

    def receive(self, data, now):
        # Stream bytes from the host (the payload of OUT reports; zero padding is harmless).
        self._advance(now)
        self.link.receive(data)
        self._poll(now)

    # -- outputs ------------------------------------------------------------------------------
    def pull(self, report):
        # Fill one 64-byte IN report with stream bytes (zero-padded); False if nothing to send.
        return self.link.pull(report)

    def pending(self):
        return self.link.pending()

    def _push(self, n):
        # Queue the frame in self._frame[:n]; False (frame dropped) if the queue is full.
        # Only status, key events and replies can be dropped: ratings stay in the journal and
        # are sent again after the ACK timeout.
        return self.link.push(self._frame_mv, n)

    def led_walk(self, now):
        # Self-test: light each key's LED in turn, then the status LED (so a hardware engineer
        # sees every LED and its wiring order).
        self._walk = 0
        self._walk_at = ticks_add(now, _WALK_MS)
        self._update_outputs(now)

    def sync_ack(self):
        # Put an ACK the journal holds in RAM only into flash (a quiet moment, a planned reset).
        try:
            self.journal.sync()
        except OSError:
            self.storage_error = True
            self._status_due = True

    def ack_moved(self, now):
        # An ACK moved the journal: write it at the next rating, or in a quiet moment.
        self.link.acked()
        if self.journal.ack_dirty:
            self._ack_sync_at = ticks_add(now, _ACK_SYNC_MS)

    def _next_seq(self):
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def faults(self):
        f = 0
        if self.rules.stuck:
            f |= codec.FAULTS_STUCK_KEY
        if self.journal.full():
            f |= codec.FAULTS_JOURNAL_FULL
        if self.journal.corrupt or self.storage_error:
            f |= codec.FAULTS_JOURNAL_ERROR
        if not self.synced:
            f |= codec.FAULTS_TIME_UNSYNCED
        if self.settings.damaged:
            f |= codec.FAULTS_CONFIG_ERROR
        if self.hw.watchdog_reset:
            f |= codec.FAULTS_WATCHDOG_RESET
        if getattr(self.hw, "low_memory", False):
            f |= codec.FAULTS_LOW_MEMORY
        return f

    def fault_changed(self):
        # Something the core does not see itself changed a fault (the device loop's checks).
        self._status_due = True

    def state(self):
        if self.hw.maintenance:
            return codec.DEVICE_STATE_MAINTENANCE
        if self.journal.full() or self.storage_error:
            return codec.DEVICE_STATE_FAULT
        return self.rules.state

    def serial(self):
        # The provisioned serial, else the chip's unique id (never empty on a real keypad:
        # hosts file ratings under it).
        return self.settings.get("serial") or getattr(self.hw, "unique_id", "")

    def _push_hello(self, hflags=0):
        # hflags HF_RESPONSE: this hello answers a host_hello. A hello without it (link up,
        # after a reboot) asks the host to say host_hello, which opens the session.
        j = self.journal
        caps = (codec.CAPABILITIES_STATUS_LED | codec.CAPABILITIES_KEY_EVENTS
                | codec.CAPABILITIES_SELF_TEST | codec.CAPABILITIES_MAINTENANCE
                | codec.CAPABILITIES_TIME_SYNC)
        if self.settings.get("buzzer"):
            caps |= codec.CAPABILITIES_BUZZER
        n = codec.hello_into(
            self._frame, self._next_seq(), hflags, codec.PROTOCOL_VERSION,
            codec.SCHEMA_FINGERPRINT,
            self.nkeys, caps, j.capacity, j.used(), j.boot_id, self._uptime32(),
            self.serial().encode(), self.version.encode(), self.board.encode(),
            j.ack_seq,
        )
        self._push(n)

    def _push_status(self, now):
        r = self.rules
        j = self.journal
        n = codec.status_into(
            self._frame, self._next_seq(), 0, self.state(), self.faults(),
            self._uptime32(), j.used(), j.unacked(), r.presses, r.unprompted,
            r.repeats, r.multi_key, r.stuck, r.prompt_id, r.prompt_staff or r.staff, j.ack_seq,
        )
        if self._push(n):
            self._status_due = False
            self._status_at = ticks_add(now, self.settings.get("status_ms"))

    def _push_key_event(self, k, down, now):
        b = self._bounces[k]
        n = codec.key_event_into(
            self._frame, self._next_seq(), 0, k + 1, 1 if down else 0,
            self._uptime32(ticks_diff(now, self._last)), b - 1 if b else 0,
        )
        self._push(n)

    def _reply(self, request_seq, code, detail=b""):
        n = codec.result_into(self._frame, self._next_seq(), codec.HF_RESPONSE, request_seq,
                              code, detail[:48])
        self._push(n)

    def log(self, level, text):
        n = codec.log_into(self._frame, self._next_seq(), 0, level, self._uptime32(),
                           text[:160])
        self._push(n)

    # -- ratings ------------------------------------------------------------------------------
    def rate(self, key, score, flags, prompt_id, staff, at):
        # Called by the rules: journal one rating. True once it is durable (then thank).
        uptime = self.uptime + ticks_diff(at, self._last)
        try:
            seq = self.journal.append(score, self.nkeys, flags, prompt_id, staff,
                                      uptime & 0xFFFFFFFF,
                                      self.epoch_at(uptime))
        except OSError:
            self.storage_error = True
            seq = 0
        self._status_due = True
        if not seq:
            return False
        self._rated_key = key
        self._ack_sync_at = _NONE  # the rating's slot holds the ACK
        if self.settings.get("buzzer"):
            self.hw.buzz(80)
        return True

    def _send_ratings(self, now):
        j = self.journal
        link = self.link
        while True:
            seq = link.may_send(j.next_seq, j.ack_seq)
            if not seq:
                break
            hflags = codec.HF_RETRANSMIT if link.is_retransmit(seq) else 0
            if j.read(seq):
                f = j.fields()
                epoch = j.epoch()
                if epoch is None and f[F_BOOT] == j.boot_id and self.synced:
                    # journalled before this boot's first time sync: this boot's clock now
                    # dates it exactly (uptime recorded as u32: unwrap it against now)
                    up = self.uptime
                    epoch = self.epoch_at(up - ((up - f[F_UPTIME]) & 0xFFFFFFFF))
                n = codec.rating_into(
                    self._frame, self._next_seq(), hflags, seq, f[F_BOOT],
                    f[F_UPTIME], epoch, f[F_SCORE], f[F_KEY_COUNT],
                    f[F_PROMPT], f[F_FLAGS], j.staff(),
                )
            else:
                # damaged in flash: a flagged placeholder, so the host sees the gap (never
                # silently dropped) and the ACKs can move past it
                n = codec.rating_into(self._frame, self._next_seq(), hflags, seq, 0, 0, None,
                                      0, self.nkeys, 0, codec.RATING_FLAGS_DAMAGED, b"")
            if not self._push(n):
                break
            link.sent(seq)
        link.arm(now, j.ack_seq, self.settings.get("ack_timeout_ms"))

    # -- host commands (rpfw.commands) --------------------------------------------------------
    def _frame_in(self, rx, n):
        commands.frame_in(self, rx, n, self._last)

    def _apply_settings(self):
        s = self.settings
        self.debouncer.set_mode(MODE_NAMES.index(s.get("debounce")), s.get("debounce_ms"))
        self.journal.set_capacity(s.get("capacity"))

    def _update_outputs(self, now):
        state = self.rules.state
        if state == codec.DEVICE_STATE_PROMPTED:
            leds = (1 << self.nkeys) - 1
        elif state == codec.DEVICE_STATE_THANKS:
            leds = 1 << self._rated_key
        else:
            leds = 0
        walk = self._walk
        if walk >= 0:
            leds = 1 << walk if walk < self.nkeys else 0
        if leds != self._leds:
            self._leds = leds
            self.hw.leds(leds)
        faults = self.faults() & ~codec.FAULTS_TIME_UNSYNCED
        if faults:
            # blink the status LED while something is wrong
            if self._blink_at == _NONE or ticks_diff(now, self._blink_at) >= 0:
                self._blink_on = not self._blink_on
                self._blink_at = ticks_add(now, _BLINK_MS)
            on = self._blink_on
        else:
            self._blink_at = _NONE
            on = self.session
        if walk >= 0:
            on = walk == self.nkeys
        if on != self._status_led:
            self._status_led = on
            self.hw.status_led(on)
