"""The bridge under a browser's and a hostile client's requests: Host and Origin checks, CORS,
tickets, the prompt lifecycle without races, and bodies that must give a 400 (never a 500)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agentkit import running_agent

import ratepad
from ratepad.agent import Agent

APP = "http://app.example:3000"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    with running_agent(tmp_path, "H1", "H2", allow_origins=(APP,)) as a:
        yield a


def call(
    agent: Agent,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    token: bool = True,
) -> tuple[int, Any, http.client.HTTPResponse]:
    assert agent.bridge is not None
    host, port = agent.bridge.address
    conn = http.client.HTTPConnection(host, port, timeout=15)
    h = {"Authorization": f"Bearer {agent.token}"} if token else {}
    h.update(headers or {})
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=h)
    resp = conn.getresponse()
    text = resp.read()
    conn.close()
    ctype = resp.getheader("Content-Type", "")
    return resp.status, json.loads(text) if text and "json" in ctype else text, resp


def armed(serial: str) -> int:
    return int(ratepad.sim.get(serial).keypad.core.rules.prompt_id)


# -- Host, Origin, CORS, tickets -----------------------------------------------------------------
def test_a_foreign_host_is_refused(agent: Agent) -> None:
    assert agent.bridge is not None
    port = agent.bridge.address[1]
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", ""):
        status, body, _ = call(agent, "GET", "/v1/devices", headers={"Host": host})
        assert (status, body["error"]) == (421, "bad_host"), host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert call(agent, "GET", "/v1/devices", headers={"Host": host})[0] == 200


def test_cors_for_allowed_origins_only(agent: Agent) -> None:
    preflight = {
        "Origin": APP,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    status, _, resp = call(
        agent, "OPTIONS", "/v1/devices/H1/prompt", headers=preflight, token=False
    )
    assert status == 200 and resp.getheader("Access-Control-Allow-Origin") == APP
    assert "authorization" in resp.getheader("Access-Control-Allow-Headers", "").lower()
    evil = {**preflight, "Origin": "http://evil.example"}
    status, body, resp = call(agent, "OPTIONS", "/v1/devices/H1/prompt", headers=evil, token=False)
    assert (status, body["error"]) == (403, "forbidden_origin")
    assert resp.getheader("Content-Type") == "application/json"
    # a state-changing request from a foreign page is refused, even with the token
    status, body, _ = call(
        agent,
        "POST",
        "/v1/devices/H1/prompt",
        {"wait": False},
        headers={"Origin": "http://evil.example"},
    )
    assert (status, body["error"]) == (403, "forbidden_origin")
    time.sleep(0.1)
    assert armed("H1") == 0
    # reads: CORS headers for the allowed origin only
    _, _, resp = call(agent, "GET", "/v1/devices", headers={"Origin": APP})
    assert resp.getheader("Access-Control-Allow-Origin") == APP
    _, _, resp = call(agent, "GET", "/v1/devices", headers={"Origin": "http://evil.example"})
    assert resp.getheader("Access-Control-Allow-Origin") is None
    status, body, resp = call(
        agent, "POST", "/v1/devices/H1/prompt", {"wait": False}, headers={"Origin": APP}
    )
    assert status == 202 and resp.getheader("Access-Control-Allow-Origin") == APP
    assert "location" in resp.getheader("Access-Control-Expose-Headers", "").lower()


def read_sse(resp: http.client.HTTPResponse, until: str, timeout: float = 5) -> list[str]:
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = resp.fp.readline().decode()
        lines.append(line)
        if until in line:
            return lines
    raise AssertionError(f"no {until!r} in {lines}")


def test_event_stream_tickets(agent: Agent) -> None:
    assert agent.bridge is not None
    status, t, _ = call(agent, "POST", "/v1/tickets", {"purpose": "events"})
    assert status == 201 and t["expires_in"] > 0
    host, port = agent.bridge.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", f"/v1/events?ticket={t['ticket']}")  # no Authorization header
    resp = conn.getresponse()
    assert resp.status == 200
    read_sse(resp, "retry:")
    conn.close()
    status, body, _ = call(agent, "GET", f"/v1/events?ticket={t['ticket']}", token=False)
    assert (status, body["error"]) == (401, "unauthorized")  # single use
    status, _, _ = call(agent, "GET", f"/v1/events?token={agent.token}", token=False)
    assert status == 401  # the long-lived token never works in a URL
    _, t2, _ = call(agent, "POST", "/v1/tickets", {})
    assert call(agent, "GET", f"/v1/devices?ticket={t2['ticket']}", token=False)[0] == 401
    assert call(agent, "POST", "/v1/tickets", {"purpose": "admin"})[0] == 400


def test_head_events_sends_no_body(agent: Agent) -> None:
    status, body, resp = call(agent, "HEAD", "/v1/events")
    assert status == 200 and body == b""
    assert resp.getheader("Content-Type", "").startswith("text/event-stream")


# -- prompt lifecycle ----------------------------------------------------------------------------
def test_a_prompt_is_visible_at_once_with_location(agent: Agent) -> None:
    for _ in range(10):
        status, body, resp = call(
            agent, "POST", "/v1/devices/H1/prompt", {"wait": False, "timeout": 30}
        )
        assert status == 202 and body["state"] == "issued"
        location = resp.getheader("Location")
        assert location == f"/v1/devices/H1/prompts/{body['prompt_id']}"
        status, got, _ = call(agent, "GET", location)
        assert status == 200 and got["state"] == "issued", got


def test_timed_out_right_after_the_keypads_timeout(agent: Agent) -> None:
    status, body, resp = call(
        agent, "POST", "/v1/devices/H2/prompt", {"wait": False, "timeout": 0.5}
    )
    t0 = time.monotonic()
    location = resp.getheader("Location")
    assert location
    while True:
        state = call(agent, "GET", location)[1]["state"]
        if state != "issued":
            break
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    assert state == "timed_out"
    assert 0.45 <= elapsed < 0.5 + 0.25, elapsed  # the book's settle window is 60 ms
    t0 = time.monotonic()
    status, body, _ = call(agent, "POST", "/v1/devices/H2/prompt", {"timeout": 1})
    assert (status, body["error"], body["state"]) == (504, "timeout", "timed_out")
    assert time.monotonic() - t0 < 1.5  # not timeout + a 2 s grace


def test_a_superseded_prompt_ends_at_once(agent: Agent) -> None:
    _, first, _ = call(agent, "POST", "/v1/devices/H1/prompt", {"wait": False})
    _, second, _ = call(agent, "POST", "/v1/devices/H1/prompt", {"wait": False})
    got = call(agent, "GET", f"/v1/devices/H1/prompts/{first['prompt_id']}")[1]
    assert got["state"] == "superseded"
    assert call(agent, "GET", f"/v1/devices/H1/prompts/{second['prompt_id']}")[1]["state"] == (
        "issued"
    )
    # a waiting client is told at once too
    results: list[Any] = []
    t = threading.Thread(
        target=lambda: results.append(call(agent, "POST", "/v1/devices/H2/prompt", {}))
    )
    t.start()
    time.sleep(0.4)
    call(agent, "POST", "/v1/devices/H2/prompt", {"wait": False})
    t.join(3)
    status, body, _ = results[0]
    assert (status, body["error"], body["state"]) == (409, "prompt_ended", "superseded")


def test_the_poll_answer_carries_the_rating(agent: Agent) -> None:
    _, _, resp = call(agent, "POST", "/v1/devices/H1/prompt", {"wait": False, "staff": "S3"})
    ratepad.sim.get("H1").press(4)
    location = resp.getheader("Location")
    assert location
    end = time.monotonic() + 5
    while (got := call(agent, "GET", location)[1])["state"] == "issued":
        assert time.monotonic() < end
        time.sleep(0.02)
    assert got["state"] == "answered" and got["rating"]["score"] == 4
    assert got["rating"]["staff_id"] == "S3"
    status, rating, _ = call(agent, "GET", f"/v1/ratings/{got['rating']['id']}")
    assert status == 200 and rating == got["rating"]


def waiting_request(agent: Agent, body: dict[str, Any]) -> socket.socket:
    assert agent.bridge is not None
    raw = json.dumps(body).encode()
    sock = socket.create_connection(agent.bridge.address, timeout=5)
    host, port = agent.bridge.address
    sock.sendall(
        f"POST /v1/devices/H2/prompt HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {agent.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\n\r\n".encode()
        + raw
    )
    return sock


def test_a_client_that_goes_away_cancels_its_waiting_prompt(agent: Agent) -> None:
    sock = waiting_request(agent, {"timeout": 60})
    time.sleep(0.4)
    pid = armed("H2")
    assert pid
    sock.close()
    end = time.monotonic() + 3
    while armed("H2") and time.monotonic() < end:
        time.sleep(0.02)
    assert armed("H2") == 0
    assert call(agent, "GET", f"/v1/devices/H2/prompts/{pid}")[1]["state"] == "cancelled"
    # unless the client says otherwise
    sock = waiting_request(agent, {"timeout": 60, "on_disconnect": "keep"})
    time.sleep(0.4)
    pid = armed("H2")
    sock.close()
    time.sleep(0.5)
    assert armed("H2") == pid
    assert call(agent, "GET", f"/v1/devices/H2/prompts/{pid}")[1]["state"] == "issued"


def test_reissuing_a_prompt_id_starts_it_afresh(agent: Agent) -> None:
    threading.Timer(0.2, lambda: ratepad.sim.get("H1").press(5)).start()
    status, body, _ = call(agent, "POST", "/v1/devices/H1/prompt", {"prompt_id": 77})
    assert status == 200 and body["state"] == "answered" and body["prompt_id"] == 77
    time.sleep(0.4)  # past the thanks display
    status, body, _ = call(agent, "POST", "/v1/devices/H1/prompt", {"prompt_id": 77, "wait": False})
    assert status == 202 and body["state"] == "issued" and body["rating"] is None
    assert call(agent, "GET", "/v1/devices/H1/prompts/77")[1]["state"] == "issued"
    time.sleep(0.3)
    row = agent.store.prompt("H1", 77)
    assert row is not None and row["state"] == "issued" and row["rating_seq"] is None


def test_a_sub_millisecond_timeout_does_not_leave_the_keypad_armed(agent: Agent) -> None:
    status, body, _ = call(agent, "POST", "/v1/devices/H1/prompt", {"timeout": 0.0005})
    assert (status, body["state"]) == (504, "timed_out")
    time.sleep(0.1)
    assert armed("H1") == 0
    ratepad.sim.get("H1").press(3)  # the next customer's press is not credited to the prompt
    end = time.monotonic() + 5
    while agent.store.count() < 1:
        assert time.monotonic() < end
        time.sleep(0.01)
    assert agent.store.ratings()[0].prompt_id == 0


# -- hostile bodies ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b'{"staff": "\\ud800"}',  # a lone surrogate
        b"[" * 1000 + b"]" * 1000,
        b'{"staff": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"timeout": ' + b"9" * 5000 + b"}",
        b'{"timeout": 1' + b"0" * 400 + b".5}",
        b'{"timeout": NaN}',
        b'{"timeout": 1e999}',
        b'{"staff": "\xff"}',
    ],
)
def test_hostile_bodies_are_400_not_500(agent: Agent, raw: bytes) -> None:
    status, body, _ = call(agent, "POST", "/v1/devices/H1/prompt", raw=raw)
    assert status == 400 and body["error"] in ("bad_json", "bad_request"), body
    assert "Error" not in body["message"] and "Traceback" not in body["message"]
    assert armed("H1") == 0


def test_text_limits_are_bytes_and_the_schema_says_so(agent: Agent) -> None:
    # the schema says what the server takes: staff ids are printable ASCII (byte = character)
    doc = call(agent, "GET", "/v1/openapi.json", token=False)[1]
    staff_schema = doc["components"]["schemas"]["PromptRequest"]["properties"]["staff"]
    assert staff_schema["maxLength"] == 16 and staff_schema["pattern"] == "^[\\x20-\\x7e]*$"
    status, body, _ = call(agent, "POST", "/v1/devices/H1/prompt", {"staff": "张" * 6})
    assert status == 400 and "staff" in body["message"]
    status, _, _ = call(agent, "POST", "/v1/devices/H1/prompt", {"staff": "S" * 16, "wait": False})
    assert status == 202
    # display names: 32 characters in the schema, cut to the 32 bytes the keypad shows
    name_schema = doc["components"]["schemas"]["LoginRequest"]["properties"]["name"]
    assert name_schema["maxLength"] == 32 and name_schema["x-maxBytes"] == 32
    status, body, _ = call(
        agent, "POST", "/v1/devices/H1/login", {"staff": "S1", "name": "张" * 32}
    )
    assert status == 200


def test_a_chunked_body_over_the_limit_is_refused(agent: Agent) -> None:
    assert agent.bridge is not None
    sock = socket.create_connection(agent.bridge.address, timeout=5)
    host, port = agent.bridge.address
    chunk = b"x" * 8000
    head = (
        f"POST /v1/devices/H1/login HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {agent.token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    sock.sendall(head.encode())
    with pytest.raises(OSError):  # the server answers and closes while we still send
        for _ in range(10):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            time.sleep(0.05)
    answer = sock.recv(65536).decode("latin-1")
    sock.close()
    assert " 413 " in answer.split("\r\n")[0] and "too_large" in answer


# -- configuration and the sandbox command -------------------------------------------------------
def test_bridge_settings_in_agent_toml(tmp_path: Path) -> None:
    from ratepad.agent.config import ConfigError, load_config

    path = tmp_path / "agent.toml"
    path.write_text(
        '[bridge]\nallow_origins = ["http://localhost:3000", "HTTPS://Teller.Example"]\n'
        "example_page = true\n"
    )
    cfg = load_config(path)
    assert cfg.allow_origins == ("http://localhost:3000", "https://teller.example")
    assert cfg.example_page
    for bad in (
        'allow_origins = "http://x"',
        'allow_origins = ["http://x/path"]',
        'allow_origins = ["ftp://x"]',
        'allow_origins = ["*"]',
        "example_page = 1",
        "colour = 1",
    ):
        path.write_text(f"[bridge]\n{bad}\n")
        with pytest.raises(ConfigError):
            load_config(path)


def test_sandbox_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ratepad",
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--seconds",
            "1",
            "--keypads",
            "2",
            "--allow-origin",
            "http://localhost:3000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "example page http://127.0.0.1:" in out.stdout and "#token=" in out.stdout
    for bad in (
        ["--keypads", "0"],
        ["--allow-origin", "nope"],
        ["--listen", "10.0.0.1:80"],
        ["--answer-after", "2-1"],
        ["--ignore", "2"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "ratepad", "sandbox", *bad],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert out.returncode == 2, (bad, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_health_is_200_while_storing_and_503_once_the_writer_stops(agent: Agent) -> None:
    status, body, _ = call(agent, "GET", "/v1/health")
    assert status == 200, body
    assert body["ok"] is True and body["writer"] == "running"
    assert body["devices"] == 2 and body["connected"] == 2 and body["upload"] is None
    status, _, _ = call(agent, "GET", "/v1/health", token=False)
    assert status == 401  # like every other call
    agent.writer.stop()  # the writer is gone: a supervisor or a load balancer should see it
    end = time.monotonic() + 5
    while agent.writer.alive:
        assert time.monotonic() < end
        time.sleep(0.01)
    status, body, _ = call(agent, "GET", "/v1/health")
    assert status == 503 and body["ok"] is False and body["error"] == "writer_stopped"
