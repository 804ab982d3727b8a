"""Ownership of the dedupe keys: an agent key writes only for keypads bound to its branch's
windows. A squatting key (another branch's, with the serials printed on the keypads) neither
takes ratings, prompts, staff sessions nor device states from the rightful branch, whose later
upload stores everything; a resend with other content is kept as a visible conflict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from serverlib import T0, Server, Site, call, rating, server_env, upload

ORG = Path(__file__).with_name("org.toml")


def prompt(serial: str, pid: int, state: str = "answered", staff: str = "S101") -> dict[str, Any]:
    return {"serial": serial, "prompt_id": pid, "staff_id": staff, "state": state,
            "issued_at_ms": T0 + pid * 1000, "timeout_ms": 30_000}  # fmt: skip


def device(serial: str, state: str, at: int = T0) -> dict[str, Any]:
    return {"serial": serial, "connected": True, "state": state, "faults": [],
            "updated_at_ms": at}  # fmt: skip


def test_a_squatting_key_takes_nothing_from_the_rightful_branch(site: Site, server: Server) -> None:
    squatter, owner = site.keys["BJ-001"], site.keys["SH-001"]
    # BJ-001's key sends what it pretends K4 (SH-001's keypad) recorded, stamped later, first
    fake = [rating("K4", s, 1, staff="S001") for s in range(1, 7)]
    body = upload(server, squatter, ratings=fake,
                  prompts=[prompt("K4", 1, "timed_out", "S001"), prompt("K4", 2, "cancelled")],
                  sessions=[{"serial": "K4", "staff_id": "S001", "started_at_ms": T0}],
                  devices=[device("K4", "fault", T0 + 1000), device("K4", "rating", T0 + 2000)],
                  )[1]  # fmt: skip
    assert (body["stored"], body["quarantined"], body["duplicates"]) == (0, 6, 0)
    assert (body["prompts"], body["sessions"], body["devices"]) == (0, 0, 0)
    # its device states are kept as one row per keypad: the latest
    held = "SELECT count(*), max(CAST(item AS TEXT)) FROM ingest_quarantine WHERE kind = 'device'"
    count, latest = site.sql(held) or (0, "")
    assert count == 1 and '"rating"' in latest, (count, latest)
    # SH-001's own agent then uploads K4's real records: all of it stores
    real = [rating("K4", s, 5, staff="S101") for s in range(1, 7)]
    body = upload(server, owner, ratings=real, prompts=[prompt("K4", 1), prompt("K4", 2)],
                  sessions=[{"serial": "K4", "staff_id": "S101", "started_at_ms": T0}],
                  devices=[device("K4", "idle")])[1]  # fmt: skip
    assert (body["stored"], body["duplicates"], body["quarantined"], body["conflicts"]) == (
        6, 0, 0, 0)  # fmt: skip
    assert (body["prompts"], body["sessions"], body["devices"]) == (2, 1, 1)
    sh = site.tokens["sh-manager"]
    got = call(server.url, "/api/v1/ratings?node=SH", sh)[1]["ratings"]
    assert [(r["journal_seq"], r["score"], r["staff_id"], r["window"]) for r in got] == [
        (s, 5, "S101", "SH-001-W1") for s in range(1, 7)
    ]
    summary = call(server.url, "/api/v1/summary?node=SH", sh)[1]
    assert (summary["n"], summary["prompts"], summary["response_rate"]) == (6, 2, 1.0)
    devices = call(server.url, "/api/v1/devices?node=SH", sh)[1]["devices"]
    assert [(d["serial"], d["state"], d["branch"]) for d in devices] == [("K4", "idle", "SH-001")]
    assert site.sql("SELECT staff_id, branch_id = (SELECT id FROM org_node WHERE code ="
                    " 'SH-001') FROM ingest_staffsession") == ("S101", 1)  # fmt: skip
    # the squatter's ratings stay in its branch's quarantine; BJ sees none of SH's
    q = call(server.url, "/api/v1/quarantine?node=BJ-001", site.tokens["bj-manager"])[1]
    assert {(r["serial"], r["reason"]) for r in q["quarantine"]} == {("K4", "other_branch")}
    assert len(q["quarantine"]) == 6
    assert call(server.url, "/api/v1/ratings?node=BJ", site.tokens["bj-manager"])[1] == {
        "ratings": []
    }
    # assigning a squatted rating later takes no second copy: its key is SH's by now
    status, answer = call(server.url, "/api/v1/quarantine/assign", site.tokens["bj001-admin"],
                          {"serial": "K4", "journal_seq": 1, "window": "BJ-001-W1"})  # fmt: skip
    assert status == 409 and "conflicts" in answer["detail"], answer
    assert (
        len(call(server.url, "/api/v1/ratings?node=HQ", site.tokens["hq-admin"])[1]["ratings"]) == 6
    )
    listed = call(server.url, "/api/v1/conflicts?node=HQ", site.tokens["hq-admin"])[1]["conflicts"]
    assert [(c["serial"], c["journal_seq"], c["branch"]) for c in listed] == [("K4", 1, "BJ-001")]


def test_the_owner_replaces_an_unbound_keypads_provisional_rows(site: Site, server: Server) -> None:
    # K9 is bound to no window: a key may report it without a window until an owner does
    upload(server, site.keys["BJ-001"], devices=[device("K9", "idle")],
           prompts=[prompt("K9", 1, "issued", "S001")])  # fmt: skip
    got = call(server.url, "/api/v1/devices?node=BJ-001", site.tokens["bj-manager"])[1]
    assert [(d["serial"], d["window"]) for d in got["devices"]] == [("K9", None)]
    body = upload(server, site.keys["BJ-002"], devices=[device("K9", "fault", T0 + 1000)],
                  prompts=[prompt("K9", 1, "timed_out", "S002")])[1]  # fmt: skip
    assert (body["devices"], body["prompts"]) == (0, 0)  # not BJ-002's either: BJ-001's stay
    # K9 becomes BJ-002-W1's keypad (its first binding: since ever); BJ-002's upload wins
    org = ORG.read_text(encoding="utf-8").replace('keypad = "K3"', 'keypad = "K9"')
    (site.dir / "org.toml").write_text(org, encoding="utf-8")
    loaded = subprocess.run(
        [sys.executable, "-m", "ratepad", "server", "load-org", "org.toml", "--db", site.db],
        capture_output=True, text=True, env=server_env(), cwd=site.dir, timeout=120,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    body = upload(server, site.keys["BJ-002"], devices=[device("K9", "rating")],
                  prompts=[prompt("K9", 1, "answered", "S002")])[1]  # fmt: skip
    assert (body["devices"], body["prompts"]) == (1, 1)
    got = call(server.url, "/api/v1/devices?node=BJ", site.tokens["bj-manager"])[1]
    assert [(d["serial"], d["state"], d["branch"], d["window"]) for d in got["devices"]] == [
        ("K9", "rating", "BJ-002", "BJ-002-W1")
    ]
    summary = call(server.url, "/api/v1/summary?node=BJ-002", site.tokens["bj-manager"])[1]
    assert (summary["prompts"], summary["response_rate"]) == (1, 1.0)
    # from now on BJ-001's key writes K9 no more
    body = upload(server, site.keys["BJ-001"], devices=[device("K9", "fault", T0 + 5000)],
                  prompts=[prompt("K9", 1, "cancelled", "S001")])[1]  # fmt: skip
    assert (body["devices"], body["prompts"]) == (0, 0)
    check = subprocess.run(
        [sys.executable, "-m", "ratepad", "server", "rollups", "--check", "--db", site.db],
        capture_output=True, text=True, env=server_env(), cwd=site.dir, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_differing_resend_is_kept_as_a_conflict(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    upload(server, key, ratings=[rating("K1", s, 4) for s in (1, 2, 3)])
    changed = {**rating("K1", 2, 1), "staff_id": "S002"}
    for _ in range(2):  # the same resend twice: counted each time, kept once
        body = upload(server, key, ratings=[changed, rating("K1", 3, 4)])[1]
        assert (body["stored"], body["duplicates"], body["conflicts"]) == (0, 1, 1)
    # the stored rating is untouched ...
    got = call(server.url, "/api/v1/ratings?node=BJ-001", site.tokens["hq-admin"])[1]["ratings"]
    assert [(r["journal_seq"], r["score"], r["staff_id"]) for r in got] == [
        (1, 4, "S001"), (2, 4, "S001"), (3, 4, "S001")]  # fmt: skip
    # ... and the other version listed for admins, with what differs and who sent it
    status, listed = call(server.url, "/api/v1/conflicts?node=BJ", site.tokens["hq-admin"])
    assert status == 200, listed
    (c,) = listed["conflicts"]
    assert (c["serial"], c["journal_seq"], c["branch"]) == ("K1", 2, "BJ-001")
    assert set(c["differs"]) == {"score", "level_value", "staff_id"}
    assert (c["rating"]["score"], c["stored"]["score"]) == (1, 4)
    assert call(server.url, "/api/v1/conflicts?node=BJ", site.tokens["bj-manager"])[0] == 403
    assert call(server.url, "/api/v1/conflicts?node=SH", site.tokens["bj001-admin"])[0] == 403
    summary = call(server.url, "/api/v1/summary?node=BJ-001", site.tokens["bj-manager"])[1]
    assert summary["n"] == 3
