"""The agent's HTTP bridge, over real HTTP on loopback, with simulated keypads in this process."""

from __future__ import annotations

import http.client
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agentkit import running_agent

import ratepad
from ratepad.agent import Agent


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    with running_agent(tmp_path, "B1", "B2") as a:
        yield a


class Client:
    def __init__(self, agent: Agent, token: str | None = None) -> None:
        assert agent.bridge is not None and agent.token is not None
        self.host, self.port = agent.bridge.address
        self.token = agent.token if token is None else token

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], http.client.HTTPResponse]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        h.update(headers or {})
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        return resp.status, json.loads(text) if text else {}, resp


def later(seconds: float, fn: Any) -> None:
    threading.Timer(seconds, fn).start()


def test_token_is_required(agent: Agent) -> None:
    for token in ("", "wrong-token-wrong-token"):
        status, body, resp = Client(agent, token).request("GET", "/v1/devices")
        assert status == 401 and body["error"] == "unauthorized"
        assert resp.getheader("WWW-Authenticate", "").startswith("Bearer")
    # unknown paths are not revealed without the token either
    assert Client(agent, "").request("GET", "/v1/nothing")[0] == 401
    status, body, _ = Client(agent).request("GET", "/v1/devices")
    assert status == 200
    assert [(d["serial"], d["connected"]) for d in body["devices"]] == [("B1", True), ("B2", True)]
    assert body["devices"][0]["status"]["state"] == "idle"


def test_token_file_is_private_and_reused(agent: Agent, tmp_path: Path) -> None:
    path = tmp_path / "r.db.token"
    assert path.read_text().strip() == agent.token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    from ratepad.agent.bridge import load_or_create_token

    assert load_or_create_token(path) == agent.token


def test_bad_requests_change_nothing(agent: Agent) -> None:
    c = Client(agent)
    cases: list[tuple[str, str, Any, bytes | None, int, str]] = [
        ("POST", "/v1/devices/B1/prompt", None, b"{not json", 400, "bad_json"),
        ("POST", "/v1/devices/B1/prompt", None, b"[1, 2]", 400, "bad_json"),
        ("POST", "/v1/devices/B1/prompt", None, b"\xff\xfe", 400, "bad_json"),
        ("POST", "/v1/devices/B1/prompt", {"staff": 7}, None, 400, "bad_request"),
        ("POST", "/v1/devices/B1/prompt", {"staff": "S" * 17}, None, 400, "bad_request"),
        ("POST", "/v1/devices/B1/prompt", {"timeout": -1}, None, 400, "bad_request"),
        ("POST", "/v1/devices/B1/prompt", {"timeout": "30"}, None, 400, "bad_request"),
        ("POST", "/v1/devices/B1/prompt", {"wait": "yes"}, None, 400, "bad_request"),
        ("POST", "/v1/devices/B1/prompt", {"timout": 3}, None, 400, "bad_request"),
        ("POST", "/v1/devices/B1/login", {}, None, 400, "bad_request"),
        (
            "POST",
            "/v1/devices/B1/login",
            {"staff": "S1", "name": "x" * 40},
            None,
            400,
            "bad_request",
        ),
        ("POST", "/v1/devices/B1/cancel", {"prompt_id": "1"}, None, 400, "bad_request"),
        ("POST", "/v1/devices/NOPE/prompt", {"staff": "S1"}, None, 404, "unknown_device"),
        ("GET", "/v1/devices/NOPE", None, None, 404, "unknown_device"),
        ("GET", "/v1/nothing/here", None, None, 404, "not_found"),
        ("GET", "/v1/devices/B1/prompt", None, None, 405, "method_not_allowed"),
        ("DELETE", "/v1/devices", None, None, 405, "method_not_allowed"),
        ("GET", "/v1/ratings?limit=0", None, None, 400, "bad_request"),
        ("GET", "/v1/ratings?since=x", None, None, 400, "bad_request"),
        ("GET", "/v1/ratings?colour=red", None, None, 400, "bad_request"),
        ("GET", "/v1/devices/B1/prompts/abc", None, None, 400, "bad_request"),
        ("GET", "/v1/devices/B1/prompts/77", None, None, 404, "unknown_prompt"),
    ]
    for method, path, body, raw, want, code in cases:
        status, answer, resp = c.request(method, path, body, raw)
        assert (status, answer.get("error")) == (want, code), (method, path, body, raw, answer)
        assert answer["message"]
        if want == 405:
            assert resp.getheader("Allow") in ("POST", "GET")
    big = json.dumps({"staff": "S1", "pad": "x" * 20_000}).encode()
    status, answer, _ = c.request("POST", "/v1/devices/B1/prompt", raw=big)
    assert (status, answer["error"]) == (413, "too_large")
    time.sleep(0.2)
    assert agent.store.count() == 0
    assert agent.store.summary() == []  # no prompt recorded by any bad request
    status, body, _ = c.request("GET", "/v1/devices/B1")
    assert status == 200 and body["status"]["state"] == "idle"  # nothing was armed


