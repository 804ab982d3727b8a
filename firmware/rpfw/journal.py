# The flash journal: every rating is appended here before the keypad thanks the customer, and
# stays until the host ACKs its journal sequence.
#
# Files (in one storage directory):
#   t0/ .. t<d-1>/<slot>        the tail: the newest ratings, one small file per slot; rating seq
#                               goes to slot seq % tail, in directory t<slot % d>
#   <first seq, 10 digits>.seg  fixed 48-byte rating records, seq = first + index, append-only
#   state                       boot count, highest ACKed seq, first seq not in a segment
# Why a tail: on littlefs every durable write to a file's data costs a block erase (the last
# block is copied into a fresh one at each sync; rp2 erases with interrupts off, ~45 ms), but a
# small file lives inline in its directory's metadata log, where one write is one 256-byte
# program and an erase comes only when the log block fills. A rating is one such write (its
# record and the current ACK); every `tail` ratings they go to a segment in one append. Spread
# over d directories, each log stays short, so its block takes ~14 writes between erases.
# Rules:
#   - a slot write and a segment append are atomic on littlefs (the commit at close), and a
#     record carries its own CRC-32: a torn write leaves the previous state, or a short or bad
#     last segment record, which recovery cuts off (never confirmed, so nothing confirmed lost);
#   - a slot is overwritten only after its rating reached a segment; recovery takes the tail
#     from the slots holding seg_end, seg_end + 1, ... in order;
#   - sequence numbers never go back: the newest segment is never deleted, and the state keeps
#     the first seq not in a segment;
#   - an ACK is kept with the next rating's slot, with each tail flush, before any segment is
#     deleted, and by sync() (the core calls it when no rating came for a moment): a busy keypad
#     pays nothing extra for its ACKs. Until then a power cut can bring back ratings ACKed just
#     before it (sent again as retransmissions; the host keeps one per serial and sequence);
#   - a segment is deleted only once every record in it is ACKed, after the ACK is persisted;
#   - with `capacity` unACKed ratings, or the flash holding all it can, the journal refuses new
#     ones (never overwrites). What the flash can hold is counted at open() from its free space.
from micropython import const
import struct
from binascii import crc32

