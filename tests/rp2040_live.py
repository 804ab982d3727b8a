"""The emulated Pico for the tools' tests: the image ``test_rp2040_engine.use_shared_image``
names; a test that needs it skips with the one-line reason when Node.js, rp2040js or the image
is missing."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_rp2040_engine import use_shared_image

from ratepad.sim.rp2040 import Harness, missing
from ratepad.sim.rp2040.console import PicoConsole

PROBES = Path(__file__).resolve().parent / "rp2040_probes"


@contextmanager
def harness() -> Iterator[Harness]:
    """One emulator process, or a skip with the reason."""
    with pytest.MonkeyPatch.context() as mp:
        use_shared_image(mp)
        reason = missing()
        if reason is not None:
            pytest.skip(reason)
        pytest.importorskip("mpremote", reason="the tools' tests need mpremote")
        with Harness() as h:
            yield h


def mpremote(port: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real mpremote against ``port``."""
    return subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", port, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def probe(port: str, name: str) -> Any:
    """What a probe of tests/rp2040_probes/ prints (a Python literal) on the board at ``port``."""
    out = mpremote(port, "run", str(PROBES / name))
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip())


def wait_for(board: PicoConsole, done: Callable[[], bool], what: str, wall_s: float = 60) -> None:
    """Until ``done()`` (asked with the Pico's lock held) while the console runs the Pico;
    bounded by ``wall_s`` seconds."""
    end = time.monotonic() + wall_s
    stop = threading.Event()
    while True:
        with board.lock:
            if done():
                return
        assert board.error is None, f"the emulator failed: {board.error}"
        assert time.monotonic() < end, f"not {what} after {wall_s:g} s"
        stop.wait(0.05)
