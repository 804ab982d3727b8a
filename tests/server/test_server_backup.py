"""Backups and the restore drill.

SQLite: ``ratepad server backup`` copies the database while uploads run (one committed state:
whole batches, every row as the live database has it), ``restore`` puts it into a fresh
database that then holds the same rows, counts and consistent rollups; bad input is refused in
one line, exit 2.

PostgreSQL: a cluster archiving its WAL to a pgBackRest repository (configured by
``ratepad server pgbackrest-config``), a full backup, more uploads, an incremental one, more
uploads; restored into new clusters, to the latest WAL and to a moment between two batches.
"""

from __future__ import annotations

import configparser
import dataclasses
import resource
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg import Cluster, free_port, owned_by_clusters, pg_bin, wait_for
from serverlib import T0, Server, Site, build_template, call, rating, server_env, upload
from test_server_cli import ratepad

BATCH = 50
UNITS = Path(__file__).resolve().parents[2] / "packaging" / "systemd"
INSTALLED = "/opt/ratepad/.venv/bin/ratepad"  # where the units expect ratepad


class Uploader(threading.Thread):
    """Batches of ``BATCH`` new ratings of one keypad, one after another, until stopped."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.acked = 0
        self.error: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        for batch in range(2000):  # bounded: stopped long before
            if self.stop.is_set():
                return
            first = batch * BATCH + 1
            ratings = [rating("K1", s, 1 + s % 5) for s in range(first, first + BATCH)]
            status, body = call(self.url, "/api/v1/ingest/batch", self.key, {"ratings": ratings})
            if status != 200 or body.get("stored") != BATCH:
                self.error = f"{status} {body}"
                return
            self.acked += 1


def sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def sqlite_counts(path: Path) -> dict[str, int]:
    tables = sqlite_rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {t: sqlite_rows(path, f'SELECT count(*) FROM "{t}"')[0][0] for (t,) in tables}


RATINGS = "SELECT * FROM ingest_rating ORDER BY serial, journal_seq"


def one_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    return out.stderr


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_sqlite_backup_while_uploading_then_restore_into_a_fresh_database(
    site: Site, tmp_path: Path
) -> None:
    database = Path(site.db.removeprefix("sqlite:///"))
    backup = tmp_path / "backups" / "ratepad.sqlite3"
    backup.parent.mkdir()
    server = site.server()
    uploader = Uploader(server.url, site.keys["BJ-001"])
    uploader.start()
    try:
        wait_for(lambda: uploader.acked >= 3 or uploader.error, 60, "uploads")
        before = uploader.acked
        out = ratepad("backup", str(backup), "--db", site.db, cwd=tmp_path)
        after = uploader.acked
        wait_for(lambda: uploader.acked >= after + 2 or uploader.error, 60, "more uploads")
    finally:
        uploader.stop.set()
        uploader.join(30)
        server.close()
    assert uploader.error is None, uploader.error
    assert out.returncode == 0 and out.stdout.count("\n") == 1, (out.stdout, out.stderr)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # password hashes, agent keys
    assert sorted(p.name for p in backup.parent.iterdir()) == ["ratepad.sqlite3"]
    # one committed state: whole batches, in the order they were committed
    saved = sqlite_rows(backup, RATINGS)
    seqs = [row[2] for row in saved]
    assert seqs == list(range(1, len(saved) + 1)), "a batch torn or missing"
    assert len(saved) % BATCH == 0 and before * BATCH <= len(saved) <= (after + 1) * BATCH
    live = {(row[1], row[2]): row for row in sqlite_rows(database, RATINGS)}
    assert len(live) > len(saved)  # uploads went on during and after the backup
    assert all(live[(row[1], row[2])] == row for row in saved)  # every column as stored

    fresh = tmp_path / "restored" / "server.sqlite3"
    fresh.parent.mkdir()
    out = ratepad("restore", str(backup), "--db", str(fresh), cwd=tmp_path)
    assert out.returncode == 0 and f"({len(saved)} ratings)" in out.stdout, out.stderr
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert sqlite_rows(fresh, RATINGS) == saved
    assert sqlite_counts(fresh) == sqlite_counts(backup)
    check = ratepad("rollups", "--check", "--db", str(fresh), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_sqlite_backup_and_restore_refuse_bad_input_in_one_line(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(*argv: str) -> str:
        """A refusal that comes before Django starts: run in this process (no interpreter to
        start)."""
        from ratepad_server.cli import main

        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        return err

    database = Path(site.db.removeprefix("sqlite:///"))
    backup = tmp_path / "ratepad-backup.sqlite3"
    backup.write_bytes(b"an older backup")
    assert "--force" in refused("backup", str(backup), "--db", site.db)
    assert backup.read_bytes() == b"an older backup"
    assert ratepad("backup", str(backup), "--force", "--db", site.db, cwd=tmp_path).returncode == 0
    assert "pgbackrest" in refused("backup", str(backup), "--db", "postgresql://ratepad@h/x")
    refused("backup", str(tmp_path / "b"), "--db", str(tmp_path / "none"))
    assert not (tmp_path / "none").exists()  # a missing database is not created

    target = tmp_path / "target.sqlite3"
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    assert "not a ratepad server database" in refused("restore", str(text), "--db", str(target))
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    assert "not a ratepad server database" in refused("restore", str(other), "--db", str(target))
    assert "no such file" in refused("restore", str(tmp_path / "missing"), "--db", str(target))
    pgbackrest_config = ["pgbackrest-config", "--repo", str(tmp_path), "--pg-data", "/x"]
    assert "--full-retention" in refused(*pgbackrest_config, "--full-retention", "0")
    assert "--stanza" in refused(*pgbackrest_config, "--stanza", "a]b")
    assert "line break" in refused(*pgbackrest_config, "--config", "/etc/x\ny")
    newer = tmp_path / "newer.sqlite3"
    shutil.copyfile(backup, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("INSERT INTO django_migrations (app, name, applied) VALUES "
                     "('ingest', '9999_from_the_future', '2027-01-01')")  # fmt: skip
    conn.close()
    assert "ingest.9999_from_the_future" in one_line(
        ratepad("restore", str(newer), "--db", str(target), cwd=tmp_path)
    )
    assert not target.exists()  # nothing was restored
    # over a database that exists: only with --force, and never while it is open
    assert "--force" in one_line(ratepad("restore", str(backup), "--db", site.db, cwd=tmp_path))
    holder = sqlite3.connect(database)
    try:
        holder.execute("SELECT count(*) FROM ingest_rating").fetchone()
        assert "stop the server" in one_line(
            ratepad("restore", str(backup), "--force", "--db", site.db, cwd=tmp_path)
        )
    finally:
        holder.close()
    done = ratepad("restore", str(backup), "--force", "--db", site.db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_after_a_restore_agents_send_again_what_the_backup_lacks(
    site: Site, tmp_path: Path
) -> None:
    """The procedure production.md gives: the agent's ratings cursor removed, it uploads every
    rating again; the server stores those the restored database lacks, each once."""
    from ratepad.agent.config import UploadConfig
    from ratepad.agent.store import Store
    from ratepad.agent.upload import Uploader
    from ratepad.scenario.sink import store_ratings

    store_path = tmp_path / "agent.db"
    config = UploadConfig("", site.keys["BJ-001"])

    def produce(seqs: range) -> None:
        store = Store(store_path)
        store_ratings(store, [{"device": "K1", "seq": s, "score": 1 + s % 5, "at_ms": s * 1000}
                              for s in seqs], T0)  # fmt: skip
        store.close()

    def drain(server: Server) -> None:
        uploader = Uploader(store_path, dataclasses.replace(config, url=server.url))
        try:
            assert uploader.drain(30), uploader.last_error
        finally:
            uploader.stop()

    database = Path(site.db.removeprefix("sqlite:///"))
    backup = tmp_path / "backup.sqlite3"
    server = site.server()
    try:
        produce(range(1, 101))
        drain(server)
        assert ratepad("backup", str(backup), "--db", site.db, cwd=tmp_path).returncode == 0
        produce(range(101, 201))
        drain(server)
    finally:
        server.close()
    assert len(sqlite_rows(database, RATINGS)) == 200
    restored = ratepad("restore", str(backup), "--force", "--db", site.db, cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert len(sqlite_rows(database, RATINGS)) == 100  # what the backup had
    with sqlite3.connect(store_path) as conn:
        conn.execute("DELETE FROM upload_cursor WHERE stream = 'ratings'")
    conn.close()
    server = site.server()
    try:
        drain(server)
    finally:
        server.close()
    keys = sqlite_rows(database, "SELECT serial, journal_seq FROM ingest_rating")
    assert sorted(keys) == [("K1", s) for s in range(1, 201)]  # every one, once
    check = ratepad("rollups", "--check", "--db", site.db, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def small_files_only() -> None:
    """In the child: writing past 64 kB fails (EFBIG; Python ignores SIGXFSZ), like a full
    disk."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (65_536, 65_536))


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_a_copy_that_fails_midway_exits_1_and_replaces_nothing(site: Site, tmp_path: Path) -> None:
    def failing(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "ratepad", "server", *args], capture_output=True, text=True,
            env=server_env(), cwd=tmp_path, timeout=120, preexec_fn=small_files_only,
        )  # fmt: skip
        assert out.returncode == 1, (out.stdout, out.stderr)
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        return out.stderr

    backups = tmp_path / "backups"
    backups.mkdir()
    failing("backup", str(backups / "ratepad.sqlite3"), "--db", site.db)
    assert list(backups.iterdir()) == []  # no backup, no partial file left
    backup = backups / "ratepad.sqlite3"
    assert ratepad("backup", str(backup), "--db", site.db, cwd=tmp_path).returncode == 0
    target = tmp_path / "target.sqlite3"
    shutil.copyfile(backup, target)
    with sqlite3.connect(target) as conn:
        conn.execute("UPDATE org_node SET name = 'as it was' WHERE code = 'HQ'")
    conn.close()
    failing("restore", str(backup), "--force", "--db", str(target))
    assert sqlite_rows(target, "SELECT name FROM org_node WHERE code = 'HQ'") == [("as it was",)]
    assert sqlite_rows(target, "PRAGMA quick_check") == [("ok",)]


