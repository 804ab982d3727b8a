"""Run code on a real MicroPython VM: the official WebAssembly port, driven through Node.js.

:class:`MicroPythonVM` starts ``node mpvm_runner.mjs`` once and talks to it over
line-delimited JSON on pipes; every call is one synchronous request with a timeout::

    with MicroPythonVM() as vm:
        vm.add_dir(Path("firmware"))          # *.py -> /lib, importable
        vm.exec("import keypad")
        assert vm.eval("keypad.VERSION") == 3

The npm package (``@micropython/micropython-webassembly-pyscript``) is found through the
``node_modules`` argument, else ``$RATEPAD_NODE_MODULES``, else by walking up from this
file's directory and from the current directory.  ``make setup`` installs it.
"""

from __future__ import annotations

import base64
import json
import os
import posixpath
import queue
import shutil
import subprocess
import threading
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from ..errors import ToolError

__all__ = [
    "MicroPythonBridgeError",
    "MicroPythonError",
    "MicroPythonTimeout",
    "MicroPythonVM",
    "MicroPythonVMUnavailable",
    "find_node_modules",
    "missing",
]

PACKAGE = "@micropython/micropython-webassembly-pyscript"
RUNNER = Path(__file__).with_name("mpvm_runner.mjs")
NODE_MODULES_ENV = "RATEPAD_NODE_MODULES"
DEFAULT_TIMEOUT = 60.0
VM_VERSION = "1.27.0"  # the version package-lock.json pins
_SETUP_HINT = (
    f"install it with `npm install {PACKAGE}@{VM_VERSION}` (Node.js >= 18) in this folder, or "
    f"point ${NODE_MODULES_ENV} at the node_modules folder that has it (a source checkout: "
    "`make setup`)"
)


class MicroPythonError(ToolError):
    """A Python exception raised inside the VM and not caught there.

    ``type_name`` is the exception's type (e.g. ``"ValueError"``), ``traceback`` the full
    MicroPython traceback text and ``stdout`` the console output printed before it.
    """

    def __init__(self, type_name: str, traceback: str, stdout: str = "") -> None:
        super().__init__(traceback.rstrip() or type_name)
        self.type_name = type_name
        self.traceback = traceback
        self.stdout = stdout

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.type_name, self.traceback, self.stdout))


class MicroPythonVMUnavailable(ToolError, RuntimeError):
    """Node.js or the MicroPython npm package is missing."""


class MicroPythonBridgeError(ToolError, RuntimeError):
    """The bridge failed: the Node process died, or the runner reported a JS error."""


class MicroPythonTimeout(MicroPythonBridgeError, TimeoutError):
    """A request took longer than the VM's timeout; the Node process has been killed."""


def find_node_modules(explicit: Path | None = None) -> Path:
    """Return the ``node_modules`` directory that contains the MicroPython npm package.

    Raises :class:`MicroPythonVMUnavailable` if it cannot be found.
    """
    if explicit is None and os.environ.get(NODE_MODULES_ENV):
        explicit = Path(os.environ[NODE_MODULES_ENV])
    if explicit is not None:
        if (explicit / PACKAGE / "micropython.mjs").is_file():
            return explicit
        raise MicroPythonVMUnavailable(f"{PACKAGE} is not installed in {explicit}; {_SETUP_HINT}")
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for directory in (start, *start.parents):
            candidate = directory / "node_modules"
            if (candidate / PACKAGE / "micropython.mjs").is_file():
                return candidate
    raise MicroPythonVMUnavailable(f"npm package {PACKAGE} not found; {_SETUP_HINT}")


