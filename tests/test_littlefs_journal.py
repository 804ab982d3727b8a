"""The firmware's journal on the real littlefs (littlefs-python) with the Pico's and the Pico W's
flash geometry: power cut at every program and erase of a workload, capacity, a full journal.

The workload runs the real Journal on LfsStorage (firmware/sim/lfsstorage.py); the block device
counts programs and erases and cuts the power at a chosen one, tearing it (half a page
programmed, half a block erased). After each cut the flash is mounted again as on a reboot.
"""

from __future__ import annotations

from typing import Any

import pytest
from firmware_engines import cpython_namespace

pytest.importorskip("littlefs")

NS = cpython_namespace()
lfsstorage: Any = NS.import_module("sim.lfsstorage")
journal: Any = NS.import_module("rpfw.journal")
PowerCut: Any = NS.import_module("sim.memstorage").PowerCut
BOARDS = ["pico", "pico_w"]
FIRMWARE_BYTES = 40 * 1024  # `ratepad fw build`: a 38,813-byte bundle (.mpy, boot.py, main.py)


def _rating(j: Any, i: int) -> int:
    seq: int = j.append(1 + i % 5, 5, 0, 1000 + i, b"S%03d" % (i % 7), 10 * i, None)
    return seq


def _check(j: Any, seq: int, i: int) -> None:
    assert j.read(seq), seq
    f = j.fields()
    assert (f[journal.F_SEQ], f[journal.F_SCORE], f[journal.F_PROMPT]) == (seq, 1 + i % 5, 1000 + i)


def _small(st: Any) -> Any:
    # The real code paths (tail flushes, segment rolls and deletions) in a short workload.
    return journal.Journal(st, 40, 6, 3, 2)


def _workload(st: Any, confirmed: dict[int, int], durable: list[int]) -> None:
    # Two boots of ratings and ACKs. durable[0]: the highest ACK that reached the flash (each
    # rating's slot keeps the ACK of its moment; open() writes it to the state).
    for boot in range(2):
        j = _small(st)
        j.open()
        durable[0] = j.ack_seq
        for i in range(14):
            before = j.ack_seq
            seq = _rating(j, boot * 100 + i)
            if seq:
                confirmed[seq] = boot * 100 + i
                durable[0] = max(durable[0], before)
            if i % 3 == 2:
                j.ack(j.next_seq - 2)
                if not j.ack_dirty:  # persisted at once: whole segments were deleted
                    durable[0] = j.ack_seq
            if i % 5 == 4:
                j.sync()  # a quiet moment: the ACK goes to flash on its own
                durable[0] = j.ack_seq


@pytest.mark.parametrize("board", BOARDS)
def test_power_cut_at_every_program_and_erase(board: str) -> None:
    base = lfsstorage.board_storage(board, FIRMWARE_BYTES)
    image = base.dev.snapshot()
    start = base.dev.ops
    _workload(base, {}, [0])
    total = base.dev.ops - start
    assert total > 50
    for cut in range(total):
        dev = base.dev
        dev.restore(image)
        st = lfsstorage.LfsStorage(dev)
        dev.cut_at = dev.ops + cut
        confirmed: dict[int, int] = {}
        durable = [0]
        with pytest.raises(PowerCut):
            _workload(st, confirmed, durable)
        st.remount()  # the filesystem mounts
        j = _small(st)
        j.open()  # the journal opens
        top = max(confirmed) if confirmed else 0
        # no confirmed rating lost; ACKed ones never come back
        for seq, i in confirmed.items():
            if seq > j.ack_seq:
                _check(j, seq, i)
        assert durable[0] <= j.ack_seq <= max(top, j.next_seq - 1), (cut, durable, j.ack_seq)
        # a rating is at most one ahead of what was confirmed (its write committed, the cut
        # came before append() returned); no sequence number is reused
        assert j.next_seq in (top + 1, top + 2), (cut, top, j.next_seq)
        nxt = j.next_seq
        if not j.full():  # appends go on, and survive a reboot
            assert _rating(j, 999) == nxt
            j2 = _small(st)
            j2.open()
            _check(j2, nxt, 999)


def test_a_pico_holds_the_default_capacity() -> None:
    st = lfsstorage.board_storage("pico", FIRMWARE_BYTES)
    j = journal.Journal(st, 20000)
    j.open()
    assert j.capacity == 20000 and j.room >= 20000 + 255