def test_prompt_waits_for_the_stored_rating(agent: Agent) -> None:
    later(0.2, lambda: ratepad.sim.get("B1").press(4, bounce_ms=2))
    status, body, _ = Client(agent).request(
        "POST", "/v1/devices/B1/prompt", {"staff": "S001", "timeout": 5}
    )
    assert status == 200 and body["state"] == "answered"
    r = body["rating"]
    assert (r["serial"], r["score"], r["level"], r["level_value"]) == ("B1", 4, "satisfied", 80)
    assert (r["staff_id"], r["prompt_id"], r["prompted"]) == ("S001", body["prompt_id"], True)
    # it is in the store, answered, and ACKed
    assert agent.store.ratings()[0].id == r["id"]
    status, p, _ = Client(agent).request("GET", f"/v1/devices/B1/prompts/{body['prompt_id']}")
    assert status == 200 and p["state"] == "answered" and p["rating_seq"] == 1
    end = time.monotonic() + 3
    while ratepad.sim.get("B1").keypad.core.journal.unacked() and time.monotonic() < end:
        time.sleep(0.01)
    assert ratepad.sim.get("B1").keypad.core.journal.unacked() == 0


def test_prompt_timeout_is_504(agent: Agent) -> None:
    t0 = time.monotonic()
    status, body, _ = Client(agent).request(
        "POST", "/v1/devices/B2/prompt", {"staff": "S002", "timeout": 0.3}
    )
    assert status == 504 and body["error"] == "timeout" and body["state"] == "timed_out"
    assert 0.3 <= time.monotonic() - t0 < 5
    time.sleep(0.3)
    row = agent.store.prompt("B2", body["prompt_id"])
    assert row is not None and row["state"] == "timed_out"


def test_prompt_without_waiting_cancel_login_logout(agent: Agent) -> None:
    c = Client(agent)
    status, body, _ = c.request("POST", "/v1/devices/B2/login", {"staff": "S9", "name": "Zhao"})
    assert status == 200 and body["logged_in"]
    status, body, _ = c.request("POST", "/v1/devices/B2/prompt", {"wait": False, "timeout": 60})
    assert status == 202 and body["state"] == "issued"
    pid = body["prompt_id"]
    time.sleep(0.1)
    assert c.request("GET", "/v1/devices/B2")[1]["status"]["state"] == "prompted"
    status, body, _ = c.request("POST", "/v1/devices/B2/cancel", {"prompt_id": pid})
    assert status == 200 and body["state"] == "cancelled"
    status, body, _ = c.request("POST", "/v1/devices/B2/cancel", {"prompt_id": pid})
    assert status == 409 and body["error"] == "refused" and body["result"] == "not_found"
    time.sleep(0.2)
    assert c.request("GET", f"/v1/devices/B2/prompts/{pid}")[1]["state"] == "cancelled"
    assert c.request("POST", "/v1/devices/B2/logout", {"staff": "S9"})[0] == 200
    agent.workers[1].connected = False  # as after a lost link
    status, body, _ = c.request("POST", "/v1/devices/B2/prompt", {})
    assert status == 503 and body["error"] == "device_unavailable"


def test_ratings_paging(agent: Agent) -> None:
    for key in (1, 2, 3):
        ratepad.sim.get("B1").press(key)
        time.sleep(0.25)
    end = time.monotonic() + 5
    while agent.store.count() < 3:
        assert time.monotonic() < end
        time.sleep(0.01)
    c = Client(agent)
    status, page, _ = c.request("GET", "/v1/ratings?limit=2&order=asc")
    assert status == 200 and [r["score"] for r in page["ratings"]] == [1, 2]
    _, page2, _ = c.request("GET", f"/v1/ratings?since={page['next']}&limit=2&order=asc")
    assert [r["score"] for r in page2["ratings"]] == [3] and page2["next"] == 3
    _, page3, _ = c.request("GET", "/v1/ratings?serial=B2&order=asc")
    assert page3 == {"ratings": [], "next": 0}
    # recent ratings: newest first by default, paged back with before
    _, recent, _ = c.request("GET", "/v1/ratings?limit=2")
    assert [r["score"] for r in recent["ratings"]] == [3, 2]
    _, older, _ = c.request("GET", f"/v1/ratings?limit=2&before={recent['before']}")
    assert [r["score"] for r in older["ratings"]] == [1]
    rid = recent["ratings"][0]["id"]
    status, one, _ = c.request("GET", f"/v1/ratings/{rid}")
    assert status == 200 and one["score"] == 3
    assert c.request("GET", "/v1/ratings/999")[1]["error"] == "unknown_rating"
    _, summary, _ = c.request("GET", "/v1/summary")
    assert summary["devices"][0]["ratings"] == 3 and summary["devices"][0]["unprompted"] == 3


