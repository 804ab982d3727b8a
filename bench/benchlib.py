"""What the server benchmarks share: a throwaway database with the test organisation loaded
and Django set up to talk to it in-process, and the median/max of repeated calls."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))

from pg import Cluster  # noqa: E402

ORG = ROOT / "tests" / "server" / "org.toml"


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and max seconds of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times)


@contextmanager
def server_database(name: str, *, sqlite: bool) -> Iterator[str]:
    """A fresh database (``sqlite``, else a database on a throwaway PostgreSQL cluster without
    fsync) made by ``ratepad server init`` with ``tests/server/org.toml`` loaded; this process's
    environment points Django at it (the test client's host allowed) and its working folder is
    a temporary one. Yields the backend's name."""
    env = {**os.environ, "RATEPAD_SECRET_KEY": f"bench-secret-of-{name}"}
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as work:
        cluster = None
        if sqlite:
            db = f"sqlite:///{work}/bench.sqlite3"
        else:
            cluster = Cluster(None, fsync=False)  # its own directory, which postgres may enter
            db = cluster.create_database(name.replace("-", "_"))
        try:
            cli = [sys.executable, "-m", "ratepad_server"]
            for args in (["init"], ["load-org", str(ORG)]):
                subprocess.run([*cli, *args, "--db", db], check=True, env=env, cwd=work,
                               capture_output=True)  # fmt: skip
            os.environ.update(env, RATEPAD_DB=db, DJANGO_SETTINGS_MODULE="ratepad_server.settings",
                              RATEPAD_ALLOWED_HOSTS="testserver")  # fmt: skip
            os.chdir(work)
            yield "SQLite" if sqlite else "PostgreSQL"
        finally:
            if cluster is not None:
                cluster.close()
