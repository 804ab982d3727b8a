"""``ratepad server demo``: the whole product on embedded defaults, offline.

A temporary SQLite server database gets a demo organisation (a region, two branches, three
windows each, staff, users with known passwords) and an alert rule; an agent per branch is
enrolled; the server runs (a ``ratepad server run`` subprocess); each branch's agent serves
simulated keypads with simulated customers (``ratepad.agent.demo``'s windows) and uploads to the
server (``ratepad.agent.upload``). The web's URL and the demo logins are printed; it runs until
Ctrl-C or ``--seconds``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

BRANCHES = {"DEMO-001": "朝阳支行", "DEMO-002": "海淀支行"}
USERS = [  # username, password, role, node, staff
    ("admin", "demo-admin", "admin", "HQ", None),
    ("manager", "demo-manager", "manager", "DEMO", None),
    ("viewer", "demo-viewer", "viewer", "DEMO", None),
    ("clerk", "demo-clerk", "staff", "DEMO-001", "S001"),
]
STAFF = [
    ("S001", "王芳", "DEMO-001"),
    ("S002", "李娜", "DEMO-001"),
    ("S003", "张伟", "DEMO-001"),
    ("S004", "刘洋", "DEMO-002"),
    ("S005", "陈静", "DEMO-002"),
    ("S006", "杨帆", "DEMO-002"),
]
WINDOWS = 3  # per branch


def org_toml() -> str:
    lines = ['[[node]]\ncode = "HQ"\nname = "总行"\n',
             '[[node]]\ncode = "DEMO"\nname = "北京分行"\nparent = "HQ"\n']  # fmt: skip
    for code, name in BRANCHES.items():
        lines.append(f'[[node]]\ncode = "{code}"\nname = "{name}"\nparent = "DEMO"\n'
                     'kind = "branch"\n')  # fmt: skip
        for w in range(1, WINDOWS + 1):
            lines.append(f'[[window]]\ncode = "{code}-W{w}"\nbranch = "{code}"\n'
                         f'name = "{w}号窗口"\nkeypad = "{code}-K{w}"\n')  # fmt: skip
    for sid, name, branch in STAFF:
        lines.append(f'[[staff]]\nid = "{sid}"\nname = "{name}"\nbranch = "{branch}"\n')
    for user, pw, role, node, staff in USERS:
        extra = f'staff = "{staff}"\n' if staff else ""
        lines.append(f'[[user]]\nusername = "{user}"\npassword = "{pw}"\nrole = "{role}"\n'
                     f'node = "{node}"\n{extra}')  # fmt: skip
    return "\n".join(lines)


def _prepare(work: Path, db: str) -> dict[str, str]:
    """Schema, organisation, an alert rule and an agent key per branch (in this process)."""
    from .cli import main as server

    (work / "org.toml").write_text(org_toml(), encoding="utf-8")
    for argv in (["init", "--db", db], ["load-org", str(work / "org.toml"), "--db", db]):
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            if server(argv) != 0:
                raise SystemExit(2)
    from django.db import connections

    from .alerts.models import Rule
    from .ingest.keys import enroll
    from .org.models import Node

    Rule.objects.get_or_create(node=Node.objects.get(code="DEMO"), kind=Rule.LOW_RATING,
                               defaults={"name": "差评 rating ≤ 2", "level": 2})  # fmt: skip
    keys = {code: enroll(Node.objects.get(code=code))[1] for code in BRANCHES}
    from .surveys.service import load_demo_surveys  # a survey report to show beside the keypads

    load_demo_surveys(Node.objects.get(code=next(iter(BRANCHES))))
    connections.close_all()
    return keys


def _spawn_server(work: Path, db: str, listen: str, env: dict[str, str]) -> subprocess.Popen[str]:
    # a session of its own: a terminal's Ctrl-C reaches the demo only, which stops the agents
    # first (they send what they hold), then the server
    return subprocess.Popen(
        [sys.executable, "-m", "ratepad_server", "run", "--db", db, "--listen", listen,
         "--allow-default-passwords"],  # the demo's users keep their printed passwords
        stdout=subprocess.PIPE, stderr=(work / "server.log").open("a"), text=True, env=env,
        cwd=work, start_new_session=True,
    )  # fmt: skip


def _server_url(proc: subprocess.Popen[str], work: Path) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving on" not in line:
        proc.wait(10)
        raise SystemExit(f"ratepad server demo: the server did not start (see {work}/server.log)")
    return line.split("serving on", 1)[1].strip().removesuffix("api/v1/")


class _Branch:
    """One branch's agent: simulated keypads, clerks and customers, uploading to the server."""

    def __init__(self, code: str, key: str, url: str, work: Path, seed: int) -> None:
        from ratepad.agent import Agent
        from ratepad.agent import demo as agent_demo
        from ratepad.agent.config import AgentConfig, UploadConfig

        serials = [f"{code}-K{w}" for w in range(1, WINDOWS + 1)]
        config = AgentConfig(
            devices=tuple(f"sim://{s}?{agent_demo.SIM_SETTINGS}" for s in serials),
            db=work / f"agent-{code}.db", listen=None, hello_check_s=1.0,
            upload=UploadConfig.checked(url, key, None, 100, "demo", 5.0),
        )  # fmt: skip
        self.demo = agent_demo._Demo(seed, open(os.devnull, "w"), True)  # noqa: SIM115
        self.agent = self.demo.agent = Agent(config, log=lambda _: None)
        self.windows = []
        staff = [s for s in STAFF if s[2] == code]
        for i, serial in enumerate(serials):
            w = agent_demo._Window(self.demo, i)
            w.serial, (w.staff, w.name) = serial, staff[i % len(staff)][:2]
            self.windows.append(w)

    def start(self) -> None:
        self.agent.start()
        for w in self.windows:
            w.start()

    def stop(self) -> None:
        self.demo.stop.set()
        for w in self.windows:
            w.join(timeout=5)
        if self.agent.uploader is not None:
            self.agent.uploader.drain(5.0)
        self.agent.stop()


