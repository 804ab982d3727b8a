"""The rollups against the raw ratings: random uploads (scores on 3-, 4- and 5-key scales, every
flag, ratings either side of local midnights, prompts answered or timed out in later batches,
resent batches, a quarantined rating assigned later, an upheld appeal) leave hour, day and node
rollups equal to a rebuild from the raw rows (``ratepad server rollups --check``), and the
summary API over any span, aligned to local midnights or not, equals the count over the raw
rows. After a branch moves to another region, the node rollups follow it."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from serverlib import Server, Site, call, server_env, upload

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from webclient import logged_in

ORG = Path(__file__).resolve().parent / "org.toml"
TZ = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 11, 30, 0, 0, tzinfo=TZ)
START = END - timedelta(days=21)
WINDOW_OF = {"K1": "BJ-001", "K2": "BJ-001", "K3": "BJ-002", "K4": "SH-001"}
SUBTREE = {"HQ": {"BJ-001", "BJ-002", "SH-001"}, "BJ": {"BJ-001", "BJ-002"},
           "SH": {"SH-001"}, "BJ-001": {"BJ-001"}, "BJ-002": {"BJ-002"}}  # fmt: skip
EXCLUDED = 0x2 | 0x4 | 0x8 | (1 << 24)  # repeat, several keys, stuck key, upheld appeal


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def rollups_cli(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", "server", *args, "--db", site.db],
        capture_output=True, text=True, env=server_env(), cwd=site.dir, timeout=300,
    )  # fmt: skip


def random_ratings(rng: random.Random, count: int) -> list[dict[str, Any]]:
    out = []
    seqs = dict.fromkeys([*WINDOW_OF, "K9"], 0)
    for _ in range(count):
        serial = "K9" if len(out) == 7 else rng.choice([*WINDOW_OF])  # K9: unbound
        seqs[serial] += 1
        if rng.random() < 0.3:  # near a local midnight
            day = START + timedelta(days=rng.randrange(21))
            at = day + timedelta(seconds=rng.uniform(-1800, 1800))
        else:
            at = START + timedelta(seconds=rng.uniform(0, 21 * 86400))
        keys = rng.choice([3, 4, 5, 5, 5])
        score = rng.randint(1, keys)
        flags = rng.choice([0] * 12 + [0x1, 0x2, 0x4, 0x8, 0x10, 0x1 | 0x10])
        out.append({
            "serial": serial, "journal_seq": seqs[serial], "boot_id": 1,
            "uptime_ms": seqs[serial] * 1000, "time_ms": ms(at), "time_exact": True,
            "score": score, "key_count": keys,
            "level_value": None if rng.random() < 0.05 else (score - 1) * 100 // (keys - 1),
            "staff_id": rng.choice(["S001", "S002", "S101"]), "prompt_id": seqs[serial],
            "flags": flags,
        })  # fmt: skip
    return out


def prompts_of(rng: random.Random, ratings: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Two waves: every prompted rating's prompt issued (a minute before), then most answered
    and some timed out; plus prompts that never got a rating."""
    issued, closed = [], []
    for r in ratings:
        if r["flags"] & 0x1:
            continue
        p = {"serial": r["serial"], "prompt_id": r["prompt_id"], "staff_id": r["staff_id"],
             "issued_at_ms": r["time_ms"] - 60_000, "timeout_ms": 120_000}  # fmt: skip
        issued.append({**p, "state": "issued"})
        if rng.random() < 0.85:
            closed.append({**p, "state": "answered", "closed_at_ms": r["time_ms"],
                           "rating_seq": r["journal_seq"]})  # fmt: skip
        else:
            closed.append({**p, "state": "timed_out", "closed_at_ms": r["time_ms"] + 60_000})
    return [issued, closed]