def missing() -> str | None:
    """Why the MicroPython VM cannot run here (one line), or None."""
    if shutil.which("node") is None:
        return "the micropython engine needs Node.js >= 18 (`node` is not on PATH)"
    try:
        find_node_modules()
    except MicroPythonVMUnavailable as exc:
        return f"the micropython engine cannot run: {exc}"
    return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class MicroPythonVM:
    """One MicroPython VM (WebAssembly port, run by a private Node.js process).

    State persists across calls: ``exec`` runs in the VM's ``__main__`` globals, and the
    VM has an in-memory filesystem whose ``sys.path`` is ``["", ".frozen", *sys_path]``.
    ``heap_bytes`` is the *initial* GC heap; this port adds heap areas on demand, so it
    is not a hard memory limit.  Each request must finish within ``timeout`` seconds or
    the process is killed and :class:`MicroPythonTimeout` is raised.  Use as a context
    manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        heap_bytes: int = 1024 * 1024,
        sys_path: Sequence[str] = ("/lib",),
        node_modules: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        node = shutil.which("node")
        if node is None:
            raise MicroPythonVMUnavailable(f"Node.js (`node`) not found on PATH; {_SETUP_HINT}")
        package_dir = find_node_modules(node_modules) / PACKAGE
        self.timeout = timeout
        self._next_id = 0
        self._stderr: deque[str] = deque(maxlen=50)
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._proc = subprocess.Popen(
            [
                node,
                str(RUNNER),
                f"--package-dir={package_dir}",
                f"--heap-bytes={heap_bytes}",
                f"--sys-path={json.dumps(list(sys_path))}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._finalizer = weakref.finalize(self, _kill, self._proc)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        # The reader threads must not reference self, or the finalizer could never run.
        lines, stderr_tail = self._lines, self._stderr
        self._start_reader(self._proc.stdout, lines.put, end=lambda: lines.put(None))
        self._stderr_reader = self._start_reader(
            self._proc.stderr, lambda line: stderr_tail.append(line.decode(errors="replace"))
        )
        try:
            self.version: str = self._receive()["version"]
        except BaseException:
            self.close()
            raise

    # -- public API ---------------------------------------------------------------------

    def add_files(self, files: Mapping[str, bytes]) -> None:
        """Write files into the VM filesystem (``vm_path -> content``), creating parents."""
        encoded = {path: base64.b64encode(data).decode("ascii") for path, data in files.items()}
        self._request({"op": "mount", "src_files": encoded})

    def add_dir(self, host_dir: Path, vm_dir: str = "/lib", pattern: str = "*.py") -> None:
        """Copy the files of ``host_dir`` matching the glob ``pattern`` into ``vm_dir``.

        Relative paths are kept, so ``pattern="**/*.py"`` copies packages too; use e.g.
        ``"*.mpy"`` for compiled modules.  Raises ``FileNotFoundError`` if nothing matches.
        """
        matches = sorted(p for p in host_dir.glob(pattern) if p.is_file())
        if not matches:
            raise FileNotFoundError(f"no files matching {pattern!r} in {host_dir}")
        self.add_files(
            {
                posixpath.join(vm_dir, p.relative_to(host_dir).as_posix()): p.read_bytes()
                for p in matches
            }
        )

    def exec(self, code: str) -> str:
        """Run ``code`` in the VM's ``__main__`` globals and return its console output.

        Console output is everything MicroPython wrote to stdout and stderr, in order.
        Raises :class:`MicroPythonError` if an exception escapes.  After the call the heap
        lock depth is reset to 0 (see ``micropython.heap_lock``).
        """
        return str(self._request({"op": "exec", "code": code})["stdout"])

    def exec_async(self, code: str) -> str:
        """Like :meth:`exec`, but ``code`` may use top-level ``await`` (asyncio).

        The port's asyncio runs on the JS event loop and has no ``asyncio.run``.  Unlike
        :meth:`exec`, an exception escaping while the heap is locked hangs the VM (until
        the timeout kills it).
        """
        return str(self._request({"op": "exec", "code": code, "async": True})["stdout"])

    def eval(self, expr: str) -> Any:
        """Evaluate ``expr`` in the VM and return its value, transferred as JSON.

        The value is encoded by MicroPython's ``json`` module and decoded here.  That module
        writes tuples as lists, ``bytes`` as (lossy) strings, and never raises: values it
        cannot encode come out as invalid JSON, which raises ``ValueError`` here.  Console
        output of the evaluation is discarded.
        """
        text = self._request({"op": "eval", "expr": expr})["json"]
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"eval({expr!r}): value is not JSON-serializable: {text!r}") from None

    def read_file(self, vm_path: str) -> bytes:
        """Return the contents of a file in the VM filesystem (``FileNotFoundError`` if absent)."""
        response = self._request({"op": "read", "path": vm_path})
        return base64.b64decode(response["data_b64"])

    def close(self) -> None:
        """Stop the Node process.  Idempotent."""
        proc = self._proc
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._finalizer()

    @property
    def closed(self) -> bool:
        """True once the Node process has exited."""
        return self._proc.poll() is not None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------

    @staticmethod
    def _start_reader(
        stream: IO[bytes], sink: Callable[[bytes], None], end: Callable[[], None] | None = None
    ) -> threading.Thread:
        def pump() -> None:
            for line in stream:
                sink(line)
            if end is not None:
                end()

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        return thread

    def _died(self, what: str) -> MicroPythonBridgeError:
        _kill(self._proc)
        self._stderr_reader.join(timeout=1)
        tail = "".join(self._stderr)
        return MicroPythonBridgeError(
            f"{what} (exit code {self._proc.returncode}); runner stderr:\n{tail}"
        )

    def _receive(self) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            _kill(self._proc)
            raise MicroPythonTimeout(
                f"MicroPython VM did not answer within {self.timeout} s; process killed"
            ) from None
        if line is None:
            raise self._died("MicroPython runner exited")
        try:
            response: dict[str, Any] = json.loads(line)
        except ValueError:
            raise self._died(f"runner sent a malformed line: {line[:200]!r}") from None
        return response

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.closed:
            raise MicroPythonBridgeError("the MicroPython VM is closed")
        self._next_id += 1
        request["id"] = self._next_id
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            self._proc.stdin.flush()
        except OSError:
            raise self._died("cannot write to the MicroPython runner") from None
        response = self._receive()
        if response.get("id") != self._next_id:
            raise self._died(f"runner answered out of order: {response!r}")
        if response["ok"]:
            return response
        kind, error = response.get("kind"), str(response.get("error"))
        if kind == "python":
            raise MicroPythonError(error, response["traceback"], response.get("stdout", ""))
        if kind == "fs" and error == "ENOENT":
            raise FileNotFoundError(f"{request.get('path')}: not found in the VM filesystem")
        raise MicroPythonBridgeError(f"runner error {error}: {response.get('message')}")
