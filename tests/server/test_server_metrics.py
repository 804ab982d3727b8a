"""Operations: ``/metrics`` (Prometheus text, counted across processes), ``/healthz`` and
``/readyz`` for load balancers, JSON logs, and the example alert rules and Grafana dashboard
of docs/monitoring, which may name only metrics the server exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pg import wait_for
from prometheus_client.parser import text_string_to_metric_families
from serverlib import Server, Site, call, rating, server_env, upload

from ratepad_server.ops.metrics import EXPORTED

MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: Server, token: str | None = None) -> Samples:
    status, text = call(server.url, "/metrics", token)
    assert status == 200, text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_count_uploads_streams_silent_agents_and_database_errors(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    server = site.server("--log-format", "json")
    try:
        key = site.keys["BJ-001"]
        upload(server, key, ratings=[rating("K1", s) for s in (1, 2, 3)])
        upload(server, key, ratings=[rating("K1", 1)])  # the same again: a duplicate
        upload(server, key, ratings=[rating("K1", 2, score=1)])  # other content: a conflict
        upload(server, key, ratings=[rating("K9", 1)])  # bound to no window: quarantined
        upload(server, key)  # a heartbeat
        # SH-001's agent was last heard from long ago: silent
        site.sql("UPDATE ingest_agentkey SET last_upload_at = '2020-01-01 00:00:00' WHERE "
                 "branch_id = (SELECT id FROM org_node WHERE code = 'SH-001')")  # fmt: skip
        stream = urllib.request.urlopen(urllib.request.Request(
            f"{server.url}api/v1/live?node=BJ&seconds=1",
            headers={"Authorization": f"Bearer {site.tokens['bj-manager']}"},
        ), timeout=30)  # fmt: skip
        samples = scrape(server)
        results = {r: value(samples, "ratepad_ingest_ratings_total", result=r)
                   for r in ("stored", "duplicate", "conflict", "quarantined")}  # fmt: skip
        assert results == {"stored": 3, "duplicate": 1, "conflict": 1, "quarantined": 1}
        batches = "ratepad_ingest_batches_total"
        assert value(samples, batches, kind="data", outcome="committed") == 4
        assert value(samples, batches, kind="heartbeat", outcome="committed") == 1
        assert value(samples, "ratepad_ingest_batch_seconds_count", kind="data") == 4
        assert value(samples, "ratepad_live_streams_open") == 1
        assert value(samples, "ratepad_agents") == 2  # BJ-001 and SH-001 have uploaded
        assert value(samples, "ratepad_agents_silent") == 1
        assert value(samples, "ratepad_database_up") == 1
        assert value(samples, "ratepad_alert_delivery_lag_seconds") == 0
        wait_for(lambda: value(scrape(server), "ratepad_alert_worker_last_round_timestamp_seconds")
                 > 0, 15, "the alert worker's first round")  # fmt: skip
        names = {name for name, _ in samples if name.startswith("ratepad_")}
        assert names <= EXPORTED, names - EXPORTED  # the list the docs are checked against

        stream.read()  # the stream ends after its second
        stream.close()
        wait_for(lambda: value(scrape(server), "ratepad_live_streams_open") == 0, 15,
                 "the stream to be counted closed")  # fmt: skip

        # the summary's rollups gone: its request fails on the database, counted and logged
        site.sql("ALTER TABLE rollups_hourrollup RENAME TO rollups_hourrollup_away")
        status, _ = call(server.url, "/api/v1/summary?node=BJ", site.tokens["bj-manager"])
        assert status in (500, 503)  # a query refused; SQLite: "no such table", as if away
        # the scrape's own queries fail too: it still answers, and says so
        site.sql("ALTER TABLE alerts_delivery RENAME TO alerts_delivery_away")
        samples = scrape(server)
        assert value(samples, "ratepad_database_up") == 0
        assert value(samples, "ratepad_database_errors_total", where="request") >= 1
        assert value(samples, "ratepad_database_errors_total", where="scrape") >= 1
        wait_for(lambda: value(scrape(server), "ratepad_database_errors_total", where="worker")
                 >= 1, 15, "the alert worker to fail on the missing table")  # fmt: skip
    finally:
        server.close()
    logged = [json.loads(line) for line in (site.dir / "server.log").read_text().splitlines()
              if line.startswith("{")]  # fmt: skip
    failed = [e for e in logged if "rollups_hourrollup" in e["message"] + e.get("exc_info", "")]
    assert failed, logged  # as a traceback (django.request), or one line (ratepad.db: 503)
    assert failed[0]["level"] in ("ERROR", "WARNING") and failed[0]["logger"] and failed[0]["time"]


def test_health_and_readiness_for_load_balancers(site: Site, server: Server) -> None:
    # asked by address, not by a host name the server answers to: still answered
    assert call(server.url, "/healthz", headers={"Host": "10.9.9.9"}) == (200, {"status": "ok"})
    assert call(server.url, "/readyz", headers={"Host": "10.9.9.9"}) == (200, {"status": "ready"})
    assert call(server.url, "/healthz", body={})[0] == 405
    site.sql("DELETE FROM django_migrations WHERE app = 'ingest' AND name = '0001_initial'")
    status, answer = call(server.url, "/readyz")
    assert status == 503 and "1 migrations not applied" in answer["detail"], answer
    assert call(server.url, "/healthz")[0] == 200
    if site.cluster is None:
        return
    name = site.db.rsplit("/", 1)[1]
    with site.cluster.connect() as conn:  # the database refuses every connection
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     f"WHERE datname = '{name}'")  # fmt: skip
    try:
        status, answer = call(server.url, "/readyz")
        assert status == 503 and answer["detail"].startswith("database: "), answer
    finally:
        with site.cluster.connect() as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.fixture
def sqlite_server(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    started: list[Server] = []

    def start(**env: str) -> Server:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        started.append(site.server())
        return started[-1]

    yield start
    for s in started:
        s.close()


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_processes_sharing_the_directory_are_counted_together_for_the_allowed_scrapers(
    site: Site, sqlite_server: Any, tmp_path: Path
) -> None:
    first = sqlite_server(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
                          RATEPAD_METRICS_TOKEN="s3cret")  # fmt: skip
    second = sqlite_server()  # the same directory and token
    key = site.keys["BJ-001"]
    upload(first, key, ratings=[rating("K1", s) for s in (1, 2)])
    upload(second, key, ratings=[rating("K1", s) for s in (3, 4, 5)])
    stream = urllib.request.urlopen(urllib.request.Request(
        f"{second.url}api/v1/live?node=BJ&seconds=60",
        headers={"Authorization": f"Bearer {site.tokens['bj-manager']}"},
    ), timeout=30)  # fmt: skip
    assert call(first.url, "/metrics")[0] == 401  # the token is required
    assert call(first.url, "/metrics", "wrong")[0] == 401
    samples = scrape(first, "s3cret")  # the other process's uploads and stream too
    assert value(samples, "ratepad_ingest_ratings_total", result="stored") == 5
    assert value(samples, "ratepad_ingest_batch_seconds_count", kind="data") == 2
    assert value(samples, "ratepad_live_streams_open") == 1
    second.kill()  # SIGKILL: it cannot say its stream is gone ...
    stream.close()
    # ... the next process to start forgets it; its counts stay
    third = sqlite_server(RATEPAD_METRICS_ALLOW="10.0.0.0/8")
    samples = scrape(first, "s3cret")
    assert value(samples, "ratepad_live_streams_open") == 0
    assert value(samples, "ratepad_ingest_ratings_total", result="stored") == 5
    status, text = call(third.url, "/metrics", "s3cret")  # not from an allowed address
    assert status == 403 and "RATEPAD_METRICS_ALLOW" in text
    assert call(third.url, "/healthz")[0] == 200  # never restricted


@pytest.mark.parametrize(
    ("argv", "env", "says"),
    [
        (["run", "--log-format", "xml"], {}, "--log-format: invalid choice"),
        (["run", "--db-replica", "replica.sqlite3"], {}, "expected a PostgreSQL hot standby"),
        (["run", "--db-replica", "postgresql://127.0.0.1/x"], {}, "needs a PostgreSQL --db"),
        (["init"], {"RATEPAD_METRICS_ALLOW": "everyone"}, "RATEPAD_METRICS_ALLOW='everyone'"),
        (["init"], {"RATEPAD_LOG_FORMAT": "xml"}, "RATEPAD_LOG_FORMAT='xml': expected text"),
    ],
)
def test_bad_operations_options_are_one_line_and_exit_2(
    tmp_path: Path, argv: list[str], env: dict[str, str], says: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ratepad_server", *argv, "--db", str(tmp_path / "x.sqlite3")],
        capture_output=True, text=True, env={**server_env(), **env}, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- docs/monitoring ---------------------------------------------------------------------------
def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (a syntax error raises)."""
    import promql_parser

    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)
            return
        for attr in ("lhs", "rhs", "expr", "vector_selector", "param", "args"):
            child = getattr(node, attr, None)
            for c in child if isinstance(child, list) else [child]:
                if c is not None and type(c).__module__.startswith("promql_parser"):
                    walk(c)

    walk(promql_parser.parse(expr))
    return names