def batches(rng: random.Random, items: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    i = 0
    while i < len(items):
        n = rng.randint(1, 60)
        yield items[i : i + n]
        i += n


def hour_of(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def expected(
    ratings: list[dict[str, Any]],
    prompts: dict[tuple[str, int], dict[str, Any]],
    branch_of: dict[str, str],
    node: str,
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    """The summary over the raw rows: ratings (and prompts, by their issue time) whose hour
    starts in [the hour of since, until)."""

    def inside(t_ms: int) -> bool:
        h = hour_of(datetime.fromtimestamp(t_ms / 1000, UTC))
        return hour_of(since) <= h < until

    mine = [r for r in ratings
            if branch_of.get(r["serial"]) in SUBTREE[node] and inside(r["time_ms"])]  # fmt: skip
    counted = [r for r in mine if not r["flags"] & EXCLUDED]
    ps = [p for p in prompts.values()
          if branch_of.get(p["serial"]) in SUBTREE[node] and inside(p["issued_at_ms"])]  # fmt: skip
    return {
        "n_all": len(mine),
        "n": len(counted),
        "counts": {str(s): sum(1 for r in counted if r["score"] == s) for s in range(1, 6)},
        "top2": sum(1 for r in counted if r["score"] >= r["key_count"] - 1),
        "prompts": len(ps),
        "answered": sum(1 for p in ps if p["state"] == "answered"),
    }


def spans(rng: random.Random) -> list[tuple[datetime, datetime]]:
    out = [(START, END), (START + timedelta(days=3), START + timedelta(days=4))]
    for _ in range(12):
        a = START + timedelta(minutes=rng.randrange(0, 21 * 1440, rng.choice([1, 60, 1440])))
        b = a + timedelta(minutes=rng.randrange(1, 9 * 1440, rng.choice([1, 60, 1440])))
        out.append((a, b))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_rollups_equal_the_raw_ratings(site: Site, server: Server, seed: int) -> None:
    rng = random.Random(seed)
    ratings = random_ratings(rng, 400)
    waves = prompts_of(rng, [r for r in ratings if r["serial"] != "K9"])
    by_branch: dict[str, list[dict[str, Any]]] = {}
    for r in ratings:
        by_branch.setdefault(WINDOW_OF.get(r["serial"], "BJ-001"), []).append(r)
    for branch, rows in by_branch.items():
        sent = list(batches(rng, rows))
        for batch in sent + rng.sample(sent, k=min(3, len(sent))):  # some sent twice
            upload(server, site.keys[branch], ratings=batch)
    for wave in waves:
        for branch in ("BJ-001", "BJ-002", "SH-001"):
            mine = [p for p in wave if WINDOW_OF[p["serial"]] == branch]
            for batch in batches(rng, mine):
                upload(server, site.keys[branch], prompts=batch)
    prompts = {(p["serial"], p["prompt_id"]): p for wave in waves for p in wave}
    # the quarantined rating goes to a window of BJ-001
    status, _ = call(server.url, "/api/v1/quarantine/assign", site.tokens["bj001-admin"],
                     {"serial": "K9", "journal_seq": 1, "window": "BJ-001-W2"})  # fmt: skip
    assert status == 200
    branch_of = {**WINDOW_OF, "K9": "BJ-001"}
    # an upheld appeal against one of S001's counted ratings at K1 (appeals: 3 or less)
    target = next(r for r in ratings if r["serial"] == "K1" and r["staff_id"] == "S001"
                  and r["score"] <= 3 and not r["flags"] & EXCLUDED)  # fmt: skip
    clerk = logged_in(server.url, "s001")
    assert clerk.post("/appeals/", {"serial": "K1", "journal_seq": str(target["journal_seq"]),
                                    "reason": "test"})[0] == 302  # fmt: skip
    manager = logged_in(server.url, "bj-manager")
    assert manager.post("/appeals/1/decide", {"decision": "upheld"})[0] == 302
    target["flags"] |= 1 << 24

    check = rollups_cli(site, "rollups", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("agree with the raw ratings") == 3

    for since, until in spans(rng):
        for node in ("HQ", "BJ", "BJ-002"):
            q = (f"/api/v1/summary?node={node}&since={since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
                 f"&until={until.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
            status, got = call(server.url, q, site.tokens["hq-admin"])
            assert status == 200, got
            want = expected(ratings, prompts, branch_of, node, since, until)
            assert {k: got[k] for k in ("n_all", "n", "counts", "prompts")} == {
                k: want[k] for k in ("n_all", "n", "counts", "prompts")
            }, (node, since, until)
            if want["n"]:  # the API's figures are unrounded
                assert got["csat"] == pytest.approx(want["top2"] / want["n"], rel=1e-12)
            if want["prompts"]:
                assert got["response_rate"] == pytest.approx(
                    want["answered"] / want["prompts"], rel=1e-12
                )

    # a branch moves: SH-001 now under BJ; its old ratings count for BJ, not SH
    moved = site.dir / "moved.toml"
    moved.write_text(ORG.read_text(encoding="utf-8").replace(
        'code = "SH-001"\nname = "浦东支行"\nparent = "SH"',
        'code = "SH-001"\nname = "浦东支行"\nparent = "BJ"'), encoding="utf-8")  # fmt: skip
    assert rollups_cli(site, "load-org", str(moved)).returncode == 0
    assert rollups_cli(site, "rollups", "--check").returncode == 0
    status, bj = call(server.url, "/api/v1/summary?node=BJ&since=2026-11-01T00:00:00Z"
                      "&until=2026-12-01T00:00:00Z", site.tokens["hq-admin"])  # fmt: skip
    SUBTREE["BJ"] = SUBTREE["HQ"]
    try:
        want = expected(ratings, prompts, branch_of, "BJ", datetime(2026, 11, 1, tzinfo=UTC),
                        datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
    finally:
        SUBTREE["BJ"] = {"BJ-001", "BJ-002"}
    assert status == 200 and bj["n_all"] == want["n_all"] and bj["n"] == want["n"]
    status, sh = call(server.url, "/api/v1/summary?node=SH", site.tokens["hq-admin"])
    assert status == 200 and sh["n_all"] == 0


def test_rollups_check_finds_a_tampered_row(site: Site, server: Server) -> None:
    rng = random.Random(3)
    upload(
        server,
        site.keys["BJ-001"],
        ratings=[r for r in random_ratings(rng, 30) if WINDOW_OF.get(r["serial"]) == "BJ-001"],
    )
    server.close()
    site.sql("UPDATE rollups_nodedayrollup SET n = n + 1 WHERE id = "
                  "(SELECT MIN(id) FROM rollups_nodedayrollup)")  # fmt: skip
    check = rollups_cli(site, "rollups", "--check")
    assert check.returncode == 1 and "rollups_nodedayrollup: 1 rows differ" in check.stdout
    assert rollups_cli(site, "rollups", "--rebuild").returncode == 0
    assert rollups_cli(site, "rollups", "--check").returncode == 0
