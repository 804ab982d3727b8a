"""Bounded input at ingest: times far from the server's clock go to quarantine and make no
partition (partitions are made ahead by ``init`` / ``partitions``, never by a batch); control
characters and over-long faults are refused with a 422 for the batch (the agent then splits
it to find the bad item), never a 500."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from serverlib import T0, Server, Site, call, rating, server_env, upload

Y1970 = 86_400_000  # 1970-01-02
Y2199 = 7_258_000_000_000  # 2199-12-28


def partitions(site: Site) -> int:
    if site.cluster is None:
        return 0
    row = site.sql("SELECT count(*) FROM pg_inherits")
    assert row is not None
    return int(row[0])


def device(state: str, at: int, **more: Any) -> dict[str, Any]:
    return {"serial": "K1", "connected": True, "state": state, "faults": [],
            "updated_at_ms": at, **more}  # fmt: skip


def test_odd_times_are_quarantined_and_make_no_partition(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    before = partitions(site)
    odd = [{**rating("K1", 1), "time_ms": Y1970}, {**rating("K1", 2), "time_ms": Y2199}]
    body = upload(
        server, key, ratings=[*odd, rating("K1", 3), rating("K2", 1)],
        prompts=[{"serial": "K1", "prompt_id": 1, "state": "issued", "issued_at_ms": Y2199}],
        sessions=[{"serial": "K1", "staff_id": "S001", "started_at_ms": Y1970}],
        devices=[device("fault", Y2199)],
    )[1]  # fmt: skip
    assert (body["stored"], body["quarantined"], body["duplicates"]) == (2, 2, 0)
    assert (body["prompts"], body["sessions"], body["devices"]) == (0, 0, 0)
    assert partitions(site) == before
    # the keypad's state is not frozen in 2199: the next real state is taken
    upload(server, key, devices=[device("idle", T0)])
    got = call(server.url, "/api/v1/devices?node=BJ-001", site.tokens["bj-manager"])[1]
    assert [(d["serial"], d["state"]) for d in got["devices"]] == [("K1", "idle")]
    status, q = call(server.url, "/api/v1/quarantine?node=BJ-001", site.tokens["bj-manager"])
    assert status == 200
    assert {(r["journal_seq"], r["reason"]) for r in q["quarantine"]} == {
        (1, "time_out_of_range"), (2, "time_out_of_range")}  # fmt: skip
    status, got = call(server.url, "/api/v1/ratings?node=HQ", site.tokens["hq-admin"])
    assert status == 200 and len(got["ratings"]) == 2, got
    # a quarantined rating outside the span cannot be assigned either (it would need a partition)
    status, answer = call(server.url, "/api/v1/quarantine/assign", site.tokens["bj001-admin"],
                          {"serial": "K1", "journal_seq": 2, "window": "BJ-001-W1"})  # fmt: skip
    assert status == 409 and "outside" in answer["detail"], answer
    # the keypad's real rating under that key, later, still stores: the odd one took no key
    assert upload(server, key, ratings=[rating("K1", 2)])[1]["stored"] == 1
    assert partitions(site) == before


def test_a_missing_partition_holds_the_rating_not_the_batch(site: Site) -> None:
    if site.cluster is None:
        pytest.skip("partitions are PostgreSQL's")
    month = datetime.fromtimestamp(T0 / 1000, UTC)
    site.sql(f"DROP TABLE ingest_rating_{month:%Y%m}")
    server = site.server()
    try:
        body = upload(server, site.keys["BJ-001"], ratings=[rating("K1", 1)])[1]
        assert (body["stored"], body["quarantined"]) == (0, 1)
        q = call(server.url, "/api/v1/quarantine?node=BJ-001", site.tokens["bj-manager"])[1]
        assert [r["reason"] for r in q["quarantine"]] == ["no_partition"]
        # the worker's periodic step (``sendalerts --once`` runs every step) makes it again
        out = subprocess.run(
            [sys.executable, "-m", "ratepad", "server", "sendalerts", "--once", "--db", site.db],
            capture_output=True,
            text=True,
            env=server_env(),
            cwd=site.dir,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        made = site.sql(f"SELECT to_regclass('ingest_rating_{month:%Y%m}')::text")
        assert made == (f"ingest_rating_{month:%Y%m}",)
        assign = {"serial": "K1", "journal_seq": 1, "window": "BJ-001-W1"}
        token = site.tokens["bj001-admin"]
        status, answer = call(server.url, "/api/v1/quarantine/assign", token, assign)
        assert status == 200, answer
        assert upload(server, site.keys["BJ-001"], ratings=[rating("K1", 2)])[1]["stored"] == 1
    finally:
        server.close()


BAD = [
    ("serial NUL", {"ratings": [{**rating("K1", 1), "serial": "K\x001"}]}),
    ("staff_id control", {"ratings": [{**rating("K1", 1), "staff_id": "S\x01"}]}),
    (
        "prompt staff NUL",
        {"prompts": [{"serial": "K1", "prompt_id": 1, "state": "issued", "staff_id": "\x00"}]},
    ),
    (
        "session staff NUL",
        {"sessions": [{"serial": "K1", "staff_id": "S\x00", "started_at_ms": T0}]},
    ),
    # a staff id is an identifier: not blank, no space at either end, no bidi override
    *(
        (
            f"session staff {sid!r}",
            {"sessions": [{"serial": "K1", "staff_id": sid, "started_at_ms": T0}]},
        )
        for sid in ("   ", " S001", "S001 ", "S\u202e100", "\u200bS001")
    ),
    ("rating staff bidi", {"ratings": [{**rating("K1", 1), "staff_id": "\u202eS001"}]}),
    # numbers are numbers, flags are booleans: nothing is coerced
    ("time as text", {"ratings": [{**rating("K1", 1), "time_ms": str(T0)}]}),
    ("time as float", {"ratings": [{**rating("K1", 1), "time_ms": T0 + 0.5}]}),
    ("score as float", {"ratings": [{**rating("K1", 1), "score": 5.0}]}),
    ("exact as 1", {"ratings": [{**rating("K1", 1), "time_exact": 1}]}),
    ("firmware NUL", {"devices": [device("idle", T0, firmware="1.0\x00")]}),
    ("state NUL", {"devices": [device("idle\x00", T0)]}),
    ("fault NUL", {"devices": [device("idle", T0, faults=["stuck\x00key"])]}),
    ("fault with a space", {"devices": [device("idle", T0, faults=["stuck key"])]}),
    ("faults over 200", {"devices": [device("idle", T0, faults=["f" * 60] * 4)]}),
    ("fault over 64", {"devices": [device("idle", T0, faults=["f" * 65])]}),
]


def test_control_characters_and_long_faults_are_a_422(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    for name, body in BAD:
        status, answer = call(server.url, "/api/v1/ingest/batch", key, body)
        assert status == 422 and "detail" in answer, (name, status, answer)
    # the longest faults that fit are taken whole
    fits = device("idle", T0, faults=["f" * 64, "g" * 64, "h" * 64, "i" * 5])
    assert upload(server, key, devices=[fits])[1]["devices"] == 1
    got = call(server.url, "/api/v1/devices?node=BJ-001", site.tokens["bj-manager"])[1]
    assert got["devices"][0]["faults"] == fits["faults"]
