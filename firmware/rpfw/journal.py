# The flash journal: every rating is appended here before the keypad thanks the customer, and
# stays until the host ACKs its journal sequence.
#
# Files (in one storage directory):
#   <first seq, 10 digits>.seg  fixed 48-byte rating records, seq = first + index, append-only
#   state                       boot count + highest ACKed seq, replaced atomically (tmp + rename)
# Rules:
#   - a record carries its own CRC-32; a power cut mid-append leaves a short or bad last record,
#     which recovery cuts off (that rating was never confirmed, so nothing confirmed is lost);
#   - sequence numbers never go back: the newest segment is never deleted, its name and length
#     give the next sequence even when everything is ACKed;
#   - a segment is deleted only once every record in it is ACKed, after the ACK is persisted;
#   - with `capacity` unACKed ratings the journal refuses new ones (never overwrites).
from micropython import const
import struct
from binascii import crc32

REC_SIZE = const(48)
_MAGIC = const(0x52)  # "R": rating record, layout version 1
_STATE_MAGIC = const(0x314A5052)  # "RPJ1"
_STATE_SIZE = const(16)
_EPOCH_NONE = const(0xFFFFFFFFFFFF)  # 48-bit "not synced"
_STAFF_MAX = const(16)
SEG_SUFFIX = ".seg"
# record layout: magic, score, key_count, staff_len, seq, boot_id, uptime_ms, prompt_id, flags,
# epoch_hi16, epoch_lo32, staff[16], crc32
_FMT = "<BBBBIIIIHHI16s"
_CRC_AT = const(44)

# Field indexes of a record decoded by fields()
F_SCORE = const(1)
F_KEY_COUNT = const(2)
F_SEQ = const(4)
F_BOOT = const(5)
F_UPTIME = const(6)
F_PROMPT = const(7)
F_FLAGS = const(8)


def _seg_name(first):
    s = str(first)
    return "0" * (10 - len(s)) + s + SEG_SUFFIX


class JournalError(Exception):
    pass


