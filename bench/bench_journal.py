"""Flash erases and programs per rating: the firmware's journal on the real littlefs.

The keypad's Journal (firmware/rpfw/journal.py) runs on LfsStorage (firmware/sim/lfsstorage.py):
littlefs-python, MicroPython's littlefs configuration (256-byte programs, 4 KB blocks) and a
board's flash geometry, with the firmware's files taking their share of the filesystem. The
host ACKs every rating as it arrives (the steady state of a keypad in service). Next to it, in
the same run and on the same block device: the baseline of a bare append (open, write one
48-byte record, close) per rating, which is what the journal did before its tail. The ACK rides
with the next rating's write; a keypad with more than 2 s between ratings also writes each ACK
on its own (third line).

    python bench/bench_journal.py [--ratings 3000] [--board pico_w]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "host"))

from ratepad.tools.fwsource import FirmwareNamespace  # noqa: E402

NS = FirmwareNamespace([ROOT / "firmware"], prefix="ratepad._fwbench")
lfsstorage: Any = NS.import_module("sim.lfsstorage")
journal: Any = NS.import_module("rpfw.journal")
FIRMWARE_BYTES = 40 * 1024  # `ratepad fw build`: a 38,813-byte bundle (.mpy, boot.py, main.py)
WARMUP = 500  # ratings before measuring: every tail slot and segment exists


def journal_run(board: str, n: int, sync_each: bool = False) -> tuple[float, float]:
    st = lfsstorage.board_storage(board, FIRMWARE_BYTES)
    j = journal.Journal(st, 20000)
    j.open()
    dev = st.dev
    for i in range(WARMUP + n):
        if i == WARMUP:
            e0, p0 = dev.erases, dev.progs
        seq = j.append(1 + i % 5, 5, 0, i, b"S001", 1000 * i, 1795000000000 + i)
        assert seq, "journal full"
        j.ack(seq)
        if sync_each:
            j.sync()
    return (dev.erases - e0) / n, (dev.progs - p0) / n


def baseline_run(board: str, n: int) -> tuple[float, float]:
    st = lfsstorage.board_storage(board, FIRMWARE_BYTES)
    dev = st.dev
    rec = bytes(journal.REC_SIZE)
    for i in range(WARMUP + n):
        if i == WARMUP:
            e0, p0 = dev.erases, dev.progs
        if i % 255 == 0 and i:  # a new file per 255 records, the old one deleted (ACKed)
            st.remove(f"raw{i // 255 - 1}")
        st.append(f"raw{i // 255}", rec)
    return (dev.erases - e0) / n, (dev.progs - p0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", type=int, default=3000)
    ap.add_argument("--board", choices=sorted(lfsstorage.GEOMETRY), default="pico_w")
    args = ap.parse_args()
    n = args.ratings
    bs, bc = lfsstorage.GEOMETRY[args.board]
    be, bp = baseline_run(args.board, n)
    je, jp = journal_run(args.board, n)
    qe, qp = journal_run(args.board, n, sync_each=True)
    print(
        f"littlefs on {args.board} geometry ({bc} blocks of {bs} B, 256 B programs), "
        f"{n:,} ratings after {WARMUP} warm-up, each ACKed at once; per rating:"
    )
    print(f"baseline (bare 48-byte append per rating): {be:6.3f} erases  {bp:6.2f} programs")
    print(
        f"journal (tail slots, batched segments):    {je:6.3f} erases  {jp:6.2f} programs"
        f"  ({je / be:.2f}x the baseline's erases)"
    )
    print(
        f"journal, each ACK also written on its own: {qe:6.3f} erases  {qp:6.2f} programs"
        f"  ({qe / be:.2f}x; a quiet keypad: ratings > 2 s apart)"
    )
    st = lfsstorage.board_storage(args.board, FIRMWARE_BYTES)
    j = journal.Journal(st, 20000)
    j.open()
    print(f"capacity advertised with {FIRMWARE_BYTES // 1024} KB of firmware files: {j.capacity:,}")


if __name__ == "__main__":
    main()
