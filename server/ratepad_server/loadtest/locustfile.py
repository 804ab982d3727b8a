"""Locust users for ``ratepad server loadtest``: window agents and managers at a bank's peak.

Run by Locust only (``locust -f`` this file; ``ratepad server loadtest`` does it in a
subprocess): importing Locust patches the process with gevent, so neither the server nor the
test suite imports this module. The plan (``RATEPAD_LOADTEST_PLAN``, a JSON file written by
``ratepad server loadtest``: agent keys, keypads, managers, server URLs, profile, run length)
says what to play.

* ``WindowAgents``: each Locust user plays ``agents_per_user`` window agents (one Locust user
  per agent would hold 70,000 greenlets and sockets; a window PC sends a request a minute at
  most, so a user plays its agents one after the other, each on its own clock). An agent
  behaves as ``ratepad.agent.upload`` does: its outbox (device, staff session, prompts as they
  are issued and closed, ratings following the fleet simulator's customer profile) is sent as
  soon as it has something; after ``heartbeat_s`` without an upload it sends an empty batch;
  a failed upload keeps the outbox and is sent again, the same journal sequences, after a
  backoff (0.5 s doubling to 30 s, with jitter); a share of committed batches is sent a second
  time (an answer lost on the way), which the server must count as duplicates. No new rating
  is made in the last ``drain_s`` of the run (0: until its end).
* The drain: once the run's ``seconds`` are over, the agents send no heartbeat and make
  nothing new; they only send what their outboxes still hold (a batch that failed, one whose
  answer has not come) until every one is answered, as an agent's store does after a busy
  hour. The process quits when all its agents' outboxes are empty, or ``drain_max_s`` after
  the run at most; how long that took is counted (``max_drain_ms``). These requests are
  named ``drain: ...`` in the statistics, apart from the run's.
* ``Manager``: logs in through the web's login page, keeps the live wall of a region open (the
  server-sent events stream, reconnecting when it ends) and opens the region's report page
  every 30–90 s.

Each process writes what its users sent and were answered (``counts-<pid>.json`` in
``RATEPAD_LOADTEST_OUT``) when the test stops; the command adds them up and compares them with
what the database holds.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import random
import re
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import gevent  # type: ignore[import-untyped]
from locust import FastHttpUser, between, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner

from ratepad.scenario.fleet import Profile
from ratepad_server.loadtest.traffic import AgentPlan, Send, timeline

PLAN: dict[str, Any] = json.loads(Path(os.environ["RATEPAD_LOADTEST_PLAN"]).read_text())
OUT = Path(os.environ.get("RATEPAD_LOADTEST_OUT", "."))
PROFILE = Profile.load(PLAN.get("profile"))
URLS: list[str] = PLAN["urls"]
COUNTS: Counter[str] = Counter()  # this process's users, written at the end
STARTED = [time.time()]  # when this process's test started (test_start)
MAX_BACKOFF_S = 30.0
INGEST = "/api/v1/ingest/batch"


def _started(environment: Environment, **_: Any) -> None:
    STARTED[0] = time.time()


def _write_counts(environment: Environment, **_: Any) -> None:
    # ratings sent but never answered: on the wire when the run ended, or failed since
    COUNTS["unanswered"] = sum(
        sum(1 for r in a.outbox["ratings"] if r["journal_seq"] in a.on_wire) for a in AGENTS
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"counts-{os.getpid()}.json").write_text(json.dumps(dict(COUNTS)))


def _deadline() -> float:
    """When the agents stop making new ratings."""
    return STARTED[0] + float(PLAN["seconds"]) - float(PLAN["drain_s"])


def _end() -> float:
    """When the run proper ends: after it, the agents only empty their outboxes."""
    return STARTED[0] + float(PLAN["seconds"])


def _pending() -> int:
    """This process's agents whose outbox still holds something."""
    return sum(1 for a in AGENTS if any(a.outbox.values()))


def _drain(environment: Environment) -> None:
    """After the run: quit once every outbox of this process is answered (or at the limit)."""
    gevent.sleep(max(0.0, _end() - time.time()))
    limit = _end() + float(PLAN.get("drain_max_s", 300))
    while _pending() and time.time() < limit:
        gevent.sleep(0.2)
    COUNTS["max_drain_ms"] = int((time.time() - _end()) * 1000)
    COUNTS["outboxes_left"] = _pending()
    if environment.runner is not None:
        environment.runner.quit()


def _start_drain(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):  # the master plays no agent
        gevent.spawn(_drain, environment)


events.test_start.add_listener(_started)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_start_drain)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_write_counts)  # type: ignore[no-untyped-call]


