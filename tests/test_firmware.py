"""Every firmware test (tests/fw/fwtest_*.py) on CPython and on the MicroPython VM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from firmware_engines import fw_test_functions, load_into_vm, run_on_cpython

from ratepad.tools.mpvm import MicroPythonError, MicroPythonVM

TESTS = fw_test_functions()
IDS = [f"{m}.{f}" for m, f in TESTS]


@pytest.mark.parametrize(("module", "function"), TESTS, ids=IDS)
def test_on_cpython(module: str, function: str) -> None:
    run_on_cpython(module, function)


_VMS: dict[str, MicroPythonVM] = {}


@pytest.fixture(scope="module")
def vms() -> Iterator[dict[str, MicroPythonVM]]:
    yield _VMS
    for vm in _VMS.values():
        vm.close()
    _VMS.clear()


@pytest.mark.micropython
@pytest.mark.parametrize(("module", "function"), TESTS, ids=IDS)
def test_on_micropython(vms: dict[str, MicroPythonVM], module: str, function: str) -> None:
    vm = vms.get(module)
    if vm is None:  # one VM per test module: tests of a module share it, modules do not
        vm = vms[module] = MicroPythonVM(timeout=600)
        load_into_vm(vm)
        vm.exec(f"import {module}")
    try:
        vm.exec(f"{module}.{function}()")
    except MicroPythonError as exc:
        pytest.fail(f"on MicroPython:\n{exc.traceback}", pytrace=False)