# -- PostgreSQL with pgBackRest ----------------------------------------------------------


def pgbackrest(cluster: Cluster, conf: Path, *args: str) -> None:
    argv = cluster.as_owner("pgbackrest", f"--config={conf}", "--stanza=ratepad", *args)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (args, out.stdout, out.stderr)


def pg_rows(url: str) -> list[tuple[int, str]]:
    """Every rating: its journal sequence, and the whole row (every column) as PostgreSQL
    writes it as text."""
    with psycopg.connect(url) as conn:
        sql = "SELECT journal_seq, r::text FROM ingest_rating r ORDER BY serial, journal_seq"
        return [(int(seq), text) for seq, text in conn.execute(sql)]


def pg_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


def in_recovery(url: str) -> bool:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            return bool(row and row[0])
    except psycopg.OperationalError:
        return True


def restore_into_new_cluster(source: Cluster, conf: Path, base: Path, *options: str) -> Cluster:
    """pgBackRest restores the stanza into ``base``/data; the new cluster gets its own port
    and socket and archives nothing (it is a drill, not the production cluster)."""
    data = owned_by_clusters(base) / "data"
    pgbackrest(source, conf, "restore", f"--pg1-path={data}", "--archive-mode=off", *options)
    with (data / "postgresql.conf").open("a") as f:
        f.write(f"port = {free_port()}\nunix_socket_directories = '{base}'\n")
    cluster = Cluster(base, reuse=True)  # starts it: replays the archived WAL, then promotes
    wait_for(lambda: not in_recovery(cluster.url("ratepad")), 60, "the end of recovery", 0.2)
    return cluster