class _Agent:
    """One window agent: its timeline, its outbox, its clock."""

    def __init__(self, plan: AgentPlan, sends: list[Send], start: float) -> None:
        self.plan, self.sends, self.start = plan, sends, start
        self.next = 0  # the first send not yet in the outbox
        self.outbox: dict[str, list[dict[str, Any]]] = {
            "ratings": [], "prompts": [], "sessions": [], "devices": []}  # fmt: skip
        self.on_wire: set[int] = set()  # journal sequences sent at least once
        self.last_sent = start
        self.retry_at = 0.0
        self.backoff = 0.5

    def due(self, heartbeat_s: float) -> float:
        """The next moment this agent has something to do."""
        if any(self.outbox.values()):
            return self.retry_at
        heartbeat = self.last_sent + heartbeat_s
        if self.next < len(self.sends):
            return min(self.start + self.sends[self.next].at, heartbeat)
        return heartbeat

    def collect(self, now: float) -> None:
        """Everything made by now goes into the outbox (as the agent's store does)."""
        while self.next < len(self.sends) and self.start + self.sends[self.next].at <= now:
            send = self.sends[self.next]
            for name in self.outbox:
                self.outbox[name].extend(getattr(send, name))
            self.next += 1


_agent_users = itertools.count()
AGENTS: list[_Agent] = []  # this process's


class WindowAgents(FastHttpUser):
    host = URLS[0]
    wait_time = constant(0)
    weight = 1

    def on_start(self) -> None:
        workers = max(1, int(PLAN.get("workers", 1)))
        index = next(_agent_users) * workers + int(getattr(self.environment.runner,
                                                           "worker_index", 0))  # fmt: skip
        self.url = URLS[index % len(URLS)] + INGEST
        per = int(PLAN["agents_per_user"])
        rows = PLAN["agents"][index * per : (index + 1) * per]
        now = time.time()
        seconds = max(0.0, _deadline() - now)
        rng = random.Random(int(PLAN["seed"]) * 1_000_003 + index)
        self.agents = [
            _Agent(plan, timeline(plan, PROFILE, seconds, rng, start_ms=int(now * 1000),
                                  seq_base=int(PLAN["seq_base"])), now)
            for plan in (AgentPlan(*row) for row in rows)
        ]  # fmt: skip
        COUNTS["agents"] += len(self.agents)
        AGENTS.extend(self.agents)
        self.heartbeat_s = float(PLAN["heartbeat_s"])
        self.resend_share = float(PLAN["resend_share"])
        self.rng = rng
        # the first heartbeat of each agent somewhere in its first minute
        for agent in self.agents:
            agent.last_sent = now - rng.uniform(0, self.heartbeat_s)
        self.queue = [(a.due(self.heartbeat_s), i) for i, a in enumerate(self.agents)]
        heapq.heapify(self.queue)

    @task
    def play(self) -> None:
        if not self.agents:
            time.sleep(60)
            return
        if time.time() >= _end():
            self.drain()
            return
        due, i = heapq.heappop(self.queue)
        wait = due - time.time()
        if wait > 0:
            time.sleep(min(wait, max(0.0, _end() - time.time())))  # gevent's: others run
            if time.time() < due:  # woken by the run's end: the drain comes first
                heapq.heappush(self.queue, (due, i))
                return
        agent = self.agents[i]
        self.act(agent, time.time())
        heapq.heappush(self.queue, (agent.due(self.heartbeat_s), i))

    def drain(self) -> None:
        """After the run: send what the outboxes hold (after each agent's backoff)."""
        pending = [a for a in self.agents if any(a.outbox.values())]
        if not pending:
            time.sleep(1.0)
            return
        now = time.time()
        ready = [a for a in pending if a.retry_at <= now]
        if not ready:
            time.sleep(max(0.05, min(a.retry_at for a in pending) - now))
            return
        for agent in ready:
            self.act(agent, time.time(), draining=True)

    def act(self, agent: _Agent, now: float, draining: bool = False) -> None:
        agent.collect(now)
        body = {name: list(items) for name, items in agent.outbox.items()}
        ratings = body["ratings"]
        if any(body.values()):
            name = "upload ratings" if ratings else "upload prompts, device, session"
        elif now - agent.last_sent >= self.heartbeat_s and not draining:
            name = "heartbeat"
        else:
            return
        if draining:
            name = "drain: " + name
        new = [r["journal_seq"] for r in ratings if r["journal_seq"] not in agent.on_wire]
        agent.on_wire.update(new)
        COUNTS["sent"] += len(new)
        COUNTS["resent_after_error"] += len(ratings) - len(new)
        answer = self.post(agent, body, name)
        agent.last_sent = time.time()
        if answer is None:  # kept in the outbox: the same journal sequences next time
            COUNTS["failed_batches"] += 1
            agent.retry_at = agent.last_sent + agent.backoff * self.rng.uniform(0.5, 1.0)
            agent.backoff = min(agent.backoff * 2, MAX_BACKOFF_S)
            return
        agent.backoff = 0.5
        for items in agent.outbox.values():
            items.clear()
        COUNTS["acked"] += len(ratings)
        for field in ("stored", "duplicates", "quarantined", "conflicts"):
            COUNTS[field] += int(answer.get(field, 0))
        if ratings and not draining and self.rng.random() < self.resend_share:
            # the answer lost on the way: the agent sends the same batch again
            again = self.post(agent, body, "upload again (answer lost)")
            if again is not None:
                COUNTS["resent_committed"] += len(ratings)
                for field in ("stored", "duplicates", "quarantined", "conflicts"):
                    COUNTS["again_" + field] += int(again.get(field, 0))

    def post(self, agent: _Agent, body: dict[str, Any], name: str) -> dict[str, Any] | None:
        """The server's commit answer, or None (the failure is in Locust's statistics)."""
        headers = {"Authorization": f"Bearer {agent.plan.key}",
                   "Content-Type": "application/json"}  # fmt: skip
        data = json.dumps(body, separators=(",", ":"))
        with self.client.post(self.url, data=data, headers=headers, name=name,
                              catch_response=True) as resp:  # fmt: skip
            try:
                answer = resp.json() if resp.status_code == 200 else None
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("committed"):
                resp.success()
                return answer
            resp.failure(f"{resp.status_code} {str(resp.text or resp.error)[:200]}")
            return None


