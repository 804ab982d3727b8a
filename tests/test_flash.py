"""`ratepad fw build` and `ratepad flash`, without a board.

The bundle's .mpy files are imported on the real MicroPython VM. Flashing runs mpremote (as
`ratepad flash` does, in a subprocess) against ratepad.tools.rawrepl_sim: a pty that speaks
MicroPython's raw REPL and runs what it receives on the VM, whose filesystem then holds the
deployed files.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ratepad import RatepadTimeout
from ratepad.tools import firmware as firmware_tools
from ratepad.tools.firmware import (
    FirmwareToolError,
    HelloUnavailable,
    Progress,
    build_bundle,
    find_pico_port,
    flash,
    set_serial_in_settings,
)
from ratepad.tools.mpvm import MicroPythonVM
from ratepad.tools.rawrepl_sim import RawReplSim
from ratepad.wire import codec

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
VERSION = firmware_tools._read_firmware_facts(FIRMWARE)[0]
# rpfw modules that import without a board (no machine/USB)
PURE_MODULES = ["codec", "core", "debounce", "journal", "rules", "settings", "storage", "ticks"]

pytestmark = pytest.mark.timeout(120)


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    build_bundle(out)
    return out


def bundle_files(bundle: Path) -> dict[str, bytes]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    return {"/" + e["path"]: (bundle / e["path"]).read_bytes() for e in manifest["files"]}


@pytest.fixture
def sim() -> Iterator[RawReplSim]:
    with RawReplSim() as board:
        yield board


# --- fw build -----------------------------------------------------------------------------------
@pytest.mark.micropython
def test_fw_build_json_output_and_mpy_files_that_import_on_micropython(tmp_path: Path) -> None:
    out = run("fw", "build", "--out", str(tmp_path / "fw"), "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[0]["board"] == "pico"
    assert events[-1]["event"] == "done"
    files = [e for e in events if e["event"] == "file"]
    sources = sorted((FIRMWARE / "rpfw").glob("*.py"))
    mpys = {p.name for p in (tmp_path / "fw" / "lib" / "rpfw").iterdir()}
    assert mpys == {p.stem + ".mpy" for p in sources}
    assert {e["path"] for e in files} >= {f"lib/rpfw/{name}" for name in mpys}
    assert events[-1]["files"] == len(files) + 1  # + board.json

    lib = tmp_path / "fw" / "lib"
    assert not list(lib.rglob("*.py"))  # nothing of rpfw ships as source
    with MicroPythonVM(timeout=30) as vm:
        vm.add_files({f"/lib/rpfw/{p.name}": p.read_bytes() for p in (lib / "rpfw").iterdir()})
        vm.exec("import " + ", ".join(f"rpfw.{m}" for m in PURE_MODULES))
        assert vm.eval("rpfw.core.VERSION") == VERSION
        assert vm.eval("rpfw.codec.SCHEMA_FINGERPRINT") == codec.SCHEMA_FINGERPRINT
        # every module came from an .mpy file, none from source
        assert all(str(f).endswith(".mpy") for f in vm.eval("[m.__file__ for m in [rpfw.core]]"))
        # the compiled journal works: append a rating, reopen, read it back
        vm.exec(
            "from rpfw.storage import FileStorage\n"
            "from rpfw.settings import Settings\n"
            "s = Settings(FileStorage('/journal')); s.set('serial', 'RP-9'); s.set('keys', '3')\n"
            "t = Settings(FileStorage('/journal')); t.load()\n"
        )
        assert vm.eval("(t.get('serial'), t.get('keys'), t.damaged)") == ["RP-9", 3, False]


def test_board_json_describes_the_bundle(bundle: Path) -> None:
    board = json.loads((bundle / "board.json").read_text())
    assert board["board"] == "pico" and board["mcu"] == "RP2040"
    assert board["firmware_version"] == VERSION
    assert board["protocol_version"] == codec.PROTOCOL_VERSION
    assert board["schema_fingerprint"] == codec.SCHEMA_FINGERPRINT
    assert board["mpy_version"] == 6 and "mpy-cross" in board["mpy_cross"]
    assert board["micropython_min"] == "1.24"
    listed = {e["path"]: e for e in board["files"]}
    assert "board.json" not in listed
    for path, entry in listed.items():
        data = (bundle / path).read_bytes()
        assert entry == {
            "path": path,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if path.endswith(".mpy"):
            assert data[:2] == b"M\x06"
    manifest = json.loads((bundle / "manifest.json").read_text())
    paths = [e["path"] for e in manifest["files"]]
    assert set(paths) == {*listed, "board.json"}
    # deploy order: the library first, the entry points last
    tail = [p for p in paths if not p.startswith("lib/")]
    assert tail == [p for p in ["board.json", "boot.py", "main.py"] if p in paths]


def fake_firmware(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(FIRMWARE / "rpfw", src / "rpfw")
    (src / "boot.py").write_text("print('boot')\n")
    (src / "main.py").write_text("print('main')\n")
    return src


def test_fw_build_copies_boot_and_main_as_source_and_drops_stale_files(tmp_path: Path) -> None:
    src = fake_firmware(tmp_path)
    out = tmp_path / "out"
    (out / "lib" / "rpfw").mkdir(parents=True)
    (out / "lib" / "rpfw" / "gone.mpy").write_bytes(b"M\x06old")
    result = run("fw", "build", "--src", str(src), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "boot.py").read_text() == "print('boot')\n"
    assert (out / "main.py").read_text() == "print('main')\n"
    assert not (out / "boot.mpy").exists() and not (out / "lib" / "rpfw" / "gone.mpy").exists()
    assert "built firmware" in result.stdout.splitlines()[-1]
    assert "lib/rpfw/core.mpy" in result.stdout


def test_fw_build_replaces_the_bundle_whole_or_not_at_all(tmp_path: Path) -> None:
    src = fake_firmware(tmp_path)
    out = tmp_path / "out"
    build_bundle(out, src=src)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (src / "rpfw" / "extra.py").write_text("X = 1\n")

    def reader_gone(event: firmware_tools.Progress) -> None:
        if event.kind == "file":  # half way: files of the new bundle written
            raise BrokenPipeError

    with pytest.raises(BrokenPipeError):
        build_bundle(out, src=src, listener=reader_gone)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # nothing left beside
    read, write = os.pipe()
    os.close(read)  # `| head` gone already: the command says so and exits 1
    with os.fdopen(write, "wb") as closed:
        done = subprocess.run(
            [sys.executable, "-m", "ratepad", "fw", "build", "--src", str(src), "--out", str(out)],
            stdout=closed, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1 and "the output was closed" in done.stderr, done.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    line = one_error_line(run("fw", "build", "--src", str(src), "--out", str(tmp_path / "mine")))
    assert "holds other files (notes.txt)" in line


def test_fw_build_errors_are_one_line(tmp_path: Path) -> None:
    line = one_error_line(run("fw", "build", "--src", str(tmp_path), "--out", str(tmp_path / "o")))
    assert "not a firmware folder" in line

    src = fake_firmware(tmp_path)
    (src / "rpfw" / "broken.py").write_text("def f(:\n    pass\n")
    line = one_error_line(run("fw", "build", "--src", str(src), "--out", str(tmp_path / "o")))
    assert "mpy-cross failed on rpfw/broken.py: SyntaxError" in line

    (src / "rpfw" / "broken.py").unlink()
    gen = src / "rpfw" / "codec.py"
    gen.write_text(gen.read_text().replace("SCHEMA_FINGERPRINT = 0x", "SCHEMA_FINGERPRINT = 0x1"))
    line = one_error_line(run("fw", "build", "--src", str(src), "--out", str(tmp_path / "o")))
    assert "is stale" in line and "make generate" in line


# --- flash onto the simulated board -------------------------------------------------------------
@pytest.mark.micropython
def test_flash_deploys_the_bundle_and_the_serial_number(bundle: Path, sim: RawReplSim) -> None:
    sim.add_files(
        {
            "/journal/settings": b"keys=4\nserial=OLD-1\nbuzzer=1\n",
            "/lib/rpfw/core.py": b"VERSION = 'stale source shadowing core.mpy'\n",
        }
    )
    out = run(
        "flash", "--port", sim.port, "--serial", "RP-0001", "--bundle", str(bundle), "--no-verify"
    )
    assert out.returncode == 0, out.stderr
    files = bundle_files(bundle)
    for path, data in files.items():
        assert sim.read_file(path) == data, path
    assert sim.read_file("/journal/settings") == b"keys=4\nbuzzer=1\nserial=RP-0001\n"
    with pytest.raises(FileNotFoundError):
        sim.read_file("/lib/rpfw/core.py")
    assert sim.soft_resets == 1

    lines = out.stdout.splitlines()
    assert "micropython" in lines[1] and "Raspberry Pi Pico" in lines[1]
    assert "removed stale /lib/rpfw/core.py" in lines
    assert sum(line.startswith("[") for line in lines) == len(files)
    assert f"firmware {VERSION} imports on the board" in out.stdout
    assert "serial number RP-0001 written to /journal/settings" in lines
    assert lines[-1] == f"flashed firmware {VERSION} onto {sim.port} (serial RP-0001)"
    assert out.stderr == "ratepad flash: warning: not verified (--no-verify)\n"

    # The firmware's own settings code reads what was written.
    check = sim.exec(
        "from rpfw.settings import Settings\nfrom rpfw.storage import FileStorage\n"
        "s = Settings(FileStorage('/journal')); s.load()\n"
        "print(s.get('serial'), s.get('keys'), s.get('buzzer'), s.damaged)"
    )
    assert check == "RP-0001 4 1 False\n"

    # Again, with --json: nothing to copy, one JSON object per line.
    again = run("flash", "--port", sim.port, "--bundle", str(bundle), "--json", "--no-verify")
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines()]
    copies = [e for e in events if e["event"] == "copy"]
    assert len(copies) == len(files) and not any(e["copied"] for e in copies)
    assert events[-1]["event"] == "done" and events[-1]["serial"] is None
    assert sim.read_file("/journal/settings").endswith(b"serial=RP-0001\n")


@pytest.mark.micropython
def test_flash_onto_a_fresh_micropython_without_lib(bundle: Path, sim: RawReplSim) -> None:
    """A freshly flashed MicroPython v1.28.0 has an empty filesystem (no /lib, no /journal; the
    real rp2 binary, tests/test_fakes_vs_rp2040.py); its os.mkdir makes one level at a time
    (ENOENT otherwise), so /lib comes before /lib/rpfw."""
    assert sim.exec("import os\nprint(os.listdir('/'))") == "[]\n"
    assert "[Errno 2] ENOENT" in sim.exec(
        "import os\ntry:\n    os.mkdir('/lib/rpfw')\nexcept OSError as e:\n    print(e)"
    )
    with pytest.raises(FileNotFoundError):
        sim.read_file("/lib/rpfw/core.mpy")
    out = run(
        "flash", "--port", sim.port, "--serial", "RP-0002", "--bundle", str(bundle), "--no-verify"
    )
    assert out.returncode == 0, out.stderr
    for path, data in bundle_files(bundle).items():
        assert sim.read_file(path) == data, path
    assert sim.read_file("/journal/settings").endswith(b"serial=RP-0002\n")


@pytest.mark.micropython
def test_flash_checks_the_hello_read_after_the_reset(bundle: Path, sim: RawReplSim) -> None:
    good = codec.Hello(
        protocol_version=codec.PROTOCOL_VERSION,
        schema_fingerprint=codec.SCHEMA_FINGERPRINT,
        key_count=5,
        capabilities=codec.Capabilities(0),
        journal_capacity=20000,
        journal_used=0,
        boot_count=1,
        uptime_ms=5,
        serial="RP-0002",
        firmware_version=VERSION,
        board="pico",
        acked_seq=0,
    )
    asked: list[tuple[str | None, float]] = []
    events: list[Progress] = []

    def reader(serial: str | None, timeout: float) -> codec.Hello:
        asked.append((serial, timeout))
        return good

    result = flash(
        bundle, port=sim.port, serial="RP-0002", hello_reader=reader, listener=events.append
    )
    assert asked == [("RP-0002", 15.0)]
    assert result.hello == good and result.problems == [] and result.micropython == sim.vm.version
    assert events[-2].kind == "verified" and events[-1].fields["verified"] is True

    stale = good._replace(firmware_version="0.0.1", serial="RP-0003")
    result = flash(bundle, port=sim.port, serial="RP-0002", hello_reader=lambda s, t: stale)
    assert result.problems == [
        f"the keypad's hello says firmware_version='0.0.1', expected {VERSION!r}",
        "the keypad's hello says serial='RP-0003', expected 'RP-0002'",
    ]

    def unavailable(serial: str | None, timeout: float) -> codec.Hello:
        raise HelloUnavailable("no USB here")

    events.clear()
    result = flash(bundle, port=sim.port, hello_reader=unavailable, listener=events.append)
    assert result.problems == [] and result.hello is None
    assert [e.message for e in events if e.kind == "warning"] == ["not verified: no USB here"]

    def silent(serial: str | None, timeout: float) -> codec.Hello:
        raise RatepadTimeout("hid://: no hello from the keypad in 15 s")

    result = flash(bundle, port=sim.port, hello_reader=silent)
    assert result.problems == [
        "no hello from the keypad after the reset: hid://: no hello from the keypad in 15 s"
    ]


# --- flash errors -------------------------------------------------------------------------------
def test_flash_no_such_port(bundle: Path) -> None:
    line = one_error_line(
        run("flash", "--port", "/dev/ratepad-no-such-port", "--bundle", str(bundle))
    )
    assert line.startswith("ratepad flash: error: no such port: /dev/ratepad-no-such-port")


@pytest.mark.micropython
def test_flash_refuses_an_old_micropython(bundle: Path) -> None:
    with RawReplSim(version=(1, 20, 0)) as old:
        line = one_error_line(run("flash", "--port", old.port, "--bundle", str(bundle)))
        assert "runs MicroPython 1.20.0" in line
        assert "needs MicroPython >= 1.24" in line
        with pytest.raises(FileNotFoundError):
            old.read_file("/boot.py")  # nothing was copied


@pytest.mark.micropython
def test_flash_refuses_a_keypad_running_normally(bundle: Path, sim: RawReplSim) -> None:
    # What boot.py leaves behind in normal mode (HID on, device loop and watchdog running).
    sim.exec(
        "import sys\nclass usbhid:\n    MAINTENANCE = False\nsys.modules['rpfw.usbhid'] = usbhid"
    )
    line = one_error_line(run("flash", "--port", sim.port, "--bundle", str(bundle)))
    assert "running normally, not in maintenance mode" in line and "hold key 1" in line


def test_flash_board_not_answering(bundle: Path) -> None:
    master, slave = os.openpty()  # a serial port where nobody answers
    try:
        port = os.ttyname(slave)
        line = one_error_line(
            run("flash", "--port", port, "--bundle", str(bundle), "--timeout", "1")
        )
        assert f"no answer from a MicroPython REPL on {port} within 1 s" in line
        assert "hold key 1 while plugging it back in" in line
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.micropython
def test_flash_port_busy(bundle: Path, sim: RawReplSim) -> None:
    other = os.open(sim.port, os.O_RDWR | os.O_NOCTTY)  # another program holds the port,
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked as pyserial locks it
        line = one_error_line(run("flash", "--port", sim.port, "--bundle", str(bundle)))
    finally:
        os.close(other)
    assert f"port {sim.port} is busy" in line


def test_flash_permission_denied_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import serial

    def denied(*args: Any, **kwargs: Any) -> None:
        raise serial.SerialException(errno.EACCES, "could not open port /dev/ttyACM0")

    monkeypatch.setattr(serial, "Serial", denied)
    assert "permission denied on /dev/ttyACM0" in firmware_tools._diagnose_open_failure(
        "/dev/ttyACM0"
    )


def test_flash_bad_serial_number_or_bundle(tmp_path: Path, bundle: Path) -> None:
    for bad in ["", "X" * 17, "RP-ü", "RP\t1", " RP-1"]:
        line = one_error_line(
            run("flash", "--port", "/dev/null", "--serial", bad, "--bundle", str(bundle))
        )
        assert "serial number" in line, bad
    line = one_error_line(run("flash", "--port", "/dev/null", "--bundle", str(tmp_path)))
    assert f"no firmware bundle in {tmp_path}: run `ratepad fw build` first" in line


def test_port_auto_detection() -> None:
    pico = SimpleNamespace(device="/dev/ttyACM1", vid=0x2E8A)
    other = SimpleNamespace(device="/dev/ttyUSB0", vid=0x10C4)
    assert find_pico_port([other, pico]) == "/dev/ttyACM1"
    with pytest.raises(FirmwareToolError, match=r"no board found.*hold key 1"):
        find_pico_port([other, SimpleNamespace(device="/dev/ttyS0", vid=None)])
    with pytest.raises(FirmwareToolError, match=r"several Picos.*--port"):
        find_pico_port([pico, SimpleNamespace(device="/dev/ttyACM0", vid=0x2E8A)])


def test_flash_without_a_port_and_no_board(bundle: Path) -> None:
    with pytest.raises(FirmwareToolError, match=r"^no board found"):
        flash(bundle, comports=[])


def test_set_serial_in_settings_keeps_the_other_lines() -> None:
    assert set_serial_in_settings(b"", "A") == b"serial=A\n"
    assert set_serial_in_settings(b"keys=3\nserial=B\nbogus\n", "C") == b"keys=3\nbogus\nserial=C\n"
    assert set_serial_in_settings(b"serialx=1\nserial=\n", "D") == b"serialx=1\nserial=D\n"
