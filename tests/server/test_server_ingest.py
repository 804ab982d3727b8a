"""The upload API: a batch is committed once, replays store nothing twice, ratings go to the
window their keypad was bound to, unbound ones to quarantine, rollups agree with the raw rows."""

from __future__ import annotations

from serverlib import T0, Server, Site, call, rating, upload


def test_a_batch_is_stored_once_however_often_it_comes(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    batch = [rating("K1", s, 1 + s % 5) for s in range(1, 51)]
    assert upload(server, key, ratings=batch)[1]["stored"] == 50
    status, again = upload(server, key, ratings=batch + batch[:5])
    assert status == 200 and (again["stored"], again["duplicates"]) == (0, 55)
    status, got = call(server.url, "/api/v1/ratings?node=BJ-001&limit=1000",
                       site.tokens["hq-admin"])  # fmt: skip
    assert status == 200
    assert [r["journal_seq"] for r in got["ratings"]] == list(range(1, 51))
    first = got["ratings"][0]
    assert (first["window"], first["branch"], first["score"]) == ("BJ-001-W1", "BJ-001", 2)
    assert first["time"].startswith("2026-") and first["flags"] == [] and first["prompted"]


def test_unbound_and_foreign_keypads_go_to_quarantine(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    # K9 is bound to no window; K4 is bound to a window of SH-001, not this agent's branch
    body = upload(server, key, ratings=[rating("K9", 1), rating("K4", 1), rating("K1", 1)])[1]
    assert (body["stored"], body["quarantined"], body["duplicates"]) == (1, 2, 0)
    again = upload(server, key, ratings=[rating("K9", 1), rating("K4", 1)])[1]
    assert (again["stored"], again["quarantined"]) == (0, 2)  # kept once, still in quarantine
    other = upload(server, key, ratings=[rating("K9", 1, 1)])[1]  # other content, same key
    assert (other["stored"], other["quarantined"]) == (0, 1)  # kept beside the first
    status, q = call(server.url, "/api/v1/quarantine?node=BJ-001", site.tokens["bj-manager"])
    assert status == 200
    assert {(r["serial"], r["reason"]) for r in q["quarantine"]} == {
        ("K9", "no_binding"),
        ("K4", "other_branch"),
    }
    assert len(q["quarantine"]) == 3
    # SH sees nothing of it: the agent of BJ-001 cannot write into SH-001's windows
    status, sh = call(server.url, "/api/v1/ratings?node=SH", site.tokens["sh-manager"])
    assert status == 200 and sh["ratings"] == []
    summary = call(server.url, "/api/v1/summary?node=BJ-001", site.tokens["bj-manager"])[1]
    assert summary["n"] == 1  # quarantined ratings do not count until assigned
    # an admin assigns K9's rating to a window of the branch: it counts from then on
    status, done = call(
        server.url,
        "/api/v1/quarantine/assign",
        site.tokens["bj001-admin"],
        {"serial": "K9", "journal_seq": 1, "window": "BJ-001-W2"},
    )
    assert status == 200 and done == {"assigned": True}
    summary = call(server.url, "/api/v1/summary?node=BJ-001", site.tokens["bj-manager"])[1]
    assert summary["n"] == 2
    # ... but not to another subtree's window
    status, _ = call(
        server.url,
        "/api/v1/quarantine/assign",
        site.tokens["bj001-admin"],
        {"serial": "K4", "journal_seq": 1, "window": "SH-001-W1"},
    )
    assert status == 403


def test_summary_from_rollups(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    scores = [5, 5, 4, 3, 1, 5, 4, 2]
    ratings = [rating("K1", i + 1, s) for i, s in enumerate(scores)]
    ratings.append(rating("K2", 1, 5, flags=0x2))  # a repeat: kept, not counted for KPIs
    prompts = [
        {"serial": "K1", "prompt_id": p, "staff_id": "S001", "state": state,
         "issued_at_ms": T0 + p, "timeout_ms": 30000}
        for p, state in ((1, "answered"), (2, "answered"), (3, "timed_out"), (4, "issued"))
    ]  # fmt: skip
    upload(server, key, ratings=ratings, prompts=prompts)
    # the prompt left open is answered later, once: the response rate counts it once
    upload(server, key, prompts=[{**prompts[3], "state": "answered", "rating_seq": 8}] * 2)
    status, s = call(server.url, "/api/v1/summary?node=BJ", site.tokens["bj-viewer"])
    assert status == 200
    assert (s["node"], s["n"], s["n_all"], s["prompts"]) == ("BJ", 8, 9, 4)
    assert s["index"] == sum([100, 100, 80, 60, 0, 100, 80, 40]) / 8
    assert s["csat"] == 5 / 8 and s["response_rate"] == 0.75
    lo, hi = s["csat_ci"]
    assert 0.3 < lo < 5 / 8 < hi < 0.9
    # a staff user sees their own figures only
    upload(server, key, ratings=[rating("K2", 2, 1, staff="S002")])
    mine = call(server.url, "/api/v1/summary?node=BJ-001", site.tokens["s001"])[1]
    assert mine["n"] == 8
    everyone = call(server.url, "/api/v1/summary?node=BJ-001", site.tokens["bj-manager"])[1]
    assert everyone["n"] == 9


def test_devices_and_staff_sessions(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    device = {"serial": "K1", "connected": True, "firmware": "0.1.0", "state": "idle",
              "faults": ["stuck_key"], "unacked": 0, "presses": 3, "staff_id": "S001",
              "updated_at_ms": T0}  # fmt: skip
    session = {"serial": "K1", "staff_id": "S001", "started_at_ms": T0}
    body = upload(server, key, devices=[device], sessions=[session])[1]
    assert (body["devices"], body["sessions"]) == (1, 1)
    older = {**device, "state": "rating", "updated_at_ms": T0 - 1000}  # late: history only
    upload(server, key, devices=[older], sessions=[{**session, "ended_at_ms": T0 + 60_000}])
    status, d = call(server.url, "/api/v1/devices?node=BJ", site.tokens["bj-viewer"])
    assert status == 200
    (k1,) = d["devices"]
    assert (k1["window"], k1["state"], k1["faults"]) == ("BJ-001-W1", "idle", ["stuck_key"])


def test_an_agent_cannot_write_another_branchs_keypads(site: Site, server: Server) -> None:
    sh = {"serial": "K4", "connected": True, "state": "idle", "faults": [],
          "updated_at_ms": T0}  # fmt: skip
    upload(server, site.keys["SH-001"], devices=[sh])
    # BJ-001's agent claims SH-001's keypad: its state and sessions are not taken
    upload(server, site.keys["BJ-001"], devices=[{**sh, "state": "fault", "updated_at_ms": T0 + 1}],
           sessions=[{"serial": "K4", "staff_id": "S001", "started_at_ms": T0}])  # fmt: skip
    got = call(server.url, "/api/v1/devices?node=SH", site.tokens["sh-manager"])[1]["devices"]
    assert [(d["serial"], d["state"], d["branch"]) for d in got] == [("K4", "idle", "SH-001")]
    assert call(server.url, "/api/v1/devices?node=BJ", site.tokens["bj-manager"])[1] == {
        "devices": []
    }


def test_bad_batches_are_refused_with_a_json_4xx(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    bad = [
        {"ratings": [{**rating("K1", 1), "score": 0}]},
        {"ratings": [{**rating("K1", 1), "journal_seq": "x"}]},
        {"ratings": "nope"},
    ]
    for body in bad:
        status, answer = upload(server, key, 422, **body)
        assert status == 422 and "detail" in answer, answer
    status, answer = call(server.url, "/api/v1/ingest/batch", "rpk_nothing_here", {})
    assert status == 401
    req_status, _ = call(server.url, "/api/v1/ratings", site.keys["BJ-001"])
    assert req_status == 401  # an agent key reads nothing
    assert call(server.url, "/api/v1/ratings?node=BJ-001", site.tokens["hq-admin"])[1] == {
        "ratings": []
    }
