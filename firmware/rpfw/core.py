# The keypad's sans-IO core: pins, host bytes and time in; LED/buzzer calls, report bytes and
# the next deadline out. No USB, sleeps or machine access here, so the same core runs on the
# keypad, on the MicroPython VM in tests and on CPython in the simulator.
#
# The device loop:  core.boot(raw_keys, now)
#                   repeat: core.step(raw_keys, now)       on a pin edge or at next_deadline()
#                           core.receive(data, now)        on bytes from the host
#                           core.pull(report) -> bool      to fill the next 64-byte IN report
from micropython import const
from rpfw import codec
from rpfw.codec import MAX_FRAME
from rpfw.debounce import MODE_NAMES, Debouncer
from rpfw.journal import F_BOOT, F_FLAGS, F_KEY_COUNT, F_PROMPT, F_SCORE, F_UPTIME, Journal
from rpfw.rules import Rules
from rpfw.settings import NAMES, Settings
from rpfw.ticks import earliest, ticks_add, ticks_diff

VERSION = "0.1.0"
_NONE = const(-1)
_REPORT = const(64)
_TX_SIZE = const(2048)
_WINDOW = const(8)  # ratings in flight before an ACK
_MAX_BACKOFF = const(16)
_BLINK_MS = const(500)
_HALF = const(1 << 29)


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
        self._tx = bytearray(_TX_SIZE)
        self._tx_mv = memoryview(self._tx)
        self._tx_head = 0  # next byte to send
        self._tx_len = 0
        self._frame = bytearray(MAX_FRAME + 8)
        self._frame_mv = memoryview(self._frame)
        self._rx = bytearray(MAX_FRAME)
        self._rx_len = 0
        self._rx_skip = False  # dropping an over-long frame until the next delimiter
        self._send_next = 1  # next journal seq to send
        self._sent_max = 0  # highest journal seq ever sent (to mark retransmissions)
        self._ack_at = _NONE
        self._backoff = 1
        self._status_at = _NONE
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
        d = earliest(d, self._ack_at, now)
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

    def _poll(self, now):
        if self.rules.poll(now):
            self._status_due = True
        if self._ack_at != _NONE and ticks_diff(now, self._ack_at) >= 0:
            # No ACK in time: go back to the oldest unACKed rating, wait longer next time.
            self._ack_at = _NONE
            self._send_next = self.journal.ack_seq + 1
            if self._backoff < _MAX_BACKOFF:
                self._backoff *= 2
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
        self._tx_len = 0
        self._rx_len = 0
        self._rx_skip = False
        self._ack_at = _NONE
        self._status_at = _NONE
        self._update_outputs(now)

    def receive(self, data, now):
        # Stream bytes from the host (the payload of OUT reports; zero padding is harmless).
        self._advance(now)
        rx = self._rx
        # A report's zero padding is a run of empty frames: one delimiter does the same.
        end = len(data)
        while end > 1 and data[end - 1] == 0 and data[end - 2] == 0:
            end -= 1
        for i in range(end):
            b = data[i]
            if b == 0:
                if self._rx_len and not self._rx_skip:
                    self._frame_in(now)
                self._rx_len = 0
                self._rx_skip = False
            elif self._rx_len < MAX_FRAME:
                rx[self._rx_len] = b
                self._rx_len += 1
            else:
                self._rx_skip = True
        self._poll(now)

    # -- outputs ------------------------------------------------------------------------------
    def pull(self, report):
        # Fill one 64-byte IN report with stream bytes (zero-padded); False if nothing to send.
        n = self._tx_len
        if n == 0:
            return False
        if n > _REPORT:
            n = _REPORT
        head = self._tx_head
        first = _TX_SIZE - head
        if first > n:
            first = n
        report[0:first] = self._tx_mv[head : head + first]
        if n > first:
            report[first:n] = self._tx_mv[0 : n - first]
        for i in range(n, _REPORT):
            report[i] = 0
        self._tx_head = (head + n) % _TX_SIZE
        self._tx_len -= n
        return True

    def pending(self):
        return self._tx_len

    def _push(self, n):
        # Queue the frame in self._frame[:n]; False (frame dropped) if the queue is full.
        # Only status, key events and replies can be dropped: ratings stay in the journal and
        # are sent again after the ACK timeout.
        if self._tx_len + n > _TX_SIZE:
            return False
        tail = (self._tx_head + self._tx_len) % _TX_SIZE
        first = _TX_SIZE - tail
        if first > n:
            first = n
        self._tx_mv[tail : tail + first] = self._frame_mv[0:first]
        if n > first:
            self._tx_mv[0 : n - first] = self._frame_mv[first:n]
        self._tx_len += n
        return True

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
        return f

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
        if self.settings.get("buzzer"):
            self.hw.buzz(80)
        return True

    def _send_ratings(self, now):
        j = self.journal
        if self._send_next <= j.ack_seq:
            self._send_next = j.ack_seq + 1
        while self._send_next < j.next_seq and self._send_next - j.ack_seq <= _WINDOW:
            seq = self._send_next
            hflags = codec.HF_RETRANSMIT if seq <= self._sent_max else 0
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
            self._send_next = seq + 1
            if seq > self._sent_max:
                self._sent_max = seq
        if self._send_next - 1 > j.ack_seq and self._ack_at == _NONE:
            self._ack_at = ticks_add(now, self.settings.get("ack_timeout_ms") * self._backoff)

    # -- host commands ------------------------------------------------------------------------
    def _frame_in(self, now):
        try:
            type_id, seq, hflags, payload = codec.unframe(self._rx, self._rx_len)
        except ValueError:
            return  # damaged frame: the host repeats what matters
        try:
            v = codec.decode_payload(type_id, payload)
        except (ValueError, IndexError, UnicodeError):
            self._reply(seq, codec.RESULT_CODE_BAD_REQUEST, b"malformed payload")
            return
        if v is None:
            self._reply(seq, codec.RESULT_CODE_UNSUPPORTED, b"unknown message type")
            return
        self._command(type_id, seq, v, now)

    def _command(self, t, seq, v, now):
        r = self.rules
        ok = codec.RESULT_CODE_OK
        if t == codec.T_ACK:
            try:
                moved = self.journal.ack(v[0])
            except OSError:
                # flash write failed: the ACK is not persisted (the journal keeps its old ACK
                # point, so those ratings are sent again later: stored once by the host)
                self.storage_error = True
                self._status_due = True
                return
            if moved:
                self._ack_at = _NONE
                self._backoff = 1
            return
        if t == codec.T_TIME_SYNC:
            first = not self.synced
            self.synced = True
            self._sync_epoch = v[0]
            self._sync_uptime = self.uptime
            if first:
                self._status_due = True
            return
        if t == codec.T_HOST_HELLO:
            self.session = True
            self._send_next = self.journal.ack_seq + 1
            self._ack_at = _NONE
            self._backoff = 1
            self._push_hello(codec.HF_RESPONSE)
            self._status_due = True
            if v[0] != codec.PROTOCOL_VERSION:
                self._reply(seq, codec.RESULT_CODE_DENIED, b"protocol version")
            return
        if t == codec.T_PROMPT:
            if self.journal.full():
                self._reply(seq, codec.RESULT_CODE_FAILED, b"journal full")
                return
            r.arm(v[0], v[2].encode(), v[1], now)
        elif t == codec.T_CANCEL_PROMPT:
            if not r.cancel(v[0]):
                self._reply(seq, codec.RESULT_CODE_NOT_FOUND, b"no such prompt")
                return
        elif t == codec.T_LOGIN:
            r.login(v[0].encode(), v[1].encode())
        elif t == codec.T_LOGOUT:
            if not r.logout(v[0].encode()):
                self._reply(seq, codec.RESULT_CODE_NOT_FOUND, b"not logged in")
                return
        elif t == codec.T_GET_CONFIG:
            if not self._get_config(seq, v[0]):
                return
        elif t == codec.T_SET_CONFIG:
            try:
                at_boot = self.settings.set(v[0], v[1])
            except ValueError as e:
                self._reply(seq, codec.RESULT_CODE_BAD_VALUE, str(e).encode())
                return
            except OSError:
                self._reply(seq, codec.RESULT_CODE_FAILED, b"flash write failed")
                return
            if at_boot:
                self._reply(seq, ok, b"applies after a reboot")
                return
            self._apply_settings()
        elif t == codec.T_SELF_TEST:
            failed = self.hw.self_test()
            if self.journal.corrupt or self.storage_error:
                failed = (failed + " journal").strip()
            if failed:
                self._reply(seq, codec.RESULT_CODE_FAILED, failed.encode())
                return
        elif t == codec.T_REBOOT:
            self.reboot_mode = v[0]
        elif t == codec.T_KEY_EVENTS:
            self.key_events = bool(v[0])
        else:
            self._reply(seq, codec.RESULT_CODE_UNSUPPORTED, b"not for the keypad")
            return
        self._reply(seq, ok)
        self._status_due = True

    def _get_config(self, seq, key):
        names = NAMES if key == "" else (key,)
        for name in names:
            try:
                text = self.settings.text(name)
            except ValueError:
                self._reply(seq, codec.RESULT_CODE_NOT_FOUND, b"unknown setting")
                return False
            n = codec.config_value_into(self._frame, self._next_seq(), codec.HF_RESPONSE, seq,
                                        name.encode(), text.encode())
            self._push(n)
        return True

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
        if on != self._status_led:
            self._status_led = on
            self.hw.status_led(on)
