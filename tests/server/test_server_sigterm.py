"""SIGTERM, as systemd, Docker and Kubernetes stop a service.

``ratepad server run`` stops accepting, ends its live streams, lets the uploads in flight finish
and exits 0; the agents (themselves stopped by SIGTERM at the end, exit 0) send what was not
answered to the restarted server, which then holds every rating exactly once.
``ratepad server demo`` on SIGTERM stops its agents and its server child, removes its folder and
exits 0.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from pg import free_port
from serverlib import Site
from test_agent_kill import RATINGS, Helper
from test_server_exactly_once import AgentProc, agent_pending, server_ratings
from test_server_live import Stream


def test_sigterm_under_load_exits_0_and_the_resend_stores_each_rating_once(
    site: Site, tmp_path: Path
) -> None:
    server = site.server()
    helper = Helper(7, seconds=4.0)
    kp = f"tcp://127.0.0.1:{helper.port}"
    agents = [
        AgentProc(tmp_path / "a", [f"{kp}/K1", f"{kp}/K2"], server.url, site.keys["BJ-001"]),
        AgentProc(tmp_path / "b", [f"{kp}/K3"], server.url, site.keys["BJ-002"]),
    ]
    try:
        stream = Stream(server, site.tokens["hq-admin"], "HQ", seconds=600)
        stream.take(1, timeout=30)  # ratings are flowing
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0  # the open stream did not hold it
        log = (site.dir / "server.log").read_text()
        assert "Traceback" not in log, log[-3000:]
        for _ in range(100):  # the stream ended (the reader saw its last chunk)
            if stream.response.isclosed():
                break
            time.sleep(0.1)
        assert stream.response.isclosed()
        server.start()  # the same port: the agents send again what was not answered
        deadline = time.monotonic() + 60
        while True:
            status = helper.status()
            done = status["done"] and all(k["unacked"] == 0 for k in status["keypads"].values())
            if done and all(agent_pending(a.db) == 0 for a in agents):
                break
            assert time.monotonic() < deadline, [agent_pending(a.db) for a in agents]
            time.sleep(0.3)
        for a in agents:
            assert a.stop() == 0  # the agent's own SIGTERM: commit, close, exit 0
    finally:
        helper.close()
        for a in agents:
            if a.proc is not None and a.proc.poll() is None:
                a.kill()
        server.close()
    on_server = server_ratings(site)
    keys = [(s, q) for s, q, _, _ in on_server]
    assert len(keys) == len(set(keys)), "a rating stored twice"
    expected = {(serial, seq): score for serial, k in status["keypads"].items()
                for seq, score in enumerate(k["scores"], start=1)}  # fmt: skip
    assert len(expected) == 3 * RATINGS
    assert {(s, q): score for s, q, score, _ in on_server} == expected


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_demo_sigterm_leaves_no_process_and_no_folder() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ratepad_server", "demo", "--listen", f"127.0.0.1:{free_port()}",
         "--seed", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        match = re.search(r"data in (\S+) ", lines[2])
        assert match is not None, lines
        folder = Path(match.group(1))
        assert folder.is_dir()
        children = _children(proc.pid)
        assert children, "the demo runs its server as a child process"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "ratings uploaded" in out
    assert "killed" not in err  # the server child stopped on its SIGTERM, not SIGKILL
    assert not folder.exists()
    for child in children:
        assert not Path(f"/proc/{child}").exists(), f"child {child} still runs"
