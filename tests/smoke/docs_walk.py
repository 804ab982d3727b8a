"""Walk the quick starts as a newcomer would, from the installed wheel in a fresh virtualenv and
a folder outside the checkout (called by ``wheel_smoke.py``).

A code block the walk runs is marked ``<!-- smoke -->`` on the line before it:
* ``sh`` blocks run line by line in one folder per page (``cd`` carries over); a
  ``pip install 'ratepad[…]'`` installs the wheel being tested with those extras; ``rpk_...``
  stands for the agent key the page's ``enroll-agent`` printed; a password asked on stdin gets
  a strong one.
* commands that serve until stopped (``ratepad server run``, ``agent``, ``sandbox``) pass once
  they say where they listen; they are then stopped with Ctrl-C (SIGINT).
* ``python`` blocks run as a script in that folder.
Every command must exit 0 (``ratepad doctor``: 0 or 1, its problems being this machine's) and
no output may hold a traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs" / "start").glob("*.md"))
BLOCK = re.compile(r"^[ ]*<!-- smoke -->\n[ ]*```(sh|python)\n(.*?)^[ ]*```", re.S | re.M)
SERVES = ("ratepad server run", "ratepad agent", "ratepad sandbox")
LISTENING = re.compile(r"https?://127\.0\.0\.1:\d+")
PASSWORD = "a-long-smoke-test-passphrase-7"


@dataclass
class Page:
    path: Path
    folder: Path
    env: dict[str, str]
    wheel: Path
    cwd: Path = field(init=False)
    key: str = ""

    def __post_init__(self) -> None:
        self.cwd = self.folder

    def shell(self, line: str) -> None:
        line = self._substitute(line)
        if line.split("#")[0].strip().startswith(SERVES):
            self._serve(line)
            return
        marker = self.folder / ".cwd"
        script = f"cd {shlex.quote(str(self.cwd))} && {line}\npwd > {shlex.quote(str(marker))}"
        done = subprocess.run(["bash", "-c", script], env=self.env, input=PASSWORD + "\n",
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        output = done.stdout + done.stderr
        allowed = (0, 1) if line.startswith("ratepad doctor") else (0,)
        if done.returncode not in allowed or "Traceback" in output:
            raise AssertionError(f"exit {done.returncode}: {line}\n{output[-2000:]}")
        self.cwd = Path(marker.read_text().strip())
        found = re.findall(r"rpk_[A-Za-z0-9_-]{8,}", output)
        self.key = found[-1] if found else self.key

    def _substitute(self, line: str) -> str:
        def install(m: re.Match[str]) -> str:
            extras = m.group(1) or ""
            return f"pip install -q {shlex.quote(str(self.wheel) + extras)}"

        line = re.sub(r"pip install '?ratepad(\[[a-z,]+\])?'?", install, line)
        return line.replace("rpk_...", self.key or "rpk_...")

    def _serve(self, line: str) -> None:
        proc = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=self.cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)  # fmt: skip
        assert proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                out = proc.stdout.readline()
                if not out:
                    break
                seen.append(out)
                if LISTENING.search(out):
                    break
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                rest, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rest, _ = proc.communicate()
        text = "".join(seen) + rest
        if not any(LISTENING.search(s) for s in seen) or "Traceback" in text:
            raise AssertionError(f"never said where it listens: {line}\n{text[-2000:]}")

    def python(self, code: str) -> None:
        script = self.folder / "snippet.py"
        script.write_text(code, encoding="utf-8")
        done = subprocess.run(["python", str(script)], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"the page's Python exited {done.returncode}\n{done.stderr}")


def blocks(path: Path) -> list[tuple[str, str]]:
    """The marked blocks of a page: (language, text), the text out of its list indentation."""
    return [(kind, textwrap.dedent(text)) for kind, text in BLOCK.findall(path.read_text())]


def _lines(text: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def walk(work: Path, env: dict[str, str], wheel: Path) -> list[str]:
    """Run every marked block of every quick start; one line per failed step."""
    failures = []
    for path in PAGES:
        folder = work / f"docs-{path.stem}"
        folder.mkdir()
        page = Page(path, folder, env, wheel)
        for kind, text in blocks(path):
            steps = _lines(text) if kind == "sh" else [text]
            for step in steps:
                try:
                    if kind == "sh":
                        page.shell(step)
                    else:
                        page.python(step)
                except (AssertionError, subprocess.TimeoutExpired) as exc:
                    failures.append(f"{path.relative_to(ROOT)}: {exc}")
                    break
    return failures
