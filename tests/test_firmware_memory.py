"""Heap of the firmware on the real MicroPython VM: budget after boot, no growth in steady state.

``gc.collect()`` only frees everything when it runs at the top of a VM request (the WebAssembly
port scans its own stack conservatively), so each measurement is its own request.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from firmware_engines import load_into_vm

from ratepad.tools.mpvm import MicroPythonVM

pytestmark = pytest.mark.micropython

BUDGET = 32 * 1024  # heap the running firmware may hold after boot (its state, not its code)


@pytest.fixture
def vm() -> Iterator[MicroPythonVM]:
    with MicroPythonVM() as machine:
        load_into_vm(machine)
        machine.exec("import gc\nfrom sim.keypad import Bench")
        yield machine


def heap(vm: MicroPythonVM) -> int:
    vm.exec("gc.collect()")
    value: int = vm.eval("gc.mem_alloc()")
    return value


def test_heap_after_boot_is_within_budget(vm: MicroPythonVM) -> None:
    vm.exec("import rpfw.core, sim.memstorage")  # code loaded first: it is not state
    before = heap(vm)
    vm.exec("b = Bench(settings={'debounce_ms': 20})\nb.hello()\nb.received = []")
    used = heap(vm) - before
    print(f"firmware state after boot: {used} bytes")
    assert used <= BUDGET


def test_heap_does_not_grow_in_steady_state(vm: MicroPythonVM) -> None:
    vm.exec(
        "b = Bench(settings={'debounce_ms': 5, 'chord_ms': 20, 'repeat_guard_ms': 0,"
        " 'thanks_ms': 200})\n"
        "b.hello()\n"
        "b.send('time_sync', {'epoch_ms': 1800000000000})\n"
        "def burst(n):\n"
        "    for i in range(n):\n"
        "        b.press(1 + i % 5, hold_ms=50, settle_ms=300)\n"
        "    b.received = []\n"
        "def flash():\n"
        "    return sum(len(f) for f in b.storage.files.values())\n"
        "burst(100)"  # warm up: first-use allocations (caches, names, every tail slot file)
    )
    base = heap(vm) - vm.eval("flash()")
    for _ in range(5):
        vm.exec("burst(40)")
    # 200 ratings later, only the (fake, in-memory) flash may have grown
    grown = heap(vm) - vm.eval("flash()") - base
    assert vm.eval("b.core.journal.unacked()") == 0
    assert vm.eval("b.core.journal.next_seq") == 301
    assert grown <= 1024, grown