DURATION = re.compile(r"^(\d+[smhdwy])+$")
PROMETHEUS_OWN = {"up"}  # the series Prometheus itself records for every target it scrapes


def test_alert_rules_load_and_read_exported_metrics() -> None:
    doc = yaml.safe_load((MONITORING / "ratepad-alerts.yml").read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert all(group["name"] and group["rules"] for group in doc["groups"])
    assert len(rules) >= 6
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["alert"] and DURATION.match(rule.get("for", "0s")), rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule
        assert rule["annotations"]["summary"], rule
        names = metric_names(rule["expr"])
        assert names and names <= EXPORTED | PROMETHEUS_OWN, (rule["alert"], names - EXPORTED)


def grafana_expr(expr: str) -> str:
    """PromQL as Grafana sends it: its interval variables ($__rate_interval ...) are durations."""
    return re.sub(r"\$__\w+", "5m", expr)


def test_grafana_dashboard_panels_read_exported_metrics() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    panels = dashboard["panels"]
    assert dashboard["title"] and len(panels) >= 6
    for panel in panels:
        assert panel["title"] and panel["type"] in ("timeseries", "stat", "gauge"), panel
        for target in panel["targets"]:
            names = metric_names(grafana_expr(target["expr"]))
            assert names and names <= EXPORTED, (panel["title"], names - EXPORTED)
    read = {n for p in panels for t in p["targets"] for n in metric_names(grafana_expr(t["expr"]))}
    assert {"ratepad_ingest_ratings_total", "ratepad_live_streams_open",
            "ratepad_agents_silent"} <= read  # fmt: skip
