"""Event streams never hold the agent back: the backlog is paged through to the end, streams are
capped, slow clients are dropped, and ratings keep being stored under ~250 subscribers."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentkit import running_agent

import ratepad
from ratepad.agent import Agent
from ratepad.agent.bridge.app import MAX_STREAMS
from ratepad.agent.hub import AgentEvent
from ratepad.scenario.sink import store_ratings


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    with running_agent(tmp_path, "S1", "S2") as a:
        yield a


def test_catching_up_pages_through_the_whole_backlog(agent: Agent) -> None:
    n = 10_050
    store_ratings(
        agent.store,
        (
            {"device": "OLD1", "seq": i, "score": 1 + i % 5, "at_ms": i * 1000}
            for i in range(1, n + 1)
        ),
    )
    last = agent.store.ratings(0, None)[-1].id
    assert agent.bridge is not None
    conn = http.client.HTTPConnection(*agent.bridge.address, timeout=30)
    conn.request(
        "GET",
        "/v1/events",
        headers={"Authorization": f"Bearer {agent.token}", "Last-Event-ID": "0"},
    )
    resp = conn.getresponse()
    ids: list[int] = []
    end = time.monotonic() + 60
    while not ids or ids[-1] < last:
        assert time.monotonic() < end, f"only {len(ids)} events"
        line = resp.fp.readline().decode()
        if line.startswith("id: "):
            ids.append(int(line[4:]))
    conn.close()
    assert len(ids) == n and ids == sorted(set(ids))  # every one, once, in order


def idle_subscriber(agent: Agent) -> socket.socket:
    """An SSE client that sends its request and then never reads."""
    assert agent.bridge is not None
    host, port = agent.bridge.address
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        f"GET /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {agent.token}\r\n\r\n".encode()
    )
    return sock


def test_250_subscribers_do_not_stop_storage(agent: Agent) -> None:
    assert agent.bridge is not None
    socks = [idle_subscriber(agent) for _ in range(250)]
    try:
        statuses = []
        for s in socks:
            statuses.append(s.recv(200).split(b" ", 2)[1])
        assert statuses.count(b"200") == MAX_STREAMS
        assert statuses.count(b"503") == 250 - MAX_STREAMS
        # ratings keep being stored while the streams are open and nobody reads them
        for i in range(10):
            ratepad.sim.get(f"S{1 + i % 2}").press(1 + i % 5)
            time.sleep(0.15)
        end = time.monotonic() + 15
        while agent.store.count() < 10:
            assert time.monotonic() < end, f"stored {agent.store.count()} of 10"
            time.sleep(0.02)
        # a burst of events: clients that do not read fall behind and are dropped
        for i in range(20_000):
            agent.hub.publish(AgentEvent("status", {"serial": "X", "n": i, "pad": "x" * 200}))
        end = time.monotonic() + 15
        while agent.bridge._streams and time.monotonic() < end:
            time.sleep(0.05)
        assert not agent.bridge._streams
        ratepad.sim.get("S1").press(2)
        end = time.monotonic() + 10
        while agent.store.count() < 11:
            assert time.monotonic() < end
            time.sleep(0.02)
        conn = http.client.HTTPConnection(*agent.bridge.address, timeout=10)
        conn.request("GET", "/v1/devices", headers={"Authorization": f"Bearer {agent.token}"})
        assert json.loads(conn.getresponse().read())["devices"]
        conn.close()
    finally:
        for s in socks:
            s.close()
