"""The bridge's WebSocket at /v1/ws, against the sandbox (simulated customers answer prompts):
one message arms a keypad and one answer comes back; every message validates against the
published JSON schemas; tickets are single use; a foreign Origin is refused."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

import ratepad
from ratepad.agent.sandbox import Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    ratepad.sim.reset()
    with Sandbox(
        2,
        listen=("127.0.0.1", 0),
        answer_after=(0.2, 0.4),
        seed=7,
        allow_origins=("http://app.example:3000",),
    ) as sb:
        yield sb
    ratepad.sim.reset()


def http(sb: Sandbox, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sb.url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {sb.token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def ticket(sb: Sandbox, purpose: str = "ws") -> str:
    status, body = http(sb, "POST", "/v1/tickets", {"purpose": purpose})
    assert status == 201 and body["purpose"] == purpose
    return str(body["ticket"])


def ws_url(sb: Sandbox, t: str) -> str:
    return sb.url.replace("http://", "ws://") + f"/v1/ws?ticket={t}"


class Checked:
    """A WebSocket client that validates every message it sends and receives."""

    def __init__(self, conn: ClientConnection, schemas: dict[str, Any]) -> None:
        self.conn = conn
        self.client = jsonschema.Draft202012Validator(schemas["client"])
        self.server = jsonschema.Draft202012Validator(schemas["server"])

    def send(self, msg: dict[str, Any]) -> None:
        self.client.validate(msg)
        self.conn.send(json.dumps(msg))

    def until(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            msg = json.loads(self.conn.recv(timeout=max(end - time.monotonic(), 0.01)))
            self.server.validate(msg)
            if msg["type"] == kind:
                return dict(msg)


@pytest.fixture
def schemas(sandbox: Sandbox) -> dict[str, Any]:
    with urllib.request.urlopen(sandbox.url + "/v1/ws.schema.json", timeout=10) as resp:
        doc = json.loads(resp.read())
    jsonschema.Draft202012Validator.check_schema(doc["client"])
    jsonschema.Draft202012Validator.check_schema(doc["server"])
    for name, path in doc["messages"].items():  # each message's own schema, for generators
        with urllib.request.urlopen(sandbox.url + path, timeout=10) as resp:
            one = json.loads(resp.read())
        jsonschema.Draft202012Validator.check_schema(one)
        assert one["properties"]["type"], name
    return dict(doc)


def test_one_message_arms_and_one_answer_comes_back(
    sandbox: Sandbox, schemas: dict[str, Any]
) -> None:
    with connect(ws_url(sandbox, ticket(sandbox))) as conn:
        ws = Checked(conn, schemas)
        ws.send({"type": "prompt", "ref": "t1", "serial": "SB1", "staff": "S1", "timeout": 10})
        outcome = ws.until("prompt_outcome")
        assert (outcome["ref"], outcome["state"], outcome["serial"]) == ("t1", "answered", "SB1")
        assert outcome["rating"]["staff_id"] == "S1" and 1 <= outcome["rating"]["score"] <= 5
        ws.until("rating")  # the stored rating is pushed to every client too
        ws.send({"type": "status", "ref": "s"})
        status = ws.until("status")
        assert {d["serial"] for d in status["devices"]} == {"SB1", "SB2"}
        ws.send({"type": "login", "ref": "l", "serial": "SB2", "staff": "S5", "name": "Wu"})
        assert ws.until("ok")["op"] == "login"
        ws.send({"type": "prompt", "ref": "t2", "serial": "NOPE"})
        err = ws.until("error")
        assert (err["ref"], err["error"]) == ("t2", "unknown_device")
        conn.send(json.dumps({"type": "prompt", "ref": "bad", "serial": "SB1", "timeout": -1}))
        assert ws.until("error")["error"] == "bad_request"
        conn.send("[" * 2000)
        assert ws.until("error")["error"] == "bad_json"


def test_timeouts_and_superseded_over_the_websocket(
    sandbox: Sandbox, schemas: dict[str, Any]
) -> None:
    sandbox.customers[1].ignore = 1.0  # SB2's customer walks away
    try:
        with connect(ws_url(sandbox, ticket(sandbox))) as conn:
            ws = Checked(conn, schemas)
            ws.send({"type": "prompt", "ref": "a", "serial": "SB2", "timeout": 30})
            time.sleep(0.3)
            ws.send({"type": "prompt", "ref": "b", "serial": "SB2", "timeout": 0.3})
            first = ws.until("prompt_outcome")
            assert (first["ref"], first["state"]) == ("a", "superseded")
            second = ws.until("prompt_outcome")
            assert (second["ref"], second["state"], second["rating"]) == ("b", "timed_out", None)
    finally:
        sandbox.customers[1].ignore = 0.0


def test_a_client_that_goes_away_cancels_its_prompt(sandbox: Sandbox) -> None:
    sandbox.customers[1].ignore = 1.0
    try:
        with connect(ws_url(sandbox, ticket(sandbox))) as conn:
            conn.send(json.dumps({"type": "prompt", "serial": "SB2", "timeout": 60}))
            time.sleep(0.4)
            assert ratepad.sim.get("SB2").keypad.core.rules.prompt_id != 0
        end = time.monotonic() + 3
        while ratepad.sim.get("SB2").keypad.core.rules.prompt_id and time.monotonic() < end:
            time.sleep(0.02)
        assert ratepad.sim.get("SB2").keypad.core.rules.prompt_id == 0
    finally:
        sandbox.customers[1].ignore = 0.0


def test_tickets_are_single_use_and_origins_checked(sandbox: Sandbox) -> None:
    t = ticket(sandbox)
    with connect(ws_url(sandbox, t)):
        pass
    with pytest.raises(InvalidStatus):  # used already
        connect(ws_url(sandbox, t))
    with pytest.raises(InvalidStatus):  # an events ticket is not a ws ticket
        connect(ws_url(sandbox, ticket(sandbox, "events")))
    with pytest.raises(InvalidStatus):  # the token itself never goes into a URL
        connect(sandbox.url.replace("http://", "ws://") + f"/v1/ws?token={sandbox.token}")
    with pytest.raises(InvalidStatus) as info:
        evil = "http://evil.example"
        connect(ws_url(sandbox, ticket(sandbox)), origin=evil)  # type: ignore[arg-type]
    assert info.value.response.status_code == 403
    allowed = "http://app.example:3000"
    with connect(ws_url(sandbox, ticket(sandbox)), origin=allowed):  # type: ignore[arg-type]
        pass
    # non-browser clients may use the token in a header
    with connect(
        sandbox.url.replace("http://", "ws://") + "/v1/ws",
        additional_headers={"Authorization": f"Bearer {sandbox.token}"},
    ) as conn:
        conn.send(json.dumps({"type": "status"}))
        assert json.loads(conn.recv(timeout=5))["type"] in ("status", "device_status")
