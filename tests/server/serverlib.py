"""Test and benchmark helpers: server processes, test databases, API calls."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pg import Cluster

HERE = Path(__file__).resolve().parent
SECRET = "test-secret-key-of-the-ratepad-server-test-suite"


def server_env() -> dict[str, str]:
    return {**os.environ, "RATEPAD_SECRET_KEY": SECRET, "PYTHONUNBUFFERED": "1"}


@dataclass
class Template:
    """A built test database (a PostgreSQL template database or an SQLite file)."""

    backend: str
    source: str  # template database name or SQLite path
    keys: dict[str, str]
    tokens: dict[str, str]


def build_template(url: str, backend: str, source: str, cwd: Path) -> Template:
    out = subprocess.run(
        [sys.executable, str(HERE / "make_template.py"), url],
        check=True, capture_output=True, text=True, env=server_env(), cwd=cwd,
    )  # fmt: skip
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Template(backend, source, data["keys"], data["tokens"])


class Server:
    """``ratepad server run`` in a subprocess on a free port."""

    def __init__(self, db: str, cwd: Path, *extra: str, port: int = 0) -> None:
        self.db, self.cwd, self.extra = db, cwd, extra
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.log: IO[str] = (cwd / "server.log").open("a")
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ratepad_server", "run", "--db", self.db, "--listen",
             f"127.0.0.1:{self.port}", "--allow-default-passwords", *self.extra],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=server_env(), cwd=self.cwd,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "serving on" not in line:
            self.proc.wait(10)
            raise RuntimeError(f"server did not start: {line!r}; see {self.cwd}/server.log")
        self.port = int(line.rsplit(":", 1)[1].split("/")[0])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        self.kill()
        self.start()  # the same port: agents find it again

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def call(
    base: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    method: str | None = None,
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One API call: (status, decoded JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base.rstrip("/") + path, data=data, method=method, headers=headers or {}
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def fresh_sqlite(template: Template, directory: Path) -> str:
    path = directory / "server.sqlite3"
    shutil.copyfile(template.source, path)
    return f"sqlite:///{path}"


@contextlib.contextmanager
def temp_dir() -> Any:
    path = Path(tempfile.mkdtemp(prefix="ratepad-server-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Site:
    """A fresh database for one test, and how to reach it."""

    backend: str
    db: str
    dir: Path
    keys: dict[str, str]
    tokens: dict[str, str]
    cluster: Cluster | None

    def server(self, *extra: str) -> Server:
        return Server(self.db, self.dir, *extra)

    def sql(self, statement: str) -> tuple[Any, ...] | None:
        """Run one statement on the test database, committed; its first row, if any."""
        if self.cluster is not None:
            import psycopg

            with psycopg.connect(self.db) as conn:
                cur = conn.execute(statement)
                return cur.fetchone() if cur.description else None
        import sqlite3

        conn2 = sqlite3.connect(self.db.removeprefix("sqlite:///"))
        try:
            with conn2:
                row: tuple[Any, ...] | None = conn2.execute(statement).fetchone()
            return row
        finally:
            conn2.close()


# -- upload helpers ----------------------------------------------------------------------
T0 = 1_796_000_000_000  # 2026-11-30T...Z


def rating(serial: str, seq: int, score: int = 5, *, at: int = T0, staff: str = "S001",
           flags: int = 0, prompt: int = 0) -> dict[str, Any]:  # fmt: skip
    return {
        "serial": serial, "journal_seq": seq, "boot_id": 1, "uptime_ms": seq * 1000,
        "time_ms": at + seq * 1000, "time_exact": True, "score": score, "key_count": 5,
        "level_value": [0, 40, 60, 80, 100][score - 1], "staff_id": staff, "prompt_id": prompt,
        "flags": flags,
    }  # fmt: skip


def upload(server: Server, key: str, expect: int = 200, **body: Any) -> tuple[int, Any]:
    status, answer = call(server.url, "/api/v1/ingest/batch", key, body)
    assert status == expect, answer
    return status, answer
