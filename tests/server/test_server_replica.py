"""Reports from a replica: with ``--db-replica``, the report page, the summary and exports read
from a hot standby (a second throwaway cluster made with ``pg_basebackup -R`` from the test's
primary), uploads and every other write go to the primary; the page says when the replica is
behind; a replica that stops is left aside."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from pg import Cluster, standby_of, wait_for
from prometheus_client.parser import text_string_to_metric_families
from serverlib import Server, Site, call, rating, upload
from webclient import WebClient, logged_in

pytestmark = pytest.mark.parametrize("site", ["postgresql"], indirect=True)


@pytest.fixture
def primary_and_standby(site: Site) -> Iterator[tuple[str, Cluster, str]]:
    """The test's database copied into a primary of its own, and that primary's hot standby."""
    assert site.cluster is not None
    primary = Cluster(fsync=False)
    standby = None
    try:
        url = primary.create_database("ratepad")
        dump = subprocess.run([str(primary.bin / "pg_dump"), "-Fc", site.db],
                              check=True, capture_output=True)  # fmt: skip
        subprocess.run([str(primary.bin / "pg_restore"), "--no-owner", "-d", url],
                       input=dump.stdout, check=True, capture_output=True)  # fmt: skip
        standby = standby_of(primary)
        yield url, standby, standby.url("ratepad")
    finally:
        if standby is not None:
            standby.close()
        primary.close()


def summary_n(server: Server, site: Site) -> int:
    status, answer = call(server.url, "/api/v1/summary?node=BJ", site.tokens["bj-manager"])
    assert status == 200, answer
    return int(answer["n"])


def scraped(server: Server) -> dict[str, float]:
    text = call(server.url, "/metrics")[1]
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def report(web: WebClient) -> str:
    status, body = web.get("/report/BJ/?since=2026-11-01&until=2026-12-31")
    assert status == 200
    return body.decode()


def test_reports_read_from_the_standby_and_say_when_it_is_behind(
    site: Site, primary_and_standby: tuple[str, Cluster, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary_url, standby, standby_url = primary_and_standby
    monkeypatch.setenv("RATEPAD_REPLICA_CHECK_S", "0.2")
    monkeypatch.setenv("RATEPAD_REPLICA_LAG_WARN_S", "1")
    server = Server(primary_url, site.dir, "--db-replica", standby_url)
    try:
        key = site.keys["BJ-001"]
        assert upload(server, key, ratings=[rating("K1", s) for s in range(1, 6)])[1]["stored"] == 5
        wait_for(lambda: summary_n(server, site) == 5, 30, "the standby to replay the upload",
                 interval=0.2)  # fmt: skip
        web = logged_in(server.url, "bj-manager")  # a write (the session): on the primary
        web.headers["Accept-Language"] = "en"
        assert 'id="replica-lag"' not in report(web)

        with standby.connect("ratepad") as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        # uploads still commit (on the primary: the standby would refuse them) ...
        assert upload(server, key, ratings=[rating("K1", s) for s in range(6, 9)])[1]["stored"] == 3
        # ... while the summary, the report page and the exports show what the standby has
        wait_for(lambda: 'id="replica-lag"' in report(web), 30, "the page to say it is behind",
                 interval=0.2)  # fmt: skip
        page = report(web)
        assert "read from a replica" in page and "s behind the database" in page
        assert summary_n(server, site) == 5
        status, csv = web.get("/ratings/BJ/export.csv?raw=1&since=2026-11-01&until=2026-12-31")
        assert status == 200 and len(csv.decode("utf-8-sig").strip().splitlines()) == 1 + 5
        assert float(web.last_headers["Ratepad-Replica-Lag"]) >= 1  # past the 1 s warning
        metrics = scraped(server)
        assert metrics["ratepad_replica_up"] == 1 and metrics["ratepad_replica_lag_seconds"] >= 1
        status, rows = call(
            server.url, "/api/v1/ratings?node=BJ&limit=100", site.tokens["bj-manager"]
        )
        assert status == 200 and len(rows["ratings"]) == 8  # listings read the primary

        with standby.connect("ratepad") as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
        wait_for(lambda: summary_n(server, site) == 8, 30, "the standby to catch up", interval=0.2)
        wait_for(lambda: 'id="replica-lag"' not in report(web), 30, "the notice to go",
                 interval=0.2)  # fmt: skip

        standby.stop("immediate")  # the replica away: reports read from the primary
        assert upload(server, key, ratings=[rating("K1", 9)])[1]["stored"] == 1

        def from_primary() -> bool:
            status, answer = call(server.url, "/api/v1/summary?node=BJ", site.tokens["bj-manager"])
            return status == 200 and answer["n"] == 9

        wait_for(from_primary, 30, "the summary to come from the primary", interval=0.2)
        assert 'id="replica-lag"' not in report(web)
        assert scraped(server)["ratepad_replica_up"] == 0
    finally:
        server.close()


def test_the_replicas_sessions_are_read_only_even_on_a_primary(site: Site) -> None:
    """A primary named as --db-replica by mistake: its sessions there write nothing."""
    import psycopg

    from ratepad_server.dbrouter import replica_databases

    options: Any = replica_databases(site.db)["replica"]["OPTIONS"]
    with (
        psycopg.connect(site.db, options=options["options"]) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TABLE nothing (x int)")
