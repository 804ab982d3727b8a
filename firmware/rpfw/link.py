# The core's side of the link: the transmit ring (frames queued for 64-byte IN reports), the
# receive framing (COBS frames out of OUT report payloads) and the send window of ratings
# (how many are in flight before an ACK, the ACK timeout and its backoff). Preallocated buffers,
# nothing allocated per byte or per report.
from micropython import const
from rpfw.codec import MAX_FRAME
from rpfw.ticks import ticks_add, ticks_diff

_NONE = const(-1)
REPORT = const(64)
TX_SIZE = const(2048)
WINDOW = const(8)  # ratings in flight before an ACK
_MAX_BACKOFF = const(16)


class Link:
    def __init__(self, on_frame):
        # on_frame(rx, n): a whole frame (without its delimiter) is in rx[:n]
        self._on_frame = on_frame
        self._tx = bytearray(TX_SIZE)
        self._tx_mv = memoryview(self._tx)
        self._tx_head = 0  # next byte to send
        self._tx_len = 0
        self.rx = bytearray(MAX_FRAME)
        self._rx_len = 0
        self._rx_skip = False  # dropping an over-long frame until the next delimiter
        # send window
        self.send_next = 1  # next journal seq to send
        self.sent_max = 0  # highest journal seq ever sent (to mark retransmissions)
        self.ack_at = _NONE
        self.backoff = 1

    def down(self):
        # The link went down: drop what is queued, half-received or in flight.
        self._tx_len = 0
        self._rx_len = 0
        self._rx_skip = False
        self.ack_at = _NONE

    # -- transmit ring ------------------------------------------------------------------------
    def push(self, frame_mv, n):
        # Queue frame_mv[:n]; False (frame dropped) if the ring is full.
        if self._tx_len + n > TX_SIZE:
            return False
        tail = (self._tx_head + self._tx_len) % TX_SIZE
        first = TX_SIZE - tail
        if first > n:
            first = n
        self._tx_mv[tail : tail + first] = frame_mv[0:first]
        if n > first:
            self._tx_mv[0 : n - first] = frame_mv[first:n]
        self._tx_len += n
        return True

    def pull(self, report):
        # Fill one 64-byte IN report with stream bytes (zero-padded); False if nothing to send.
        n = self._tx_len
        if n == 0:
            return False
        if n > REPORT:
            n = REPORT
        head = self._tx_head
        first = TX_SIZE - head
        if first > n:
            first = n
        report[0:first] = self._tx_mv[head : head + first]
        if n > first:
            report[first:n] = self._tx_mv[0 : n - first]
        for i in range(n, REPORT):
            report[i] = 0
        self._tx_head = (head + n) % TX_SIZE
        self._tx_len -= n
        return True

    def pending(self):
        return self._tx_len

    # -- receive framing ----------------------------------------------------------------------
    def receive(self, data):
        # Stream bytes from the host (the payload of OUT reports; zero padding is harmless).
        rx = self.rx
        # A report's zero padding is a run of empty frames: one delimiter does the same.
        end = len(data)
        while end > 1 and data[end - 1] == 0 and data[end - 2] == 0:
            end -= 1
        for i in range(end):
            b = data[i]
            if b == 0:
                if self._rx_len and not self._rx_skip:
                    self._on_frame(rx, self._rx_len)
                self._rx_len = 0
                self._rx_skip = False
            elif self._rx_len < MAX_FRAME:
                rx[self._rx_len] = b
                self._rx_len += 1
            else:
                self._rx_skip = True

    # -- send window --------------------------------------------------------------------------
    def restart(self, ack_seq):
        # A new session: send from the oldest unACKed rating, no timer, no backoff.
        self.send_next = ack_seq + 1
        self.ack_at = _NONE
        self.backoff = 1

    def acked(self):
        # An ACK moved: stop the timer, forget the backoff.
        self.ack_at = _NONE
        self.backoff = 1

    def poll(self, now, ack_seq):
        # No ACK in time: go back to the oldest unACKed rating, wait longer next time.
        if self.ack_at != _NONE and ticks_diff(now, self.ack_at) >= 0:
            self.ack_at = _NONE
            self.send_next = ack_seq + 1
            if self.backoff < _MAX_BACKOFF:
                self.backoff *= 2

    def may_send(self, next_seq, ack_seq):
        # The next rating to send, or 0 if none is due (all sent, or the window is full).
        if self.send_next <= ack_seq:
            self.send_next = ack_seq + 1
        seq = self.send_next
        if seq < next_seq and seq - ack_seq <= WINDOW:
            return seq
        return 0

    def is_retransmit(self, seq):
        return seq <= self.sent_max

    def sent(self, seq):
        self.send_next = seq + 1
        if seq > self.sent_max:
            self.sent_max = seq

    def arm(self, now, ack_seq, timeout_ms):
        # Ratings in flight: start the ACK timer (scaled by the backoff) if it is not running.
        if self.send_next - 1 > ack_seq and self.ack_at == _NONE:
            self.ack_at = ticks_add(now, timeout_ms * self.backoff)
