# Flash journal tests; run on CPython and on MicroPython (plain asserts, no pytest).
from sim.memstorage import MemStorage, PowerCut
from rpfw.journal import F_BOOT, F_PROMPT, F_SCORE, F_SEQ, F_UPTIME, Journal


def _rating(j, i):
    return j.append(1 + i % 5, 5, i & 3, 1000 + i, b"S%03d" % (i % 7), 10 * i, None)


def _check_record(j, seq, i):
    assert j.read(seq), seq
    f = j.fields()
    assert f[F_SEQ] == seq
    assert f[F_SCORE] == 1 + i % 5
    assert f[F_PROMPT] == 1000 + i
    assert f[F_UPTIME] == 10 * i
    assert j.staff() == b"S%03d" % (i % 7)


def _j(st, capacity=20000, seg_records=255, tail=2):
    return Journal(st, capacity, seg_records, tail, 2)


def test_append_read_ack_and_reopen():
    st = MemStorage()
    j = _j(st, capacity=100, seg_records=4)
    assert j.open() == 1
    seqs = [_rating(j, i) for i in range(10)]
    assert seqs == list(range(1, 11))
    for i, seq in enumerate(seqs):
        _check_record(j, seq, i)
    assert j.fields()[F_BOOT] == 1
    assert j.unacked() == 10
    # ratings 1-8 are in segments, 9 and 10 in the tail (a slot file each)
    assert sorted(st.listdir()) == ["0000000001.seg", "0000000005.seg", "state"]
    assert st.read("t1/1")[4] == 9 and st.read("t0/0")[4] == 10
    assert j.used() == 10
    assert j.ack(6)
    assert not j.ack(6)  # not new
    assert j.unacked() == 4
    # segment 1..4 fully ACKed -> deleted; 5..8 still holds 7, 8
    assert sorted(st.listdir()) == ["0000000005.seg", "state"]
    assert j.used() == 6  # 5..10: journal_used counts what flash holds, ACKed or not
    j2 = _j(st, capacity=100, seg_records=4)
    assert j2.open() == 2
    assert (j2.next_seq, j2.ack_seq) == (11, 6)
    for seq in range(7, 11):
        _check_record(j2, seq, seq - 1)
    assert _rating(j2, 10) == 11
    assert j2.fields()[F_BOOT] == 2


def test_sequence_survives_acking_everything():
    st = MemStorage()
    j = _j(st, capacity=100, seg_records=3)
    j.open()
    for i in range(7):
        _rating(j, i)
    j.ack(7)
    assert j.unacked() == 0
    j2 = _j(st, capacity=100, seg_records=3)
    j2.open()
    assert j2.next_seq == 8  # never reused, though every rating was trimmed
    assert _rating(j2, 0) == 8


def test_epoch_none_and_value_and_long_staff():
    st = MemStorage()
    j = Journal(st)
    j.open()
    s1 = j.append(5, 5, 0, 1, b"S1", 100, None)
    s2 = j.append(4, 5, 1, 2, b"0123456789abcdefXYZ", 200, 1795000000123)
    assert j.read(s1) and j.epoch() is None
    assert j.read(s2) and j.epoch() == 1795000000123
    assert j.staff() == b"0123456789abcdef"  # cut to 16 bytes


def test_full_journal_refuses_and_never_overwrites():
    st = MemStorage()
    j = _j(st, capacity=5, seg_records=2)
    j.open()
    for i in range(5):
        assert _rating(j, i) == i + 1
    assert j.full()
    assert _rating(j, 5) == 0
    assert _rating(j, 6) == 0
    for i in range(5):
        _check_record(j, i + 1, i)
    j.ack(2)
    assert not j.full()
    assert _rating(j, 5) == 6
    j2 = _j(st, capacity=5, seg_records=2)
    j2.open()
    assert j2.unacked() == 4


def test_ack_beyond_what_exists_is_clamped():
    j = Journal(MemStorage())
    j.open()
    _rating(j, 0)
    assert j.ack(99)
    assert j.ack_seq == 1
    assert _rating(j, 1) == 2


def test_damaged_record_is_reported_not_returned():
    st = MemStorage()
    j = _j(st, seg_records=10)
    j.open()
    for i in range(5):
        _rating(j, i)
    st.files["0000000001.seg"][48 + 10] ^= 0x40
    assert j.read(1)
    assert not j.read(2)
    assert j.corrupt == 1
    assert j.read(3)


