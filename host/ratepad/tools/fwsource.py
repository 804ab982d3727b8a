"""The keypad firmware (MicroPython code) in this CPython process, and where its sources are.

The simulator runs the real firmware core, unchanged, on CPython; the firmware's own harness
(``firmware/sim``: the simulated keypad, fake flash, and stand-ins for MicroPython's
``micropython`` and ``machine`` modules) makes that possible.

The firmware is loaded under its own import namespace: its modules import each other as on the
keypad (``from rpfw import codec``, ``import machine``), but those names resolve inside a
:class:`FirmwareNamespace`, never through ``sys.path``. Each module is registered in
``sys.modules`` as ``ratepad._fw.<name>`` (so tracebacks, pickling and introspection work), and
``import machine`` or ``import boot`` in the host still fail as they should.

The sources are found in one way: ``$RATEPAD_FIRMWARE`` if set, else the copy shipped inside the
package (``ratepad/_data/firmware``, see :mod:`ratepad.resources`), else the ``firmware/``
folder of the source checkout.
"""

from __future__ import annotations

import builtins
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import resources
from ..errors import ToolError

ENV = "RATEPAD_FIRMWARE"
PREFIX = "ratepad._fw"

# Top-level names the CPython stand-ins answer for (MicroPython has the real ones built in).
STAND_INS = {"micropython": "sim/mp/micropython.py", "machine": "sim/mp/machine.py"}


class FirmwareNotFound(ToolError):
    """The firmware sources are not where ratepad looks for them."""


def _is_firmware(path: Path) -> bool:
    return (path / "rpfw" / "core.py").is_file()


def firmware_dir() -> Path:
    """The folder holding boot.py, main.py, rpfw/ and sim/ (see the module docstring)."""
    env = os.environ.get(ENV)
    if env:
        path = Path(env)
        if _is_firmware(path):
            return path
        raise FirmwareNotFound(f"${ENV}={env} is not a firmware folder (no rpfw/core.py in it)")
    candidates = resources.candidates(resources.FIRMWARE)
    for c in candidates:
        if _is_firmware(c):
            return c
    raise FirmwareNotFound(
        f"firmware sources not found (looked in {', '.join(map(str, candidates))}); "
        f"set ${ENV} to the firmware folder"
    )


class FirmwareNamespace:
    """Firmware modules loaded from ``roots`` under their own import namespace.

    A top-level name is the firmware's if a root holds ``<name>.py`` or ``<name>/`` (a package),
    or if it is one of the ``stand_ins`` (name -> file under the first root); any other import
    (``struct``, ``os``, ``littlefs`` ...) is the host's. Firmware modules see the namespace
    through the ``__import__`` of their own ``__builtins__``.
    """

    def __init__(
        self,
        roots: Sequence[Path],
        prefix: str = PREFIX,
        stand_ins: Mapping[str, str] | None = None,
    ) -> None:
        self.roots = [Path(r) for r in roots]
        self.prefix = prefix
        self.stand_ins = dict(STAND_INS if stand_ins is None else stand_ins)
        self.modules: dict[str, ModuleType] = {}
        self._lock = threading.RLock()
        self._builtins = dict(vars(builtins))
        self._builtins["__import__"] = self._import

    # -- finding ------------------------------------------------------------------------------
    def _locate(self, name: str) -> tuple[Path, bool] | None:
        """(file, is_package) of firmware module ``name`` (dotted), or None."""
        parts = name.split(".")
        if len(parts) == 1 and name in self.stand_ins:
            return self.roots[0] / self.stand_ins[name], False
        for root in self.roots:
            base = root.joinpath(*parts)
            if (base / "__init__.py").is_file():
                return base / "__init__.py", True
            if base.is_dir() and len(parts) == 1 and any(base.glob("*.py")):
                return base / "__init__.py", True  # a folder of modules: namespace package
            if base.with_suffix(".py").is_file():
                return base.with_suffix(".py"), False
        return None

    def owns(self, name: str) -> bool:
        top = name.partition(".")[0]
        return top in self.modules or self._locate(top) is not None

    # -- loading ------------------------------------------------------------------------------
    def import_module(self, name: str) -> ModuleType:
        """Import firmware module ``name`` (``rpfw.core``, ``sim.simkeypad``, ``machine`` ...)."""
        with self._lock:
            module = self.modules.get(name)
            if module is not None:
                return module
            parent, _, child = name.rpartition(".")
            if parent:
                self.import_module(parent)
            found = self._locate(name)
            if found is None:
                raise ModuleNotFoundError(f"no firmware module named {name!r}", name=name)
            path, is_package = found
            module = ModuleType(f"{self.prefix}.{name}")
            module.__file__ = str(path)
            module.__dict__["__builtins__"] = self._builtins
            module.__dict__["__firmware_name__"] = name
            if is_package:
                module.__path__ = [str(path.parent)]
                module.__package__ = module.__name__
            else:
                module.__package__ = f"{self.prefix}.{parent}" if parent else self.prefix
            self.modules[name] = module
            sys.modules[module.__name__] = module
            try:
                if path.is_file():
                    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
                    exec(code, module.__dict__)
            except BaseException:
                del self.modules[name]
                sys.modules.pop(module.__name__, None)
                raise
            if parent:
                setattr(self.modules[parent], child, module)
            return module

    def _import(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Iterable[str] | None = (),
        level: int = 0,
    ) -> ModuleType:
        if level:
            base = str((globals or {}).get("__firmware_name__", ""))
            is_package = "__path__" in (globals or {})
            parts = base.split(".")
            keep = len(parts) - level + (1 if is_package else 0)
            if keep < 1:
                raise ImportError("relative import beyond the firmware's top level")
            name = ".".join(parts[:keep] + ([name] if name else []))
        elif not self.owns(name):
            return builtins.__import__(name, globals, locals, fromlist or (), 0)  # type: ignore[arg-type]
        module = self.import_module(name)
        if fromlist:
            for item in fromlist:
                if item != "*" and not hasattr(module, item) and hasattr(module, "__path__"):
                    self.import_module(f"{name}.{item}")
            return module
        if level:
            return module
        return self.modules[name.partition(".")[0]]


_namespace: FirmwareNamespace | None = None
_namespace_lock = threading.Lock()


def namespace() -> FirmwareNamespace:
    """The process's firmware namespace (the sources of :func:`firmware_dir`)."""
    global _namespace
    with _namespace_lock:
        if _namespace is None:
            _namespace = FirmwareNamespace([firmware_dir()])
        return _namespace


def load(module: str) -> ModuleType:
    """Import a firmware module (``rpfw.core``, ``sim.simkeypad`` ...) on CPython."""
    return namespace().import_module(module)
