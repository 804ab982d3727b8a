"""Database failover without loss (docs/failover.md), on one machine:

    pg_auto_failover monitor ── watches ──┬─ node1: primary  ─ synchronous ─┐
                                          └─ node2: standby  ◄─ replication ┘
    ratepad server --db postgresql://…@127.0.0.1:P1,127.0.0.1:P2/ratepad   (multi-host URL)
    agents A (K1, K2) and B (K3), real ``ratepad agent`` processes, uploading

While the agents upload, node1's machine dies (its pg_autoctl and PostgreSQL SIGKILLed); the
monitor promotes node2; the server answers 503 meanwhile and its next connections find node2;
the agents' outboxes hold every batch until the new primary commits it. At the end every
rating is on the server exactly once and ``ratepad server rollups --check`` passes. The pause is
printed (measured, not asserted).

The three nodes are throwaway (``pg_autoctl create`` on a temporary directory and free ports,
as the user the test clusters run as); pg_auto_failover's timeouts are shortened for the test
(its documented settings, see ``FAST_MONITOR``), so that a failover takes seconds, not a
minute.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ratepad_server.dbfail import RETRY_AFTER_S

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from pg import as_clusters_user, free_port, pg_bin, wait_for
from serverlib import Server, Site, call, rating, server_env, upload
from test_agent_kill import RATINGS, Helper
from test_server_exactly_once import AgentProc, agent_pending
from webclient import WebClient

AUTOCTL = shutil.which("pg_autoctl")


def _extension_missing() -> bool:
    """pg_auto_failover's extension is built per PostgreSQL version (Debian's layout)."""
    bin_dir = pg_bin()
    version = bin_dir.parent.name if bin_dir is not None else "?"
    return not Path(f"/usr/share/postgresql/{version}/extension/pgautofailover.control").exists()


needs_autoctl = pytest.mark.skipif(
    AUTOCTL is None or _extension_missing(),
    reason="pg_auto_failover (pg_autoctl and its extension for the installed PostgreSQL) is"
    " missing: make setup installs it",
)
SECONDS = 15.0  # the keypads' production time; the primary dies a few seconds in
# pg_auto_failover's monitor settings (docs: "Configuring pg_auto_failover"), shortened from
# 5 s / 5 s / 2 retries / 2 s / 20 s / 30 s
FAST_MONITOR = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "3000",
    "pgautofailover.primary_demote_timeout": "5000",
}
# the keeper's own: a primary that sees neither monitor nor standby this long demotes itself;
# kept below primary_demote_timeout, as the defaults (20 s, 30 s) are
FAST_KEEPER = {"timeout.network_partition_timeout": "3"}


class Formation:
    """A pg_auto_failover monitor and two PostgreSQL nodes, each ``pg_autoctl run`` in a
    session of its own (killing the session is the machine dying)."""

    def __init__(
        self, monitor: dict[str, str] | None = None, keeper: dict[str, str] | None = None
    ) -> None:
        """``monitor``, ``keeper``: settings (default: the test's short timeouts)."""
        self.monitor_settings = FAST_MONITOR if monitor is None else monitor
        self.keeper_settings = FAST_KEEPER if keeper is None else keeper
        bin_dir = pg_bin()
        assert bin_dir is not None and AUTOCTL is not None
        self.pg_ctl = str(bin_dir / "pg_ctl")
        self.base = Path(tempfile.mkdtemp(prefix="ratepad-pgaf-"))
        self._as = as_clusters_user()
        if self._as:
            shutil.chown(self.base, "postgres", "postgres")
        self.base.chmod(0o755)
        self.user = "postgres" if self._as else getpass.getuser()  # the nodes' superuser
        # pg_autoctl keeps its configuration and state under XDG directories: here, not home
        xdg = {k: str(self.base / "xdg" / k.lower()) for k in
               ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR")}  # fmt: skip
        self._env = ["env", *(f"{k}={v}" for k, v in xdg.items())]
        self.ports = {"monitor": free_port(), "node1": free_port(), "node2": free_port()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._orphans: list[str] = []  # shared memory of a killed postmaster, removed at close

    # -- commands --------------------------------------------------------------------------
    def _argv(self, *args: str) -> list[str]:
        return [*self._as, *self._env, str(AUTOCTL), *args]

    def autoctl(self, *args: str) -> None:
        """One pg_autoctl command, waited for (at most a minute: then it and the PostgreSQL it
        may have started are killed)."""
        with (self.base / "autoctl.log").open("ab") as log:
            proc = subprocess.Popen(self._argv(*args), stdout=log, stderr=log, cwd=self.base,
                                    start_new_session=True)  # fmt: skip
        try:
            status = proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if status != 0:
            tail = (self.base / "autoctl.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"pg_autoctl {' '.join(args[:2])} failed ({status}):\n{tail}")

    def _run(self, name: str) -> None:
        log = (self.base / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            self._argv("run", "--pgdata", str(self.base / name)),
            stdout=log, stderr=log, cwd=self.base, start_new_session=True,
        )  # fmt: skip
        log.close()

    @property
    def monitor_url(self) -> str:
        return f"postgresql://autoctl_node@127.0.0.1:{self.ports['monitor']}/pg_auto_failover"

    def url(self, db: str = "ratepad") -> str:
        """The server's URL: every node, the first that takes writes wins."""
        hosts = ",".join(f"127.0.0.1:{self.ports[n]}" for n in ("node1", "node2"))
        return f"postgresql://{self.user}@{hosts}/{db}?target_session_attrs=read-write"

    def node_url(self, name: str, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.ports[name]}/{db}"

    # -- life ------------------------------------------------------------------------------
    def start(self, fill: Callable[[str], None]) -> None:
        """Monitor, node1 (filled by ``fill(url of its ratepad database)`` while it is alone:
        no synchronous standby to wait for yet), then node2, which copies it."""
        common = ["--pgctl", self.pg_ctl, "--hostname", "127.0.0.1", "--auth", "trust",
                  "--no-ssl"]  # fmt: skip
        monitor = str(self.base / "monitor")
        self.autoctl("create", "monitor", "--pgdata", monitor, "--pgport",
                     str(self.ports["monitor"]), *common)  # fmt: skip
        self.autoctl("config", "set", "--pgdata", monitor, "postgresql.listen_addresses",
                     "127.0.0.1")  # fmt: skip
        with (self.base / "monitor" / "postgresql.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in self.monitor_settings.items())
        self._run("monitor")
        wait_for(self._monitor_up, 30, "the monitor", interval=0.2)
        self._create_node("node1", common)
        wait_for(self._node1_alone, 60, "node1 single", interval=0.2)
        with psycopg.connect(self.node_url("node1"), autocommit=True) as conn:
            # pg_basebackup asks for a spread checkpoint (minutes on an idle cluster): no spread
            conn.execute("ALTER SYSTEM SET checkpoint_completion_target = 0")
            conn.execute("SELECT pg_reload_conf()")
        fill(self.node_url("node1", "ratepad"))
        self._create_node("node2", common)
        wait_for(
            lambda: self.states() == {"node1": ("primary", "primary"),
                                      "node2": ("secondary", "secondary")},
            90, "node1 primary, node2 its synchronous standby", interval=0.2,
        )  # fmt: skip

    def _create_node(self, name: str, common: list[str]) -> None:
        pgdata = str(self.base / name)
        self.autoctl("create", "postgres", "--pgdata", pgdata, "--pgport", str(self.ports[name]),
                     "--name", name, "--listen", "127.0.0.1", "--dbname", "ratepad",
                     "--monitor", f"{self.monitor_url}?sslmode=disable", *common)  # fmt: skip
        for key, value in self.keeper_settings.items():
            self.autoctl("config", "set", "--pgdata", pgdata, key, value)
        self._run(name)

    def _node1_alone(self) -> bool:
        return self.states().get("node1") == ("single", "single") and writable(
            self.node_url("node1")
        )

    def _monitor_up(self) -> bool:
        try:
            with psycopg.connect(self.monitor_url, connect_timeout=2) as conn:
                conn.execute("SELECT 1 FROM pgautofailover.node LIMIT 1")
            return True
        except psycopg.Error:
            return False

    def states(self) -> dict[str, tuple[str, str]]:
        """node name → (reported state, assigned state), as the monitor has them."""
        try:
            with psycopg.connect(self.monitor_url, connect_timeout=2) as conn:
                rows = conn.execute(
                    "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node"
                ).fetchall()
        except psycopg.Error:
            return {}
        return {name: (reported, goal) for name, reported, goal in rows}

    def kill(self, name: str) -> None:
        """The node's machine dies: its pg_autoctl and PostgreSQL, SIGKILLed together."""
        pid_file = self.base / name / "postmaster.pid"
        lines = pid_file.read_text().splitlines() if pid_file.exists() else []
        if len(lines) > 6 and len(lines[6].split()) == 2:
            self._orphans.append(lines[6].split()[1])  # "key shmid": SysV memory left behind
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        """Every node killed (throwaway: nothing to shut down cleanly), its memory freed."""
        for name in list(self.procs):
            self.kill(name)
        for shmid in self._orphans:
            subprocess.run([*self._as, "ipcrm", "-m", shmid], capture_output=True, check=False)
        # three data directories: seconds to delete on a busy disk, and nobody waits for them
        subprocess.Popen(["rm", "-rf", "--", str(self.base)], start_new_session=True)


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return list(conn.execute(sql, params or None).fetchall())


def writable(url: str) -> bool:
    """A connection through the multi-host URL reaches a node that commits a write (on a
    primary that waits for its synchronous standby, once that has it too)."""
    try:
        with psycopg.connect(url, connect_timeout=1) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS probe (at timestamptz)")
            conn.execute("INSERT INTO probe VALUES (now())")
        return True
    except psycopg.Error:
        return False


def copy_database(source: str) -> Callable[[str], None]:
    """Fills an empty database with ``source``'s schema and rows (the test template: seconds,
    where migrating takes tens of seconds)."""
    bin_dir = pg_bin()
    assert bin_dir is not None
    dump = subprocess.run(
        [str(bin_dir / "pg_dump"), "-Fc", "--no-owner", "--no-privileges", "-d", source],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip

    def fill(target: str) -> None:
        subprocess.run(
            [str(bin_dir / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
             "--single-transaction", "-d", target],
            input=dump, check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    return fill


@needs_autoctl
@pytest.mark.timeout(300)  # its setup may build the worker's cluster and templates first
@pytest.mark.parametrize("site", ["postgresql"], indirect=True)
def test_primary_dies_while_agents_upload_and_nothing_is_lost(site: Site, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    formation = Formation()
    helper: Helper | None = None
    server: Server | None = None
    agents: dict[str, AgentProc] = {}
    try:
        started = time.monotonic()
        formation.start(copy_database(site.db))
        formed = time.monotonic()
        url = formation.url()
        server = Server(url, tmp_path)
        helper = Helper(seed, seconds=SECONDS)
        kp = f"tcp://127.0.0.1:{helper.port}"
        agents = {
            "BJ-001": AgentProc(tmp_path / "a", [f"{kp}/K1", f"{kp}/K2"], server.url,
                                site.keys["BJ-001"]),
            "BJ-002": AgentProc(tmp_path / "b", [f"{kp}/K3"], server.url, site.keys["BJ-002"]),
        }  # fmt: skip
        count = "SELECT COUNT(*) FROM ingest_rating"
        wait_for(lambda: rows(url, count)[0][0] >= 300, 30, "uploads flowing", interval=0.2)

        # every commit answered so far is on the standby too
        assert rows(url, "SHOW synchronous_standby_names")[0][0].startswith("ANY 1 (")
        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        formation.kill("node1")
        wait_for(lambda: writable(formation.url("postgres")), 90, "a new primary", interval=0.2)
        promoted = time.monotonic()

        deadline = time.monotonic() + 60  # the keypads finish, the outboxes drain
        while True:
            status = helper.status()
            done = status["done"] and all(k["unacked"] == 0 for k in status["keypads"].values())
            if done and all(agent_pending(a.db) == 0 for a in agents.values()):
                break
            assert time.monotonic() < deadline, (
                f"not converging (seed {seed}): {[agent_pending(a.db) for a in agents.values()]}"
            )
            time.sleep(0.3)
        for a in agents.values():
            assert a.stop() == 0

        # every rating exactly once, with its score, in its window
        on_server = rows(
            url,
            "SELECT r.serial, r.journal_seq, r.score, w.code FROM ingest_rating r"
            " LEFT JOIN org_window w ON w.id = r.window_id",
        )
        keys = [(s, q) for s, q, _, _ in on_server]
        assert len(keys) == len(set(keys)), f"duplicates on the server (seed {seed})"
        windows = {"K1": "BJ-001-W1", "K2": "BJ-001-W2", "K3": "BJ-002-W1"}
        expected = {
            (serial, seq): (score, windows[serial])
            for serial, k in status["keypads"].items()
            for seq, score in enumerate(k["scores"], start=1)
        }
        assert len(expected) == 3 * RATINGS
        got = {(s, q): (score, w) for s, q, score, w in on_server}
        missing = sorted(set(expected) - set(got))
        assert not missing, f"{len(missing)} ratings lost in the failover (seed {seed})"
        assert got == expected, f"seed {seed}"
        # the trade-off (docs/failover.md): its standby gone, the new primary took all that
        # with synchronous replication off, one copy
        assert formation.states()["node2"] == ("wait_primary", "wait_primary")
        assert rows(url, "SHOW synchronous_standby_names") == [("",)]
        assert rows(url, "SELECT COUNT(*) FROM ingest_ratingkey")[0][0] == len(expected)
        assert rows(url, "SELECT SUM(n_all) FROM rollups_hourrollup")[0][0] == len(expected)
        check = subprocess.run(
            [sys.executable, "-m", "ratepad_server", "rollups", "--check", "--db", url],
            capture_output=True, text=True, env=server_env(), cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr

        # the pause as the server saw it: from the last rating stored before the kill to the
        # first after (the keypads made ratings all along)
        before, after = rows(
            url,
            "SELECT (SELECT MAX(received_at) FROM ingest_rating WHERE received_at < %s),"
            " (SELECT MIN(received_at) FROM ingest_rating WHERE received_at >= %s)",
            killed_at, killed_at,
        )[0]  # fmt: skip
    finally:
        for a in agents.values():
            if a.proc is not None and a.proc.poll() is None:
                a.kill()
        if helper is not None:
            helper.close()
        if server is not None:
            server.close()
        formation.close()

    server_log = (tmp_path / "server.log").read_text()
    print(
        f"\nfailover: formation up in {formed - started:.1f} s; primary killed → new primary"
        f" takes writes in {promoted - killed:.1f} s; ingest paused"
        f" {(after - before).total_seconds():.1f} s (last rating stored before the kill →"
        f" first after); {server_log.count('answered 503')} requests answered 503"
    )
    # the server said 503 while the database was away, never 500; the agents kept quiet
    assert "answered 503" in server_log
    assert "Traceback" not in server_log, server_log[-3000:]
    assert "Internal Server Error" not in server_log, server_log[-3000:]
    for a in agents.values():
        text = (a.db.parent / "agent.log").read_text()
        assert "Traceback" not in text, text[-3000:]


@pytest.mark.parametrize("site", ["postgresql"], indirect=True)
def test_database_away_is_503_with_retry_after_and_the_next_request_reconnects(
    site: Site,
) -> None:
    """One node, stopped and started under a running server: 503 with Retry-After (JSON under
    /api/, a page elsewhere) while it is away, never a 500; a request after it is back is
    served on a new connection."""
    assert site.cluster is not None
    server = site.server()
    try:
        key = site.keys["BJ-001"]
        upload(server, key, ratings=[rating("K1", 1)])
        browser = WebClient(server.url)
        browser.headers["Accept-Language"] = "en"
        browser.get("/login/")  # the form's CSRF cookie
        site.cluster.stop("immediate")
        try:
            status, answer = call(server.url, "/api/v1/ingest/batch", key,
                                  {"ratings": [rating("K1", 2)]},
                                  headers={"Accept-Language": "en"})  # fmt: skip
            assert status == 503, answer
            assert "database" in answer["detail"]
            status, page = browser.post("/login/", {"username": "hq-admin", "password": "x"})
            assert status == 503 and b"database" in page, page
            assert browser.last_headers["Retry-After"] == str(RETRY_AFTER_S)
        finally:
            site.cluster.start()
        upload(server, key, ratings=[rating("K1", 2)])  # the next request reconnects
        upload(server, key, ratings=[rating("K1", 2)])  # and nothing is stored twice
    finally:
        server.close()
    row = site.sql("SELECT COUNT(*) FROM ingest_rating")
    assert row is not None and row[0] == 2
    log = (site.dir / "server.log").read_text()
    assert "answered 503" in log
    assert "Traceback" not in log and "Internal Server Error" not in log, log[-3000:]


def test_a_failover_group_url_names_every_node() -> None:
    """libpq's multi-host form passes through as host and port lists, with the failover
    group's defaults unless the URL sets them; a single host's URL is as before."""
    from ratepad_server.dburl import DatabaseURLError, parse_db_url

    db = parse_db_url("postgresql://rp:p%40ss@db1:5432,db2:5433,[fd00::3]/ratepad"
                      "?connect_timeout=2")  # fmt: skip
    assert (db["HOST"], db["PORT"], db["USER"], db["PASSWORD"], db["NAME"]) == (
        "db1,db2,fd00::3",
        "5432,5433,",
        "rp",
        "p@ss",
        "ratepad",
    )
    assert db["OPTIONS"]["target_session_attrs"] == "read-write"
    assert db["OPTIONS"]["connect_timeout"] == "2"  # the URL's own wins
    assert db["OPTIONS"]["keepalives_idle"] == "10"
    # the reports' replica URL of a group reads from a standby when one answers
    from ratepad_server.dbrouter import replica_databases

    replica = replica_databases("postgresql://rp@db1:5432,db2:5433/ratepad")["replica"]
    assert replica["OPTIONS"]["target_session_attrs"] == "prefer-standby"
    assert "default_transaction_read_only=on" in replica["OPTIONS"]["options"]
    one = parse_db_url("postgresql://rp@db1:5432/ratepad")
    assert (one["HOST"], one["PORT"], one["OPTIONS"]) == ("db1", "5432", {"options": "-c jit=off"})
    for bad in ("postgresql://rp@db1:5432,db2:x/ratepad", "postgresql://rp@db1,:5432/ratepad"):
        with pytest.raises(DatabaseURLError):
            parse_db_url(bad)


class _FlakyIngest(ThreadingHTTPServer):
    """An ingest endpoint that is away for its first ``away`` requests (503, as the server
    answers while its database fails over), then commits slowly; it notes every rating it got
    and how many requests were on the wire at once."""

    def __init__(self, away: int) -> None:
        self.away = away
        self.lock = threading.Lock()
        self.requests = 0
        self.on_wire = 0
        self.most_on_wire = 0
        self.got: list[tuple[str, int]] = []
        super().__init__(("127.0.0.1", 0), _FlakyHandler)


class _FlakyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real server
    server: _FlakyIngest

    def do_POST(self) -> None:
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests += 1
            srv.on_wire += 1
            srv.most_on_wire = max(srv.most_on_wire, srv.on_wire)
            away = srv.requests <= srv.away
        time.sleep(0.02)  # a commit takes a while: a second sender would overlap
        answer: dict[str, Any]
        if away:
            answer, status = {"detail": "The database cannot be reached just now"}, 503
        else:
            with srv.lock:
                srv.got += [(r["serial"], r["journal_seq"]) for r in body["ratings"]]
            answer, status = {"committed": True}, 200
        data = json.dumps(answer).encode()
        with srv.lock:
            srv.on_wire -= 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if away:
            self.send_header("Retry-After", "5")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_uploader_resends_after_503_one_batch_on_the_wire(tmp_path: Path) -> None:
    """While the database fails over the server answers 503: the agent's uploader keeps every
    rating and sends it again until committed. ``drain()`` (the demo's, at its end) running
    beside the uploader's own thread shares its HTTP connection: one batch is on the wire at a
    time, no answer is read by the wrong thread, no rating is lost."""
    from ratepad.agent.config import UploadConfig
    from ratepad.agent.store import Store
    from ratepad.agent.upload import Uploader

    db = tmp_path / "agent.db"
    Store(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executemany(
        "INSERT INTO ratings (serial, journal_seq, boot_id, uptime_ms, time_ms, time_exact,"
        " score, key_count, level, level_value, staff_id, prompt_id, flags, flag_names,"
        " received_at_ms) VALUES ('K1', ?, 1, 0, ?, 1, 4, 5, 'good', 80, 'S001', 0, 0, '', 0)",
        [(seq, 1_796_000_000_000 + seq * 1000) for seq in range(1, 401)],
    )
    conn.close()
    ingest = _FlakyIngest(away=3)
    threading.Thread(target=ingest.serve_forever, daemon=True).start()
    crashes: list[str] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: crashes.append(
        f"{args.exc_type.__name__}: {args.exc_value}"
    )
    config = UploadConfig(f"http://127.0.0.1:{ingest.server_address[1]}/", "k" * 20, batch=10)
    uploader = Uploader(db, config, poll_s=0.01, max_backoff_s=0.05)
    try:
        uploader.start()
        assert uploader.drain(60), uploader.last_error
        uploader.stop()
    finally:
        threading.excepthook = previous_hook
        ingest.shutdown()
        ingest.server_close()
    assert not crashes, crashes
    assert uploader.failures >= 1  # the 503s were met, and outlived
    assert sorted(set(ingest.got)) == [("K1", seq) for seq in range(1, 401)]
    assert ingest.most_on_wire == 1