def _workload(st, confirmed, acked):
    # Boot, ratings, ACKs, reboots: records what the journal confirmed and what was ACKed.
    # acked[0]: the highest ACK persisted so far (each rating's slot keeps the ACK of the moment,
    # open() and tail flushes write it to the state)
    for boot in range(3):
        j = _j(st, capacity=12, seg_records=3)
        j.open()
        acked[0] = j.ack_seq
        for i in range(6):
            before = j.ack_seq
            seq = _rating(j, boot * 10 + i)
            if seq:
                confirmed[seq] = boot * 10 + i
                acked[0] = before
            if i % 2 == 1:
                j.ack(j.next_seq - 2)


def test_power_cut_at_every_step_loses_nothing_confirmed():
    clean = MemStorage()
    _workload(clean, {}, [0])
    total = clean.steps
    assert total > 1000
    for cut in range(total + 1):
        st = MemStorage()
        st.budget = cut
        confirmed = {}
        acked = [0]
        try:
            _workload(st, confirmed, acked)
        except PowerCut:
            pass
        st.budget = -1
        j = _j(st, capacity=12, seg_records=3)
        j.open()
        # every confirmed rating that was not ACKed is still there, intact
        for seq in confirmed:
            if seq > j.ack_seq:
                _check_record(j, seq, confirmed[seq])
        # ACKs only move forward, and only over ratings that were confirmed
        assert j.ack_seq >= acked[0]
        assert j.ack_seq <= (max(confirmed) if confirmed else 0)
        # the journal is usable: the next rating gets the next sequence, and survives a reboot
        nxt = j.next_seq
        assert nxt == (max(confirmed) + 1 if confirmed else 1)
        if not j.full():
            assert _rating(j, 99) == nxt
            j2 = _j(st, capacity=12, seg_records=3)
            j2.open()
            _check_record(j2, nxt, 99)
            assert j2.boot_id == j.boot_id + 1


def test_a_damaged_record_inside_the_newest_segment_is_kept_at_boot():
    st = MemStorage()
    j = _j(st, seg_records=10)
    j.open()
    for i in range(7):
        _rating(j, i)  # 1-6 in the segment, 7 in the tail
    j.ack(2)
    st.files["0000000001.seg"][2 * 48 + 7] ^= 0x10  # bit rot in record 3
    j2 = _j(st, seg_records=10)
    j2.open()
    assert j2.next_seq == 8  # records 4-7 survive; no sequence number is used twice
    assert not j2.read(3) and j2.corrupt == 1
    _check_record(j2, 4, 3)
    _check_record(j2, 7, 6)
    assert _rating(j2, 9) == 8


def test_a_lost_state_file_does_not_bring_back_acked_ratings():
    st = MemStorage()
    j = _j(st, capacity=20, seg_records=3)
    j.open()
    for i in range(10):
        _rating(j, i)
    j.ack(7)  # segments 1-3 and 4-6 are deleted
    del st.files["state"]
    j2 = _j(st, capacity=20, seg_records=3)
    j2.open()
    assert j2.ack_seq == 6  # everything before the oldest segment was ACKed
    assert j2.next_seq == 11 and j2.unacked() == 4


def test_the_tail_comes_back_from_its_slots_after_a_reset():
    st = MemStorage()
    j = Journal(st, 100, 6, 3, 2)
    j.open()
    for i in range(5):
        _rating(j, i)  # 1-3 flushed to a segment when 4 came; 4, 5 in slots 1 and 2
    j.ack(4)  # in RAM only: no segment can go yet
    assert _rating(j, 5) == 6  # slot 0 now holds 6 and the ACK of 4
    j2 = Journal(st, 100, 6, 3, 2)
    j2.open()
    assert (j2.seg_end, j2.next_seq, j2.ack_seq) == (4, 7, 4)
    for seq in (4, 5, 6):
        _check_record(j2, seq, seq - 1)
    # a slot whose write was torn is not part of the tail
    st.files["t0/0"][20] ^= 1
    j3 = Journal(st, 100, 6, 3, 2)
    j3.open()
    assert j3.next_seq == 6 and j3.ack_seq == 4


def test_capacity_is_what_the_flash_holds():
    st = MemStorage()
    st.free_blocks = lambda: (4096, 8 + 3 * 10)  # reserve + ten segments' worth
    j = Journal(st, 20000)
    j.open()
    assert j.room == 10 * 255 + 85
    assert j.capacity == 9 * 255 + 85  # less a partly ACKed oldest segment
    j.set_capacity(100)
    assert j.capacity == 100
