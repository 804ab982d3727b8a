"""``ratepad server loadtest``: the harness itself (a short run with few agents), the agents'
traffic it plays, and its argument checks.

The full run (70,000 agents at a bank's peak) is bench/bench_loadtest.py; here a few dozen
agents with a busy customer profile for half a minute against a server on PostgreSQL: every
rating sent is stored once, resent batches are answered as duplicates, the live walls receive
ratings, nothing fails and the rollups agree with the raw ratings.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from serverlib import Site, server_env

from ratepad.scenario.fleet import Profile
from ratepad_server.loadtest.traffic import REPEAT, UNPROMPTED, AgentPlan, timeline

BUSY = {"arrivals_per_hour": [3600], "answer_delay_ms": [500, 3000], "unprompted_per_hour": 20}


def loadtest(site: Site, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad_server", "loadtest", "--db", site.db, *args],
        env=server_env(), cwd=site.dir, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize("site", ["postgresql"], indirect=True)
def test_short_run_stores_every_rating_sent_once(site: Site, tmp_path: Path) -> None:
    if importlib.util.find_spec("locust") is None:
        pytest.skip("Locust is not installed (pip install 'ratepad[loadtest]')")
    profile = tmp_path / "busy.json"
    profile.write_text(json.dumps(BUSY))
    result = tmp_path / "result.json"
    server = site.server()
    try:
        run = loadtest(
            site, "--url", server.url, "--agents", "40", "--managers", "2", "--seconds", "30",
            "--heartbeat", "5", "--agents-per-user", "4", "--resend-share", "0.3",
            "--profile", str(profile), "--plan", str(tmp_path / "plan.json"),
            "--out", str(tmp_path / "out"), "--json", str(result),
        )  # fmt: skip
    finally:
        server.close()
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(result.read_text())
    counts = out["counts"]
    assert out["failures"] == 0, out["stats"]
    assert out["stored"] == counts["sent"] > 0
    assert counts["acked"] == counts["sent"] and counts["resent_after_error"] == 0
    assert counts["agents"] == 40 and counts["walls"] == 2 and counts["wall_events"] > 0
    assert counts["resent_committed"] > 0
    assert counts["again_duplicates"] == counts["resent_committed"]
    names = {s["name"]: s for s in out["stats"]}
    assert names["heartbeat"]["requests"] > 0 and names["upload ratings"]["requests"] > 0
    assert names["report page"]["requests"] >= 2 and names["live wall: open"]["requests"] >= 2
    assert "stored in the database" in run.stdout and "= sent" in run.stdout
    # the run ends by waiting until every agent's outbox is answered
    assert counts["outboxes_left"] == 0 and counts["unanswered"] == 0
    assert 0 <= counts["max_drain_ms"] < 300_000 and "every agent outbox answered" in run.stdout
    check = subprocess.run(
        [sys.executable, "-m", "ratepad_server", "rollups", "--check", "--db", site.db],
        env=server_env(), cwd=site.dir, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_agent_traffic_follows_one_prompt_one_rating() -> None:
    plan = AgentPlan("rpk_x_y", "LT-K000001", "LT-S000001")
    profile = Profile(arrivals_per_hour=(600.0,), unprompted_per_hour=30.0)
    sends = timeline(plan, profile, 1800, random.Random(3), start_ms=10**12, seq_base=500)
    assert sends[0].devices and sends[0].sessions and 0 <= sends[0].at < 60
    assert [s.at for s in sends] == sorted(s.at for s in sends) and sends[-1].at < 1800
    ratings = [r for s in sends for r in s.ratings]
    prompts = [p for s in sends for p in s.prompts]
    assert [r["journal_seq"] for r in ratings] == list(range(501, 501 + len(ratings)))
    answered = {p["prompt_id"]: p for p in prompts if p["state"] == "answered"}
    issued = {p["prompt_id"] for p in prompts if p["state"] == "issued"}
    assert answered and set(answered) <= issued
    for r in ratings:
        if r["prompt_id"]:  # prompted: its prompt answered by exactly this rating
            assert r["flags"] == 0 and answered[r["prompt_id"]]["rating_seq"] == r["journal_seq"]
        else:
            assert r["flags"] & UNPROMPTED and not r["flags"] & ~(UNPROMPTED | REPEAT)
    assert any(r["flags"] for r in ratings) and any(not r["flags"] for r in ratings)
    closed = [p for p in prompts if p["state"] != "issued"]
    assert len({p["prompt_id"] for p in closed}) == len(closed)  # each prompt closes once


@pytest.mark.parametrize(
    "args",
    [["--agents", "0"], ["--url", "ftp://x"]],
)
def test_bad_arguments_one_line_exit_2(tmp_path: Path, args: list[str]) -> None:
    argv = ["--url", "http://127.0.0.1:9"] if "--url" not in args else []
    run = subprocess.run(
        [sys.executable, "-m", "ratepad_server", "loadtest", "--db",
         f"sqlite:///{tmp_path / 'db.sqlite3'}", *argv, *args],
        env=server_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "loadtest" not in run.stdout