class Journal:
    def __init__(self, storage, capacity=20000, seg_records=256):
        self.storage = storage
        self.capacity = capacity
        self.seg_records = seg_records
        self.boot_id = 0
        self.next_seq = 1
        self.ack_seq = 0
        self.corrupt = 0  # records found damaged when read back (reported as a fault)
        self._segs = []  # [first_seq, count] per segment, oldest first
        self._rec = bytearray(REC_SIZE)
        self._rec_mv = memoryview(self._rec)
        self._state = bytearray(_STATE_SIZE)

    # -- boot ---------------------------------------------------------------------------------
    def open(self):
        # Recover after any reset or power cut, then count this boot. Returns the boot id.
        st = self.storage
        boot_count = 0
        raw = st.read("state")
        if raw is not None and len(raw) == _STATE_SIZE:
            magic, boots, ack, crc = struct.unpack("<IIII", raw)
            if magic == _STATE_MAGIC and crc == crc32(raw[:12]):
                boot_count = boots
                self.ack_seq = ack
        names = []
        for name in st.listdir():
            if name.endswith(".tmp"):
                st.remove(name)  # an unfinished replace(); the previous file is intact
            elif name.endswith(SEG_SUFFIX):
                names.append(name)
        names.sort()
        self._segs = []
        for name in names:
            size = st.size(name)
            self._segs.append([int(name[:10]), size // REC_SIZE])
        if self._segs:
            self._repair_last(names[-1])
            first, count = self._segs[-1]
            self.next_seq = first + count
            # Segments are deleted only after their ACK was persisted: whatever precedes the
            # oldest one was ACKed, even if the state file was lost.
            if self.ack_seq < self._segs[0][0] - 1:
                self.ack_seq = self._segs[0][0] - 1
        if self.next_seq <= self.ack_seq:
            self.next_seq = self.ack_seq + 1  # sequence numbers never go back
        self.boot_id = boot_count + 1
        self._save_state()
        return self.boot_id

    def _repair_last(self, name):
        # A power cut mid-append leaves a partial record, or a whole one whose bytes did not
        # all reach flash, at the very end: cut that. A damaged record before the end is
        # kept (it is reported and sent as a flagged placeholder), so no good record after it
        # is lost and no sequence number is used twice.
        seg = self._segs[-1]
        size = self.storage.size(name)
        good = seg[1]
        if good and not self._load(name, good - 1):
            good -= 1
        if size != good * REC_SIZE:
            data = self.storage.read(name)
            self.storage.replace(name, data[: good * REC_SIZE])
            seg[1] = good

    def _save_state(self):
        s = self._state
        struct.pack_into("<III", s, 0, _STATE_MAGIC, self.boot_id, self.ack_seq)
        struct.pack_into("<I", s, 12, crc32(memoryview(s)[:12]))
        self.storage.replace("state", s)

    # -- writing ------------------------------------------------------------------------------
    def unacked(self):
        return self.next_seq - 1 - self.ack_seq

    def full(self):
        return self.unacked() >= self.capacity

    def append(self, score, key_count, flags, prompt_id, staff, uptime_ms, epoch_ms):
        # Journal one rating (staff: bytes). Returns its seq, or 0 when the journal is full.
        # Durable when this returns: only then may the keypad thank the customer.
        if self.full():
            return 0
        seq = self.next_seq
        r = self._rec
        n = len(staff)
        if n > _STAFF_MAX:
            n = _STAFF_MAX
        e = _EPOCH_NONE if epoch_ms is None else epoch_ms
        struct.pack_into(
            _FMT, r, 0, _MAGIC, score, key_count, n, seq, self.boot_id, uptime_ms, prompt_id,
            flags, e >> 32, e & 0xFFFFFFFF, staff[:n],
        )
        struct.pack_into("<I", r, _CRC_AT, crc32(self._rec_mv[:_CRC_AT]))
        segs = self._segs
        if not segs or segs[-1][1] >= self.seg_records:
            segs.append([seq, 0])
        self.storage.append(_seg_name(segs[-1][0]), r)
        segs[-1][1] += 1
        self.next_seq = seq + 1
        return seq

    def ack(self, seq):
        # The host stored every rating up to seq: persist that, then drop whole ACKed segments.
        # If the flash write fails (OSError), nothing changes.
        if seq >= self.next_seq:
            seq = self.next_seq - 1
        if seq <= self.ack_seq:
            return False
        before = self.ack_seq
        self.ack_seq = seq
        try:
            self._save_state()
        except OSError:
            self.ack_seq = before
            raise
        segs = self._segs
        while len(segs) > 1 and segs[0][0] + segs[0][1] - 1 <= seq:
            self.storage.remove(_seg_name(segs[0][0]))
            segs.pop(0)
        return True

    # -- reading ------------------------------------------------------------------------------
    def _load(self, name, index):
        n = self.storage.read_into(name, index * REC_SIZE, self._rec)
        r = self._rec
        return (
            n == REC_SIZE
            and r[0] == _MAGIC
            and struct.unpack_from("<I", r, _CRC_AT)[0] == crc32(self._rec_mv[:_CRC_AT])
        )

    def read(self, seq):
        # Load record `seq` into the shared record buffer; True if it is there and intact.
        for first, count in self._segs:
            if first <= seq < first + count:
                if self._load(_seg_name(first), seq - first):
                    if struct.unpack_from("<I", self._rec, 4)[0] == seq:
                        return True
                self.corrupt += 1
                return False
        return False

    def fields(self):
        # The record last loaded by read(), as a tuple (see F_* indexes).
        return struct.unpack_from(_FMT, self._rec, 0)

    def epoch(self):
        hi, lo = struct.unpack_from("<HI", self._rec, 22)
        e = (hi << 32) | lo
        return None if e == _EPOCH_NONE else e

    def staff(self):
        n = self._rec[3]
        return bytes(self._rec_mv[28 : 28 + n])