REC_SIZE = const(48)
_MAGIC = const(0x52)  # "R": rating record, layout version 1
_STATE_MAGIC = const(0x324A5052)  # "RPJ2"
_STATE_MAGIC_V1 = const(0x314A5052)  # "RPJ1": no seg_end
_STATE_SIZE = const(20)
_SLOT_SIZE = const(56)  # record, ACKed seq, CRC-32 of the ACK
_EPOCH_NONE = const(0xFFFFFFFFFFFF)  # 48-bit "not synced"
_STAFF_MAX = const(16)
_RESERVE_BLOCKS = const(8)  # free blocks kept for metadata, copy-on-write and settings
SEG_SUFFIX = ".seg"
SEG_RECORDS = const(255)  # 12,240 bytes: three 4 KB littlefs blocks with their CTZ pointers
TAIL = const(85)  # a third of a segment
TAIL_DIRS = const(8)
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
    def __init__(self, storage, capacity=20000, seg_records=SEG_RECORDS, tail=TAIL,
                 tail_dirs=TAIL_DIRS):
        self.storage = storage
        self.limit = capacity  # the "capacity" setting
        self.capacity = capacity  # what is advertised: the setting, or what fits if less
        self.room = -1  # ratings the flash can hold (counted at open(); -1 = no limit known)
        self.seg_records = seg_records
        self.tail = tail
        self.tail_dirs = tail_dirs
        self.boot_id = 0
        self.next_seq = 1
        self.ack_seq = 0
        self.seg_end = 1  # first seq not in a segment file (the tail holds seg_end..next_seq-1)
        self.ack_dirty = False  # ack_seq is ahead of what the flash holds
        self.corrupt = 0  # records found damaged when read back (reported as a fault)
        self._segs = []  # [first_seq, count] per segment, oldest first
        self._rec = bytearray(REC_SIZE)
        self._rec_mv = memoryview(self._rec)
        self._slot = bytearray(_SLOT_SIZE)
        self._slot_mv = memoryview(self._slot)
        self._ring = bytearray(tail * REC_SIZE)  # the tail's records, seq at (seq % tail)
        self._ring_mv = memoryview(self._ring)
        self._state = bytearray(_STATE_SIZE)

    def _slot_name(self, slot):
        return "t%d/%d" % (slot % self.tail_dirs, slot)

    # -- boot ---------------------------------------------------------------------------------
    def open(self):
        # Recover after any reset or power cut, then count this boot. Returns the boot id.
        st = self.storage
        boot_count = 0
        seg_end = 1
        raw = st.read("state")
        if raw is not None and len(raw) >= 16:
            magic, boots, ack = struct.unpack_from("<III", raw, 0)
            n = _STATE_SIZE - 4 if magic == _STATE_MAGIC else 12
            if (magic in (_STATE_MAGIC, _STATE_MAGIC_V1) and len(raw) == n + 4
                    and struct.unpack_from("<I", raw, n)[0] == crc32(raw[:n])):
                boot_count = boots
                self.ack_seq = ack
                if magic == _STATE_MAGIC:
                    seg_end = struct.unpack_from("<I", raw, 12)[0]
        names = []
        for name in st.listdir():
            if name.endswith(".tmp"):
                st.remove(name)  # an unfinished replace(); the previous file is intact
            elif name.endswith(SEG_SUFFIX):
                names.append(name)
        names.sort()
        self._segs = []
        for name in names:
            self._segs.append([int(name[:10]), st.size(name) // REC_SIZE])
        if self._segs:
            self._repair_last(names[-1])
            first, count = self._segs[-1]
            seg_end = first + count  # the segments are the truth; the state may lag a flush
            # Segments are deleted only after their ACK was persisted: whatever precedes the
            # oldest one was ACKed, even if the state file was lost.
            if self.ack_seq < self._segs[0][0] - 1:
                self.ack_seq = self._segs[0][0] - 1
        if seg_end <= self.ack_seq and not self._segs:
            seg_end = self.ack_seq + 1  # a lost tail: sequence numbers never go back
        self.seg_end = seg_end
        self._load_tail()
        if self.ack_seq > self.next_seq - 1:
            self.ack_seq = self.next_seq - 1
        self.boot_id = boot_count + 1
        self._count_room()
        self._save_state()
        return self.boot_id

    def _load_tail(self):
        # The tail: slots holding seg_end, seg_end + 1, ... (intact, in order); every intact
        # slot's ACK counts (each was persisted with a rating).
        st = self.storage
        for d in range(self.tail_dirs):
            st.mkdir("t%d" % d)
        ack = self.ack_seq
        ring = self._ring
        for slot in range(self.tail):  # a slot's magic byte in the ring: found (or not)
            ring[slot * REC_SIZE] = 0
        for slot in range(self.tail):
            if not self._read_slot(slot):
                continue
            a = struct.unpack_from("<I", self._slot, REC_SIZE)[0]
            if a > ack:
                ack = a
            seq = struct.unpack_from("<I", self._slot, 4)[0]
            if self.seg_end <= seq < self.seg_end + self.tail and seq % self.tail == slot:
                ring[slot * REC_SIZE : (slot + 1) * REC_SIZE] = self._slot_mv[:REC_SIZE]
        seq = self.seg_end
        while seq < self.seg_end + self.tail and ring[(seq % self.tail) * REC_SIZE] == _MAGIC:
            o = (seq % self.tail) * REC_SIZE
            if struct.unpack_from("<I", ring, o + 4)[0] != seq:
                break
            seq += 1
        self.next_seq = seq
        self.ack_seq = ack

    def _read_slot(self, slot):
        # Load slot into self._slot; True if it holds an intact record and ACK.
        s = self._slot
        try:
            n = self.storage.read_into(self._slot_name(slot), 0, s)
        except OSError:
            return False
        mv = self._slot_mv
        return (
            n == _SLOT_SIZE
            and s[0] == _MAGIC
            and struct.unpack_from("<I", s, _CRC_AT)[0] == crc32(mv[:_CRC_AT])
            and struct.unpack_from("<I", s, REC_SIZE + 4)[0] == crc32(mv[: REC_SIZE + 4])
        )

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

    def _count_room(self):
        # Ratings the flash can hold: whole segments in the free blocks (plus those the
        # segments hold now), less a reserve, plus the tail. Then what is advertised.
        free = self.storage.free_blocks()
        if free is None:
            self.room = -1
        else:
            bsize, nfree = free
            per_seg = (self.seg_records * REC_SIZE + bsize - 9) // (bsize - 8)
            blocks = nfree - _RESERVE_BLOCKS
            for first, count in self._segs:
                blocks += (count * REC_SIZE + bsize - 9) // (bsize - 8)
            segs = blocks // per_seg if blocks > 0 else 0
            self.room = segs * self.seg_records + self.tail
        self.set_capacity(self.limit)

    def set_capacity(self, limit):
        # The "capacity" setting; what is advertised is that, or less if the flash holds less
        # (minus a partly ACKed oldest segment, which stays until all of it is ACKed).
        self.limit = limit
        c = limit
        if self.room >= 0:
            fit = self.room - self.seg_records
            if fit < 1:
                fit = 1 if self.room > 0 else 0
            if fit < c:
                c = fit
        self.capacity = c

    def _save_state(self):
        s = self._state
        struct.pack_into("<IIII", s, 0, _STATE_MAGIC, self.boot_id, self.ack_seq, self.seg_end)
        struct.pack_into("<I", s, 16, crc32(memoryview(s)[:16]))
        self.storage.write("state", s)
        self.ack_dirty = False

    # -- writing ------------------------------------------------------------------------------
    def unacked(self):
        return self.next_seq - 1 - self.ack_seq

    def used(self):
        # Ratings in flash (ACKed ones stay until their whole segment is ACKed).
        n = self.next_seq - self.seg_end
        for first, count in self._segs:
            n += count
        return n

    def full(self):
        if self.unacked() >= self.capacity:
            return True
        return self.room >= 0 and self.used() >= self.room

    def append(self, score, key_count, flags, prompt_id, staff, uptime_ms, epoch_ms):
        # Journal one rating (staff: bytes). Returns its seq, or 0 when the journal is full.
        # Durable when this returns: only then may the keypad thank the customer. If the flash
        # write fails (OSError), nothing changes.
        if self.full():
            return 0
        if self.next_seq - self.seg_end >= self.tail:
            self._flush()
        seq = self.next_seq
        r = self._slot
        n = len(staff)
        if n > _STAFF_MAX:
            n = _STAFF_MAX
        e = _EPOCH_NONE if epoch_ms is None else epoch_ms
        struct.pack_into(
            _FMT, r, 0, _MAGIC, score, key_count, n, seq, self.boot_id, uptime_ms, prompt_id,
            flags, e >> 32, e & 0xFFFFFFFF, staff[:n],
        )
        mv = self._slot_mv
        struct.pack_into("<I", r, _CRC_AT, crc32(mv[:_CRC_AT]))
        struct.pack_into("<I", r, REC_SIZE, self.ack_seq)
        struct.pack_into("<I", r, REC_SIZE + 4, crc32(mv[: REC_SIZE + 4]))
        slot = seq % self.tail
        self.storage.write(self._slot_name(slot), r)
        o = slot * REC_SIZE
        self._ring[o : o + REC_SIZE] = mv[:REC_SIZE]
        self._rec[0:REC_SIZE] = mv[:REC_SIZE]  # as if read back: fields() describes it
        self.next_seq = seq + 1
        self.ack_dirty = False  # the slot holds the ACK
        return seq

    def _flush(self):
        # The tail goes to segment files (each append atomic), then the state says so.
        segs = self._segs
        while self.seg_end < self.next_seq:
            if not segs or segs[-1][1] >= self.seg_records:
                segs.append([self.seg_end, 0])
            seg = segs[-1]
            n = self.next_seq - self.seg_end
            if n > self.seg_records - seg[1]:
                n = self.seg_records - seg[1]
            a = self.seg_end % self.tail
            b = a + n
            ring = self._ring_mv
            if b <= self.tail:
                self.storage.append(_seg_name(seg[0]), ring[a * REC_SIZE : b * REC_SIZE])
            else:
                self.storage.append(_seg_name(seg[0]), ring[a * REC_SIZE :],
                                    ring[: (b - self.tail) * REC_SIZE])
            seg[1] += n
            self.seg_end += n
        self._save_state()
        self._trim()

    def _trim(self):
        # Delete whole ACKed segments (the ACK is persisted already), never the newest.
        segs = self._segs
        while len(segs) > 1 and segs[0][0] + segs[0][1] - 1 <= self.ack_seq:
            self.storage.remove(_seg_name(segs[0][0]))
            segs.pop(0)

    def ack(self, seq):
        # The host stored every rating up to seq. Kept with the next flash write, or persisted
        # now if whole segments can go (and then they go). If that write fails (OSError),
        # nothing changes.
        if seq >= self.next_seq:
            seq = self.next_seq - 1
        if seq <= self.ack_seq:
            return False
        before = self.ack_seq
        self.ack_seq = seq
        segs = self._segs
        if len(segs) > 1 and segs[0][0] + segs[0][1] - 1 <= seq:
            try:
                self._save_state()
            except OSError:
                self.ack_seq = before
                raise
            self._trim()
        else:
            self.ack_dirty = True
        return True

    def sync(self):
        # Persist the ACK now, if the flash is behind (idle, or before a planned reset).
        if self.ack_dirty:
            self._save_state()

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
        if self.seg_end <= seq < self.next_seq:
            o = (seq % self.tail) * REC_SIZE
            self._rec[0:REC_SIZE] = self._ring_mv[o : o + REC_SIZE]
            return True
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
