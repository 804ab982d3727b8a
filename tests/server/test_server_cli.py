"""``ratepad server init | load-org | enroll-agent | run``: the contract, and bad input as one
line on stderr with exit status 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serverlib import T0, Server, Site, call, rating, server_env, upload

ORG = Path(__file__).with_name("org.toml")


def ratepad(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", "server", *args],
        capture_output=True, text=True, env=server_env(), cwd=cwd, timeout=120,
    )  # fmt: skip


def test_init_load_enroll_run_on_the_default_sqlite(tmp_path: Path) -> None:
    assert ratepad("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "ratepad-server.sqlite3").is_file()  # the default: a file in the cwd
    assert ratepad("init", cwd=tmp_path).returncode == 0  # migrating again changes nothing
    first = ratepad("load-org", str(ORG), cwd=tmp_path)
    assert first.returncode == 0 and "6 nodes, 4 windows, 3 staff" in first.stdout
    again = ratepad("load-org", str(ORG), cwd=tmp_path)
    assert "0 nodes, 0 windows, 0 staff, 0 users changed; 0 keypads bound" in again.stdout
    out = ratepad("enroll-agent", "--branch", "BJ-001", "--json", cwd=tmp_path)
    key = json.loads(out.stdout)
    assert key["branch"] == "BJ-001" and key["key"].startswith("rpk_")
    server = Server(f"sqlite:///{tmp_path / 'ratepad-server.sqlite3'}", tmp_path)
    try:
        status, body = call(server.url, "/api/v1/ingest/batch", key["key"],
                            {"ratings": [rating("K1", 1)]})  # fmt: skip
        assert status == 200 and body["stored"] == 1
    finally:
        server.close()


BAD_ORG = {
    "missing key": '[[node]]\ncode = "HQ"\n',
    "unknown parent": '[[node]]\ncode = "A"\nname = "a"\nparent = "NOPE"\n',
    "cycle": '[[node]]\ncode = "A"\nname = "a"\nparent = "B"\n'
    '[[node]]\ncode = "B"\nname = "b"\nparent = "A"\n',
    "not TOML": "[[node]\n",
    "bad role": '[[node]]\ncode = "A"\nname = "a"\n'
    '[[user]]\nusername = "u"\npassword = "p"\nrole = "boss"\nnode = "A"\n',
    "unknown table": '[[nodes]]\ncode = "A"\n',
    "unknown kind": '[[node]]\ncode = "A"\nname = "a"\nkind = "foo"\n',
    "keypad twice": '[[node]]\ncode = "A"\nname = "a"\nkind = "branch"\n'
    '[[window]]\ncode = "W1"\nbranch = "A"\nname = "1"\nkeypad = "K"\n'
    '[[window]]\ncode = "W2"\nbranch = "A"\nname = "2"\nkeypad = "K"\n',
}


PARSED = ("missing key", "not TOML", "bad role", "unknown table", "unknown kind")


@pytest.mark.parametrize("name", PARSED)
def test_a_bad_file_fails_before_the_database_is_opened(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ratepad_server.cli import main

    path = tmp_path / "org.toml"
    path.write_text(BAD_ORG[name])
    db = tmp_path / "never.sqlite3"
    assert main(["load-org", str(path), "--db", str(db)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ratepad server: "), lines
    assert not db.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["load-org", "nowhere.toml"],
        ["run", "--listen", "no-port"],
        ["run", "--listen", "127.0.0.1:99999"],
        ["init", "--db", "mysql://x/y"],
        ["init", "--db", "postgresql://127.0.0.1:1/"],
        ["frobnicate"],
        [],
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from ratepad_server.cli import main

    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ratepad server"), lines


def test_bad_input_against_a_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cases: list[tuple[str, ...]] = [
        ("enroll-agent", "--branch", "BJ"),  # not a branch
        ("enroll-agent", "--branch", "NOPE"),
        ("init", "--db", "postgresql://ratepad@127.0.0.1:1/nothing"),  # nobody listens
    ]
    assert ratepad("init", cwd=tmp_path).returncode == 0
    assert ratepad("load-org", str(ORG), cwd=tmp_path).returncode == 0
    for name in ("unknown parent", "cycle", "keypad twice"):
        path = tmp_path / f"{name.replace(' ', '_')}.toml"
        path.write_text(BAD_ORG[name])
        cases.append(("load-org", str(path)))
    for args in cases:
        out = ratepad(*args, cwd=tmp_path)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, (args, out.stderr)
        assert lines[0].startswith("ratepad server") and "Traceback" not in out.stderr, lines


def test_the_guides_organisation_file_is_whole() -> None:
    # loads on an empty database: checked, and every node it refers to is in it
    import tomllib

    from ratepad_server.org.orgfile import check_org

    guide = Path(__file__).parents[2] / "docs" / "guide" / "server.md"
    match = re.search(r"<!-- org-example -->\n```toml\n(.*?)```", guide.read_text(), re.S)
    assert match, "the server guide lost its organisation file example"
    org = check_org(tomllib.loads(match.group(1)), "the server guide")
    kinds = {n["code"]: n.get("kind", "") for n in org["node"]}
    assert all(n.get("parent", "HQ") in kinds for n in org["node"]), org["node"]
    assert all(kinds.get(w["branch"]) == "branch" for w in org["window"] + org["staff"])
    assert all(u["node"] in kinds for u in org["user"])


def test_run_needs_init(tmp_path: Path) -> None:
    out = ratepad("run", "--db", str(tmp_path / "empty.sqlite3"), cwd=tmp_path)
    assert out.returncode == 2 and "ratepad server init" in out.stderr


@pytest.mark.parametrize("site", ["postgresql"], indirect=True)
def test_a_moved_keypad_leaves_its_old_ratings_where_they_were(site: Site) -> None:
    server = site.server()
    try:
        upload(server, site.keys["BJ-001"], ratings=[rating("K1", 1, at=T0 - 3_600_000)])
        moved = (
            ORG.read_text()
            .replace('keypad = "K1"', 'keypad = "K5"')
            .replace('keypad = "K2"', 'keypad = "K1"')
        )
        org = site.dir / "moved.toml"
        org.write_text(moved)
        out = ratepad("load-org", str(org), "--db", site.db, cwd=site.dir)
        assert out.returncode == 0 and "2 keypads bound" in out.stdout, out.stderr
        after_move = int(time.time() * 1000)  # ingest takes times up to a day ahead, no more
        upload(server, site.keys["BJ-001"], ratings=[rating("K1", 2, at=after_move)])
        got = call(server.url, "/api/v1/ratings?node=BJ-001", site.tokens["hq-admin"])[1]
        assert [(r["journal_seq"], r["window"]) for r in got["ratings"]] == [
            (1, "BJ-001-W1"),  # made before the move: stays at window 1
            (2, "BJ-001-W2"),
        ]
    finally:
        server.close()


def test_without_a_secret_key_one_is_made_once(tmp_path: Path) -> None:
    env = {k: v for k, v in server_env().items() if k != "RATEPAD_SECRET_KEY"}
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-m", "ratepad", "server", "init"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    secret = tmp_path / "ratepad-server.secret"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text().strip()) >= 50


def test_postgresql_connections_run_without_jit(site: Site) -> None:
    """The server's PostgreSQL sessions have JIT off (compiling a short query costs more than
    running it; seen at seconds on a live wall over 10 M ratings), and options of the URL stay."""
    from ratepad_server.dburl import parse_db_url

    opts = parse_db_url("postgresql://u@h/db?options=-c%20work_mem%3D64MB")["OPTIONS"]
    assert opts["options"] == "-c work_mem=64MB -c jit=off"
    if site.cluster is None:
        return
    import psycopg

    conninfo = parse_db_url(site.db)
    with psycopg.connect(
        host=conninfo["HOST"], port=conninfo["PORT"], user=conninfo["USER"],
        dbname=conninfo["NAME"], **conninfo["OPTIONS"],
    ) as conn:  # fmt: skip
        row = conn.execute("SHOW jit").fetchone()
    assert row is not None and row[0] == "off"


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_run_answers_to_its_listen_address(site: Site) -> None:
    """Agents configured with the address the server listens on send it as Host: answered,
    though RATEPAD_ALLOWED_HOSTS names only localhost; another name is still refused (400)."""
    srv = site.server("--listen", "127.0.0.2:0")
    try:
        status, _ = call(f"http://127.0.0.2:{srv.port}/", "/api/v1/openapi.json")
        assert status == 200
        foreign = {"Host": f"evil.example:{srv.port}"}
        status, _ = call(f"http://127.0.0.2:{srv.port}/", "/api/v1/openapi.json", headers=foreign)
        assert status == 400
    finally:
        srv.close()


BAD_SETTINGS = [
    ("RATEPAD_ACCEPT_PAST_DAYS", "abc"),
    ("RATEPAD_MIN_N", "-1"),
    ("RATEPAD_EXPORT_MAX_ROWS", "1e99"),
    ("RATEPAD_TIME_ZONE", "Mars/Base"),
    ("RATEPAD_OPENING_HOURS", "18:00-08:00"),
    ("RATEPAD_OPENING_DAYS", "1-8"),
    ("RATEPAD_SMTP", "relay:99999"),
    ("RATEPAD_REQUEST_READ_TIMEOUT", "nan"),
]


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A RATEPAD_* value that cannot be used stops the command before it serves anything, with
    one line naming the variable, not a traceback (nor a 500 at the first request)."""
    for name, value in BAD_SETTINGS:
        out = subprocess.run(
            [sys.executable, "-m", "ratepad", "server", "run", "--allow-default-passwords"],
            capture_output=True, text=True, env={**server_env(), name: value}, cwd=tmp_path,
            timeout=120,
        )  # fmt: skip
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, (name, out.stderr)
        assert lines[0].startswith(f"ratepad server: {name}="), lines


def test_ctrl_c_before_serving_began_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C while the server is still starting (building the application takes seconds on
    a slow machine) stops it with one line and 130, not a traceback."""
    from ratepad_server import cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_setup", lambda db: None)
    monkeypatch.setattr(cli, "cmd_run", interrupted)
    assert cli.main(["run", "--listen", "127.0.0.1:0"]) == 130
    assert capsys.readouterr().err == "ratepad server: stopped\n"