def test_a_pico_w_advertises_what_it_holds() -> None:
    st = lfsstorage.board_storage("pico_w", FIRMWARE_BYTES)
    j = journal.Journal(st, 20000)
    j.open()
    _, free = st.free_blocks()
    assert 10000 < j.capacity < 20000  # 20,000 do not fit in 848 KB
    assert j.capacity <= free * 4096 // journal.REC_SIZE


def test_capacity_is_what_a_pico_w_holds_and_a_full_journal_refuses() -> None:
    # Other files take most of the filesystem (fewer ratings to fill it in a test).
    board = "pico_w"
    st = lfsstorage.board_storage(board, 500 * 1024)
    j = journal.Journal(st, 20000)
    j.open()
    _, free = st.free_blocks()
    assert 0 < j.capacity < 5000
    assert j.capacity <= free * 4096 // journal.REC_SIZE
    n = 0
    while True:
        seq = _rating(j, n)  # never OSError(ENOSPC): the journal refuses first
        if not seq:
            break
        n += 1
    assert n == j.capacity and j.full()
    # nothing lost: every rating reads back, after a reboot too
    j2 = journal.Journal(st, 20000)
    j2.open()
    assert j2.next_seq == n + 1 and j2.full()
    for seq in (1, n // 2, n):
        _check(j2, seq, seq - 1)
    # ACKs make room again
    j2.ack(n)
    assert not j2.full() and _rating(j2, 0) == n + 1
    print(f"{board}: {j.capacity} ratings fit ({free} free blocks after the firmware)")


def _real_workload(st: Any, confirmed: dict[int, int], durable: list[int]) -> None:
    # The keypad's own journal configuration, across two tail flushes and a reboot.
    for boot, count in ((0, 40), (1, 60)):
        j = journal.Journal(st, 20000)
        j.open()
        durable[0] = j.ack_seq
        for i in range(count):
            before = j.ack_seq
            seq = _rating(j, boot * 100 + i)
            if seq:
                confirmed[seq] = boot * 100 + i
                durable[0] = max(durable[0], before)
            if i % 2 == 1:
                j.ack(j.next_seq - 2)
                if not j.ack_dirty:
                    durable[0] = j.ack_seq


def test_power_cut_at_every_program_and_erase_with_the_keypads_configuration() -> None:
    base = lfsstorage.board_storage("pico_w", FIRMWARE_BYTES)
    j = journal.Journal(base, 20000)
    j.open()
    for i in range(60):  # the next flush comes 25 ratings into the workload
        _rating(j, i)
    image = base.dev.snapshot()
    prefill = {seq: seq - 1 for seq in range(1, 61)}
    start = base.dev.ops
    _real_workload(base, {}, [0])
    total = base.dev.ops - start
    for cut in range(total):
        dev = base.dev
        dev.restore(image)
        st = lfsstorage.LfsStorage(dev)
        dev.cut_at = dev.ops + cut
        confirmed = dict(prefill)
        durable = [0]
        with pytest.raises(PowerCut):
            _real_workload(st, confirmed, durable)
        st.remount()
        j = journal.Journal(st, 20000)
        j.open()
        top = max(confirmed)
        for seq, i in confirmed.items():
            if seq > j.ack_seq:
                _check(j, seq, i)
        assert durable[0] <= j.ack_seq, (cut, durable, j.ack_seq)
        assert j.next_seq in (top + 1, top + 2), (cut, top, j.next_seq)
        assert _rating(j, 999) == j.next_seq - 1


def test_the_simulator_on_littlefs_survives_a_power_cut_mid_rating() -> None:
    from ratepad.sim import SimulatedKeypad

    kp = SimulatedKeypad("LF1", settings={"debounce_ms": 5, "chord_ms": 20}, flash="pico_w")
    assert kp.core.journal.capacity < 20000  # what a Pico W's filesystem holds
    kp.connect(0)
    for n, t in enumerate((1000, 5000)):
        kp.set_keys(1 << n, t)
        kp.set_keys(0, t + 100)
        kp.advance_to(t + 500)
    assert kp.journal_next_seq() == 3
    kp.plan_power_cut()  # the next rating's write is torn
    kp.set_keys(1, 9000)
    kp.set_keys(0, 9100)
    kp.advance_to(9500)
    assert kp.power_cuts and not kp.powered
    kp.power_on(10000)  # mounts the flash as it was left
    assert kp.journal_next_seq() == 3  # the torn rating was never confirmed; 1 and 2 are there
    assert kp.core.journal.read(1) and kp.core.journal.read(2)
