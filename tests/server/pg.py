"""A throwaway PostgreSQL cluster: Debian's initdb + pg_ctl on a temporary directory and a free
port, for one test session (or one benchmark run). Never a system-wide server.

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` system user
(created by Debian's package) and every server command runs through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg


def pg_bin() -> Path | None:
    for version in ("17", "16", "15"):
        path = Path(f"/usr/lib/postgresql/{version}/bin")
        if (path / "initdb").exists():
            return path
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def as_clusters_user() -> list[str]:
    """The prefix that runs a command as the user the test clusters run as: as root, Debian's
    ``postgres`` (PostgreSQL refuses root); else the caller."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """``initdb`` + ``pg_ctl start`` in ``base``; superuser ``ratepad``, trust auth on loopback."""

    def __init__(
        self,
        base: Path | None = None,
        *,
        fsync: bool = True,
        reuse: bool = False,
        extra_conf: str = "",
    ) -> None:
        """``reuse``: start the cluster already in ``base`` if there is one (benchmarks that
        keep their generated data between runs); ``extra_conf``: more postgresql.conf lines (WAL
        archiving)."""
        bin_dir = pg_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (make setup installs it)")
        self.bin = bin_dir
        self.base = Path(base or tempfile.mkdtemp(prefix="ratepad-pg-"))
        self.base.mkdir(parents=True, exist_ok=True)  # its parents must be reachable by postgres
        self.data = self.base / "data"
        self.port = free_port()
        self.log = self.base / "postgres.log"
        self._as = as_clusters_user()
        if self._as:
            shutil.chown(self.base, "postgres", "postgres")
        self.base.chmod(0o755)
        conf = self.data / "postgresql.conf"
        if reuse and conf.exists():
            ports = [line for line in conf.read_text().splitlines() if line.startswith("port =")]
            self.port = int(ports[-1].split("=")[1])
            self.start()
            return
        self._run("initdb", "-D", str(self.data), "-U", "ratepad", "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "max_connections": "300",
            "fsync": "on" if fsync else "off",
            "shared_buffers": "128MB",
            "max_wal_size": "1GB",
        }
        with (self.data / "postgresql.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in settings.items())
            f.write(extra_conf)
        self._start_on_a_free_port()

    def _start_on_a_free_port(self) -> None:
        """Start; if another process took the port between ``free_port`` and the postmaster's
        bind (parallel test workers, other sessions on the machine), again on a new one."""
        for attempt in range(3):
            try:
                self.start()
                return
            except subprocess.CalledProcessError:
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                taken = "Address already in use" in log
                if attempt == 2 or not taken:
                    raise
            self.port = free_port()
            with (self.data / "postgresql.conf").open("a") as f:  # the last setting counts
                f.write(f"port = {self.port}\n")
            self.log.write_text("")  # the next attempt's log alone

    def as_owner(self, *argv: str) -> list[str]:
        """``argv`` run as the user the cluster runs as (pgBackRest must be that user)."""
        return [*self._as, *argv]

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.base,
        )

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://ratepad@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Until it takes connections: recovery after an immediate stop can take a minute on a
        busy disk (parallel test workers), so pg_ctl waits up to two."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self, mode: str = "immediate") -> None:
        """``immediate``: the server processes are killed and recover from the WAL."""
        self.stop(mode)
        self.start()

    @contextlib.contextmanager
    def connect(self, db: str = "postgres") -> Iterator[psycopg.Connection[Any]]:
        conn = psycopg.connect(self.url(db), autocommit=True)
        try:
            yield conn
        finally:
            conn.close()

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            suffix = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def owned_by_clusters(path: Path) -> Path:
    """``path`` (a directory) made the clusters' user's: a data directory to restore into, a
    backup repository."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def standby_of(primary: Cluster) -> Cluster:
    """A hot standby of ``primary`` in a new throwaway cluster: ``pg_basebackup -R`` (its
    standby.signal and primary_conninfo: streaming replication from the primary's port), then
    started on a port of its own."""
    base = owned_by_clusters(Path(tempfile.mkdtemp(prefix="ratepad-pg-standby-")))
    base.chmod(0o755)
    subprocess.run(
        primary.as_owner(str(primary.bin / "pg_basebackup"), "-D", str(base / "data"),
                         "-h", "127.0.0.1", "-p", str(primary.port), "-U", "ratepad", "-R",
                         "-X", "stream", "--checkpoint=fast", "--no-sync"),
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    with (base / "data" / "postgresql.conf").open("a") as f:  # the last setting counts
        f.write(f"port = {free_port()}\nunix_socket_directories = '{base}'\n")
    return Cluster(base, reuse=True)  # starts the cluster found there, on that port
