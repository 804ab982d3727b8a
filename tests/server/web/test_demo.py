"""``ratepad server demo --seconds N``: the demo organisation, simulated keypads and agents
uploading to a server on a temporary SQLite database; ratings reach the server and the login
page answers while it runs."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request

from pg import free_port


def test_demo_runs_and_its_web_answers() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ratepad_server", "demo", "--seconds", "12", "--listen",
         f"127.0.0.1:{port}", "--seed", "7"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first, first
        logins = proc.stdout.readline()
        assert "manager / demo-manager" in logins
        time.sleep(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=10) as resp:
            assert resp.status == 200 and "csrfmiddlewaretoken" in resp.read().decode()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    uploaded = int(re.search(r"(\d+) ratings uploaded", out).group(1))  # type: ignore[union-attr]
    assert uploaded > 5, out


def test_demo_bad_arguments_exit_2() -> None:
    for argv in (["--seconds", "0"], ["--listen", "nowhere"]):
        done = subprocess.run([sys.executable, "-m", "ratepad_server", "demo", *argv],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