class _Stopped(Exception):
    """SIGTERM or SIGINT arrived."""


class _StopSignals:
    """SIGTERM and SIGINT raise ``_Stopped`` in the main thread, except inside ``held()``
    (where a stop would lose track of a child just started): there they raise on leaving."""

    def __init__(self) -> None:
        self.holding = self.arrived = False

    def __call__(self, sig: int, frame: FrameType | None) -> None:
        if self.holding:
            self.arrived = True
        else:
            raise _Stopped

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.arrived:
            raise _Stopped


def run_demo(listen: str, seconds: float | None, seed: int | None) -> int:
    """Until ``seconds`` pass, or SIGTERM / SIGINT: then the agents send what they hold, the
    server child stops (gracefully, it has its own SIGTERM handling), the folder goes; exit 0."""
    import random

    import ratepad.sim

    handled = (signal.SIGTERM, signal.SIGINT)
    stop_signals = _StopSignals()
    previous = {sig: signal.signal(sig, stop_signals) for sig in handled}
    work = Path(tempfile.mkdtemp(prefix="ratepad-server-demo-"))
    db = f"sqlite:///{work / 'server.sqlite3'}"
    env = {**os.environ, "RATEPAD_SECRET_KEY": secrets.token_urlsafe(40),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    os.environ["RATEPAD_SECRET_KEY"] = env["RATEPAD_SECRET_KEY"]
    proc = None
    branches: list[_Branch] = []
    seed = random.randrange(1_000_000) if seed is None else seed
    try:
        try:
            keys = _prepare(work, db)
            with stop_signals.held():  # (a blocked signal mask would pass on to the child)
                proc = _spawn_server(work, db, listen, env)
            url = _server_url(proc, work)
            ratepad.sim.reset()
            branches = [_Branch(code, keys[code], url, work, seed + i)
                        for i, code in enumerate(BRANCHES)]  # fmt: skip
            for b in branches:
                b.start()
            print(f"ratepad server demo: the managers' web is at {url}", flush=True)
            print("  logins (user / password): " + ", ".join(f"{u} / {p} ({r}@{n})"
                  for u, p, r, n, _ in USERS), flush=True)  # fmt: skip
            print(
                f"  {len(BRANCHES)} branches x {WINDOWS} simulated keypads upload to it; "
                f"data in {work} (removed at the end)",
                flush=True,
            )
            print("  Ctrl-C stops" if seconds is None else f"  stops after {seconds:g} s",
                  flush=True)  # fmt: skip
            threading.Event().wait(seconds)  # None: until a signal
        except _Stopped:
            pass
        for sig in handled:  # from here on the demo stops in order, whatever arrives
            signal.signal(sig, signal.SIG_IGN)
        uploaded = 0
        for b in branches:
            b.stop()
            uploaded += b.agent.uploader.ratings if b.agent.uploader else 0
        branches = []
        print(f"ratepad server demo: {uploaded} ratings uploaded", flush=True)
        return 0
    finally:
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)
        for b in branches:
            with contextlib.suppress(Exception):
                b.stop()
        ratepad.sim.reset()
        if proc is not None:
            _stop_server(proc)
        shutil.rmtree(work, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_server(proc: subprocess.Popen[str]) -> None:
    """SIGTERM: it finishes what is in flight (at most 20 s) and exits; else SIGKILL."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        print("ratepad server demo: the server did not stop within 30 s: killed", file=sys.stderr)
        proc.kill()
        proc.wait()