_managers = itertools.count()
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Manager(FastHttpUser):
    host = URLS[0]
    wait_time = between(30, 90)
    fixed_count = len(PLAN["managers"])
    abstract = not PLAN["managers"]  # fixed_count 0 would make it a weighted class: none run

    def on_start(self) -> None:
        workers = max(1, int(PLAN.get("workers", 1)))
        index = next(_managers) * workers + int(getattr(self.environment.runner,
                                                        "worker_index", 0))  # fmt: skip
        self.wall: Any = None
        if index >= len(PLAN["managers"]):
            return
        username, password, self.node = PLAN["managers"][index]
        self.base = URLS[index % len(URLS)]
        page = self.client.get(self.base + "/login/", name="login page")
        found = CSRF.search(page.text or "")
        form = {"username": username, "password": password,
                "csrfmiddlewaretoken": found.group(1) if found else ""}  # fmt: skip
        with self.client.post(self.base + "/login/", data=urlencode(form), name="login",
                              headers={"Content-Type": "application/x-www-form-urlencoded"},
                              allow_redirects=False, catch_response=True) as resp:  # fmt: skip
            if resp.status_code != 302 or self._cookie("sessionid") is None:
                resp.failure(f"login refused: {resp.status_code}")
                return
            resp.success()
        COUNTS["walls"] += 1
        self.wall = gevent.spawn(self.keep_wall_open)
        self.report()

    def on_stop(self) -> None:
        if self.wall is not None:
            self.wall.kill(block=False)

    def _cookie(self, name: str) -> str | None:
        for cookie in self.client.cookiejar:
            if cookie.name == name:
                return cookie.value
        return None

    @task
    def report(self) -> None:
        if self.wall is not None and time.time() < _end():  # none in the drain
            self.client.get(f"{self.base}/report/{self.node}/", name="report page")

    def keep_wall_open(self) -> None:
        """The wall's event stream, reopened a second after it ends, while the user runs."""
        parts = urlsplit(self.base)
        while True:
            start = time.perf_counter()
            error: Exception | None = None
            try:
                with socket.create_connection((parts.hostname, parts.port or 80), 30) as sock:
                    request = (
                        f"GET /live/{self.node}/events?seconds=3600 HTTP/1.1\r\n"
                        f"Host: {parts.netloc}\r\nAccept: text/event-stream\r\n"
                        f"Cookie: sessionid={self._cookie('sessionid')}\r\n\r\n"
                    )
                    sock.sendall(request.encode())
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = sock.recv(4096)
                        if not chunk:
                            raise ConnectionError("closed before the answer")
                        head += chunk
                    status = head.split(b"\r\n", 1)[0]
                    if b" 200 " not in status:
                        raise ConnectionError(status.decode(errors="replace"))
                    self._fire("live wall: open", start, None)
                    sock.settimeout(60)  # the stream says something every 15 s
                    tail = head.partition(b"\r\n\r\n")[2]
                    while chunk := sock.recv(65536):
                        data = tail + chunk
                        COUNTS["wall_events"] += data.count(b"event: rating")
                        tail = data[-12:]  # shorter than the pattern: nothing counted twice
            except (OSError, ConnectionError) as exc:
                error = exc
                self._fire("live wall: open", start, error)
            time.sleep(1.0)

    def _fire(self, name: str, start: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="SSE", name=name, response_time=(time.perf_counter() - start) * 1000,
            response_length=0, exception=error, context={},
        )  # fmt: skip
