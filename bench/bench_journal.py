"""Flash journal throughput on the real MicroPython VM, and flash bytes per rating.

Appends ratings through the firmware's Journal on FileStorage (the keypad's storage code, here on
the VM's in-memory filesystem), with and without an ACK after each rating, next to a baseline
measured in the same run: the bare file appends the journal cannot avoid (open, write 48 bytes,
flush, close). MicroPython's own clock (time.ticks_us) times the loops inside the VM.

    python bench/bench_journal.py [--ratings 5000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ratepad.tools.mpvm import MicroPythonVM

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"

SCRIPT = """
import os, time
from rpfw.journal import Journal, REC_SIZE
from rpfw.storage import FileStorage

def fresh(name):
    st = FileStorage("/bench_" + name)
    for f in st.listdir():
        st.remove(f)
    return st

def journal_run(n, ack_each):
    st = fresh("j%d" % ack_each)
    j = Journal(st, capacity=n + 10)
    j.open()
    t0 = time.ticks_us()
    for i in range(n):
        seq = j.append(1 + i % 5, 5, 0, i, b"S001", 1000 * i, 1795000000000 + i)
        if ack_each:
            j.ack(seq)
    dt = time.ticks_diff(time.ticks_us(), t0)
    used = 0
    for f in st.listdir():
        used += os.stat(st.root + "/" + f)[6]
    return dt, used

def baseline_run(n):
    st = fresh("b")
    rec = bytes(REC_SIZE)
    t0 = time.ticks_us()
    for i in range(n):
        st.append("raw.seg", rec)
    return time.ticks_diff(time.ticks_us(), t0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", type=int, default=5000)
    n = ap.parse_args().ratings
    with MicroPythonVM(timeout=600) as vm:
        vm.add_dir(FIRMWARE / "rpfw", "/lib/rpfw")
        vm.exec(SCRIPT)
        version = vm.eval("'.'.join(str(x) for x in __import__('sys').implementation.version[:3])")
        base_us = vm.eval(f"baseline_run({n})")
        keep_us, keep_bytes = vm.eval(f"journal_run({n}, 0)")
        ack_us, ack_bytes = vm.eval(f"journal_run({n}, 1)")
    print(f"MicroPython {version} (WebAssembly VM), {n:,} ratings per run")
    print(f"baseline (bare 48-byte append+flush): {n / base_us * 1e6:10,.0f} appends/s")
    print(
        f"journal append, no ACK:               {n / keep_us * 1e6:10,.0f} ratings/s"
        f"  ({keep_us / base_us:.2f}x the baseline's time)"
    )
    print(
        f"journal append + ACK each:            {n / ack_us * 1e6:10,.0f} ratings/s"
        f"  ({ack_us / base_us:.2f}x the baseline's time)"
    )
    print(
        f"flash bytes per unACKed rating: {keep_bytes / n:.1f} "
        f"(record 48 B; journal files {keep_bytes:,} B for {n:,} ratings)"
    )
    print(f"flash left after everything is ACKed: {ack_bytes:,} B (newest segment + state)")
    print(f"20,000 unACKed ratings need {20000 * keep_bytes / n / 1024:,.0f} KiB of the ~1.4 MB")


if __name__ == "__main__":
    main()
