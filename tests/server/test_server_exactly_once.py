"""THE soak: agents fed by served simulated keypads upload while everything between the press
and the server's disk fails at random moments; the server ends with every rating exactly once.

    keypad helper (test_agent_kill.py serve: 3 keypads, replugs, power cycles)
        │ tcp://
    agent A (K1, K2; key of BJ-001)   agent B (K3; key of BJ-002)   <- SIGKILLed now and then
        │ http, through a proxy the test cuts (connections reset, new ones refused)
    ratepad server                                                  <- SIGKILLed, restarted
        │
    PostgreSQL (restarted in immediate mode: crash recovery) | SQLite

Batches are replayed too: rows the server has committed are posted again. At the end every
rating of every keypad is on the server once, with its score, in its window; the rollups agree
with the raw rows.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from netproxy import Proxy
from serverlib import Site, call
from test_agent_kill import RATINGS, Helper, stored

SECONDS = 10.0  # the keypads' production time


def server_ratings(site: Site) -> list[tuple[str, int, int, str | None]]:
    sql = (
        "SELECT r.serial, r.journal_seq, r.score, w.code FROM ingest_rating r"
        " LEFT JOIN org_window w ON w.id = r.window_id"
    )
    if site.cluster is not None:
        import psycopg

        for _ in range(100):  # PostgreSQL may still be coming back from a restart
            try:
                with psycopg.connect(site.db) as conn:
                    return [tuple(r) for r in conn.execute(sql).fetchall()]  # type: ignore[misc]
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise AssertionError("PostgreSQL did not come back")
    conn = sqlite3.connect(site.db.removeprefix("sqlite:///"))
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def scalar(site: Site, sql: str) -> int:
    row = site.sql(sql)
    assert row is not None
    return int(row[0] or 0)


def agent_pending(db: Path) -> int:
    if not db.exists():
        return -1
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        cursor = conn.execute("SELECT last_id FROM upload_cursor").fetchone()
        left = conn.execute(
            "SELECT COUNT(*) FROM ratings WHERE id > ?", (cursor[0] if cursor else 0,)
        ).fetchone()[0]
        return int(left) + int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    except sqlite3.OperationalError:
        return -1
    finally:
        conn.close()


class AgentProc:
    def __init__(self, directory: Path, devices: list[str], url: str, key: str) -> None:
        directory.mkdir()
        self.db = directory / "ratings.db"
        self.config = directory / "agent.toml"
        listed = ", ".join(f'"{d}"' for d in devices)
        self.config.write_text(
            f'devices = [{listed}]\ndb = "ratings.db"\nlisten = "off"\n'
            "[link]\nstall_s = 2.5\nhello_check_s = 0.5\n"
            f'[upload]\nurl = "{url}"\nkey = "{key}"\nbatch = 200\nmax_backoff_s = 1\n'
        )
        self.log: IO[str] = (directory / "agent.log").open("a")
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ratepad", "agent", "--config", str(self.config)],
            stdout=self.log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


def replay(site: Site, url: str, agent: AgentProc, key: str, rng: random.Random) -> int:
    """Post again a random run of ratings the agent has (most already on the server)."""
    if not agent.db.exists():
        return 0  # the agent has not started yet
    conn = sqlite3.connect(f"{agent.db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT serial, journal_seq, boot_id, uptime_ms, time_ms, time_exact, score,"
            " key_count, level_value, staff_id, prompt_id, flags FROM ratings"
            " ORDER BY id LIMIT 100 OFFSET ?",
            (rng.randrange(0, 200),),
        ).fetchall()
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()
    names = ("serial", "journal_seq", "boot_id", "uptime_ms", "time_ms", "time_exact", "score",
             "key_count", "level_value", "staff_id", "prompt_id", "flags")  # fmt: skip
    batch = [dict(zip(names, r, strict=True)) for r in rows]
    for r in batch:
        r["time_exact"] = bool(r["time_exact"])
    try:
        status, _ = call(url, "/api/v1/ingest/batch", key, {"ratings": batch}, timeout=5)
    except OSError:
        return 0  # the server or the network is down right now: fine, it is a replay
    return len(batch) if status == 200 else 0


@pytest.mark.timeout(170)
def test_every_rating_exactly_once_through_crashes(site: Site, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    server = site.server()
    proxy = Proxy(server.port)
    helper = Helper(seed, seconds=SECONDS)
    kp = f"tcp://127.0.0.1:{helper.port}"
    agents = {
        "BJ-001": AgentProc(tmp_path / "a", [f"{kp}/K1", f"{kp}/K2"], proxy.url,
                            site.keys["BJ-001"]),
        "BJ-002": AgentProc(tmp_path / "b", [f"{kp}/K3"], proxy.url, site.keys["BJ-002"]),
    }  # fmt: skip
    events: list[str] = []
    replayed = 0
    try:
        plan = ["server"] * 3 + ["network"] * 2 + ["agent", "replay", "replay"]
        plan += ["database"] * 2 if site.cluster is not None else ["server"]
        rng.shuffle(plan)
        for what in plan:
            time.sleep(rng.uniform(0.2, 0.8))
            if what == "server":
                server.kill()
                time.sleep(rng.uniform(0, 0.4))
                server.start()
            elif what == "network":
                proxy.cut()
                time.sleep(rng.uniform(0.2, 1.0))
                proxy.mend()
            elif what == "agent":
                branch = rng.choice(sorted(agents))
                agents[branch].kill()
                agents[branch].start()
            elif what == "replay":
                branch = rng.choice(sorted(agents))
                replayed += replay(site, server.url, agents[branch], site.keys[branch], rng)
            else:
                assert site.cluster is not None
                site.cluster.restart("immediate")
            events.append(what)
        # calm: everything made must reach the server
        deadline = time.monotonic() + 90
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
    finally:
        helper.close()
        for a in agents.values():
            if a.proc is not None and a.proc.poll() is None:
                a.kill()
        proxy.close()
        server.close()

    on_server = server_ratings(site)
    keys = [(s, q) for s, q, _, _ in on_server]
    assert len(keys) == len(set(keys)), f"duplicates on the server (seed {seed})"
    windows = {"K1": "BJ-001-W1", "K2": "BJ-001-W2", "K3": "BJ-002-W1"}
    got = {(s, q): (score, w) for s, q, score, w in on_server}
    expected: dict[tuple[str, int], tuple[int, str]] = {}
    for serial, k in status["keypads"].items():
        assert k["made"] == RATINGS
        for seq, score in enumerate(k["scores"], start=1):
            expected[(serial, seq)] = (score, windows[serial])
    missing = sorted(set(expected) - set(got))
    assert not missing, f"{len(missing)} ratings never reached the server (seed {seed})"
    assert got == expected, f"seed {seed}"
    # the agents' stores agree, and the rollups count each rating once
    agent_side = {**stored(agents["BJ-001"].db), **stored(agents["BJ-002"].db)}
    assert sum(map(len, agent_side.values())) == len(expected)
    assert scalar(site, "SELECT COUNT(*) FROM ingest_ratingkey") == len(expected)
    assert scalar(site, "SELECT SUM(n_all) FROM rollups_hourrollup") == len(expected)
    assert len(events) == len(plan), events
    for a in agents.values():
        text = (a.db.parent / "agent.log").read_text()
        assert "Traceback" not in text, text[-3000:]