def batch(server: Server, keys: dict[str, str], seqs: range) -> None:
    for serial, branch in (("K1", "BJ-001"), ("K3", "BJ-002")):
        stored = upload(server, keys[branch], ratings=[rating(serial, s) for s in seqs])[1]
        assert stored["stored"] == len(seqs)


def test_postgresql_pgbackrest_full_incremental_and_point_in_time_restore(
    tmp_path: Path,
) -> None:
    if pg_bin() is None or shutil.which("pgbackrest") is None:
        pytest.skip("PostgreSQL or pgBackRest is not installed (make setup installs them)")
    work = owned_by_clusters(Path(tempfile.mkdtemp(prefix="ratepad-pgbackrest-")))
    conf = work / "pgbackrest.conf"
    common = [
        "--repo", str(owned_by_clusters(work / "repo")),
        "--pg-data", str(work / "primary" / "data"),
        "--config", str(conf),
        "--log-path", str(owned_by_clusters(work / "log")),
        "--lock-path", str(owned_by_clusters(work / "lock")),
    ]  # fmt: skip
    archiving = ratepad("pgbackrest-config", *common, "--postgresql", cwd=tmp_path)
    assert archiving.returncode == 0, archiving.stderr
    clusters: list[Cluster] = []
    server: Server | None = None
    try:
        primary = Cluster(work / "primary", fsync=False, extra_conf=archiving.stdout)
        clusters.append(primary)
        config = ratepad("pgbackrest-config", *common, "--pg-port", str(primary.port),
                         "--pg-socket-path", str(primary.base), "--pg-user", "ratepad",
                         cwd=tmp_path)  # fmt: skip
        assert config.returncode == 0, config.stderr
        conf.write_text(config.stdout)
        url = primary.create_database("ratepad")
        keys = build_template(url, "postgresql", "ratepad", tmp_path).keys
        pgbackrest(primary, conf, "stanza-create")
        server = Server(url, tmp_path)
        batch(server, keys, range(1, 101))
        pgbackrest(primary, conf, "backup", "--type=full", "--start-fast")
        batch(server, keys, range(101, 201))
        pgbackrest(primary, conf, "backup", "--type=incr", "--start-fast")
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT clock_timestamp()::text").fetchone()
            assert row is not None
            between: str = row[0]  # after the second batch's commits, before the third's
        batch(server, keys, range(201, 301))
        pgbackrest(primary, conf, "check")  # the WAL of the third batch is in the repository
        server.close()
        server = None
        everything = pg_rows(url)
        assert len(everything) == 600

        latest = restore_into_new_cluster(primary, conf, work / "latest")
        clusters.append(latest)
        restored = latest.url("ratepad")
        assert pg_rows(restored) == everything
        assert pg_count(restored, "ingest_ratingkey") == pg_count(url, "ingest_ratingkey")
        check = ratepad("rollups", "--check", "--db", restored, cwd=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr

        pitr = ["--type=time", f"--target={between}", "--target-action=promote"]
        earlier = restore_into_new_cluster(primary, conf, work / "pitr", *pitr)
        clusters.append(earlier)
        restored = earlier.url("ratepad")
        expected = [(seq, row) for seq, row in everything if seq <= 200]
        assert len(expected) == 400
        assert pg_rows(restored) == expected  # the first two batches, none of the third
        check = ratepad("rollups", "--check", "--db", restored, cwd=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        if server is not None:
            server.close()
        for cluster in reversed(clusters):
            cluster.close()
        shutil.rmtree(work, ignore_errors=True)


# -- the systemd units -------------------------------------------------------------------


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    unit.read_string(path.read_text())
    return unit


def ratepad_argv(command: str) -> list[str] | None:
    """The arguments after ``ratepad server`` of an ExecStart line, if it runs ratepad (also
    inside ``/bin/sh -c '...'``)."""
    argv = shlex.split(command)
    if argv[:2] == ["/bin/sh", "-c"]:
        argv = shlex.split(argv[2].removeprefix("exec "))
    if argv[0] != INSTALLED:
        return None
    assert argv[1] == "server", command
    return argv[2:]


def test_the_systemd_units_load_and_run_commands_ratepad_has() -> None:
    from ratepad_server.backups import STANZA
    from ratepad_server.cli import build_parser

    units = sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.timer"))
    names = {u.name for u in units}
    assert {"ratepad.service", "ratepad-worker.service", "ratepad-sqlite-backup.timer",
            "pgbackrest-ratepad-full.timer", "pgbackrest-ratepad-incr.timer"} <= names  # fmt: skip
    actions = set()
    for path in units:
        unit = read_unit(path)
        if path.suffix == ".timer":
            assert path.with_suffix(".service").name in names, path.name
            assert unit["Timer"]["OnCalendar"] and unit["Install"]["WantedBy"] == "timers.target"
            continue
        command = unit["Service"]["ExecStart"]
        argv = ratepad_argv(command)
        if argv is None:
            assert f"--stanza={STANZA}" in command, command
            continue
        args = build_parser().parse_args(argv)  # a bad option: Usage raised
        actions.add(args.action)
    assert actions == {"run", "sendalerts", "backup"}
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the units were parsed only")
    with tempfile.TemporaryDirectory() as tmp:
        real = str(Path(sys.executable).with_name("ratepad"))  # the venv's, to be executable
        for path in units:
            (Path(tmp) / path.name).write_text(path.read_text().replace(INSTALLED, real))
        out = subprocess.run([analyze, "verify", "--man=no", *sorted(names)], cwd=tmp,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (out.returncode, out.stdout + out.stderr) == (0, "")