def sse_events(resp: http.client.HTTPResponse, want: int, timeout: float) -> list[dict[str, Any]]:
    """Read SSE events (kind, id, data) until ``want`` ratings arrived."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    end = time.monotonic() + timeout
    while sum(e["event"] == "rating" for e in out) < want:
        assert time.monotonic() < end, f"SSE: only {out}"
        line = resp.fp.readline().decode().rstrip("\n")
        if not line:
            if "event" in current:
                out.append(current)
            current = {}
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        else:
            key, _, value = line.partition(": ")
            current[key] = json.loads(value) if key == "data" else value
    return out


def test_events_stream(agent: Agent) -> None:
    c = Client(agent)
    conn = http.client.HTTPConnection(c.host, c.port, timeout=10)
    conn.request("GET", "/v1/events", headers={"Authorization": f"Bearer {c.token}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/event-stream")
    later(0.2, lambda: ratepad.sim.get("B2").press(5))
    events = sse_events(resp, 1, 5)
    rating = next(e for e in events if e["event"] == "rating")
    assert rating["data"]["serial"] == "B2" and rating["data"]["score"] == 5
    assert rating["id"] == str(rating["data"]["id"])
    assert any(e["event"] == "status" for e in events)  # the keypad's heartbeat went by
    # every payload matches the schema the OpenAPI document gives for its event
    import jsonschema

    doc = c.request("GET", "/v1/openapi.json")[1]
    described = doc["paths"]["/v1/events"]["get"]["x-sse-events"]
    for e in events:
        schema = {**described[e["event"]], "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(e["data"])
    conn.close()
    # a client that reconnects with Last-Event-ID first gets what it missed
    ratepad.sim.get("B1").press(2)
    end = time.monotonic() + 5
    while agent.store.count() < 2:
        assert time.monotonic() < end
        time.sleep(0.01)
    conn = http.client.HTTPConnection(c.host, c.port, timeout=10)
    conn.request(
        "GET",
        "/v1/events",
        headers={"Authorization": f"Bearer {c.token}", "Last-Event-ID": rating["id"]},
    )
    missed = sse_events(conn.getresponse(), 1, 5)
    assert [(e["data"]["serial"], e["data"]["score"]) for e in missed] == [("B1", 2)]
    conn.close()


def test_openapi_document(agent: Agent) -> None:
    status, doc, _ = Client(agent, "").request("GET", "/v1/openapi.json")  # no token needed
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert {
        "/v1/devices",
        "/v1/devices/{serial}",
        "/v1/devices/{serial}/prompt",
        "/v1/devices/{serial}/cancel",
        "/v1/devices/{serial}/login",
        "/v1/devices/{serial}/logout",
        "/v1/devices/{serial}/prompts/{prompt_id}",
        "/v1/ratings",
        "/v1/summary",
        "/v1/health",
        "/v1/events",
        "/v1/openapi.json",
        "/v1/ratings/{rating_id}",
        "/v1/tickets",
        "/v1/ws.schema.json",
    } == set(doc["paths"])
    from openapi_spec_validator import validate

    validate(doc)
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) and all(ids)
    for item in doc["paths"].values():
        for op in item.values():
            assert "500" in op["responses"] and "422" not in op["responses"]
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")):
                    schema = resp["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (code, op)
    schemas = doc["components"]["schemas"]
    assert "timed_out" in schemas["PromptOut"]["properties"]["state"]["enum"]
    assert "superseded" in schemas["PromptOut"]["properties"]["state"]["enum"]
    assert set(schemas["RatingOut"]["required"]) >= {"id", "serial", "score", "time_ms"}
    assert set(schemas["LoginRequest"]["required"]) == {"staff"}
    assert schemas["PromptRequest"]["additionalProperties"] is False
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["servers"][0]["url"] == agent.bridge_url

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(doc):  # every reference resolves
        name = ref.removeprefix("#/components/schemas/")
        assert name in doc["components"]["schemas"], ref
