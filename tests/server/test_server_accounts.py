"""Accounts and credentials from the command line and the API: the password policy, initial
passwords that keep ``server run`` from starting, API tokens listed and revoked, agent keys
listed, revoked and rotated (the revocation refuses the very next upload)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from serverlib import Server, Site, call, server_env


def ratepad(site: Site, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad_server", *args, "--db", site.db], input=stdin,
        capture_output=True, text=True, env=server_env(), cwd=site.dir, timeout=120,
    )  # fmt: skip


def one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    for word in words:
        assert word in out.stderr, out.stderr


def count(site: Site, where: str) -> int:
    row = site.sql(f"SELECT count(*) FROM audit_auditentry WHERE {where}")
    assert row is not None
    return int(row[0])


def token(server: Server, username: str, password: str) -> tuple[int, Any]:
    return call(server.url, "/api/v1/auth/token", None,
                {"username": username, "password": password})  # fmt: skip


def test_set_password_applies_the_policy_and_ends_the_initial_password(
    site: Site, server: Server
) -> None:
    """``users set-password USER`` reads the password from stdin (never argv), refuses one the
    validators refuse (one line, exit 2, nothing changed), and a good one replaces the
    organisation file's initial password (recorded)."""
    weak = ratepad(site, "users", "set-password", "bj-viewer", stdin="short\n")
    one_line_error(weak, "bj-viewer", "too short", "Nothing changed")
    one_line_error(ratepad(site, "users", "set-password", "bj-viewer"), "no password on stdin")
    one_line_error(ratepad(site, "users", "set-password", "nobody", stdin="x\n"), "no such user")
    long = ratepad(site, "users", "set-password", "bj-viewer", stdin="Tulip " * 200 + "\n")
    one_line_error(long, "bj-viewer", "longer than 1000")  # the token call takes no more
    status, issued = token(server, "bj-viewer", "bj-viewer-pw")
    assert status == 200  # still the old one
    good = ratepad(site, "users", "set-password", "bj-viewer", stdin="Tulip harbour 57\n")
    assert good.returncode == 0, good.stderr
    old = call(server.url, "/api/v1/nodes", issued["token"])[0]
    assert old == 401  # a new password ends the tokens issued under the old one
    assert token(server, "bj-viewer", "bj-viewer-pw")[0] == 401
    assert token(server, "bj-viewer", "Tulip harbour 57")[0] == 200
    row = site.sql("SELECT count(*) FROM accounts_initialpassword i JOIN auth_user u "
                   "ON u.id = i.user_id WHERE u.username = 'bj-viewer'")  # fmt: skip
    assert row == (0,)
    assert count(site, "action = 'password.reset' AND object_type = 'User'") == 1


def _start(site: Site, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ratepad_server", "run", "--db", site.db, "--listen",
         "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server_env(),
        cwd=site.dir,
    )  # fmt: skip


def test_run_refuses_initial_passwords_unless_allowed(site: Site) -> None:
    """The organisation file's passwords are initial ones: ``server run`` refuses to start
    while an active user has one (one line, exit 2), starts with ``--allow-default-passwords``
    (as the demo and these tests do), and without it once every user has their own."""
    refused = subprocess.run(
        [sys.executable, "-m", "ratepad_server", "run", "--db", site.db, "--listen",
         "127.0.0.1:0"],
        capture_output=True, text=True, env=server_env(), cwd=site.dir, timeout=120,
    )  # fmt: skip
    one_line_error(refused, "6 users", "initial password", "hq-admin", "set-password",
                   "--allow-default-passwords")  # fmt: skip
    allowed = Server(site.db, site.dir)  # the test servers pass --allow-default-passwords
    allowed.close()
    site.sql("DELETE FROM accounts_initialpassword")  # as if every user had changed theirs
    proc = _start(site)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving on" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    finally:
        proc.terminate()
        proc.wait(30)


def test_api_tokens_are_listed_revoked_and_end_at_logout(site: Site, server: Server) -> None:
    first = token(server, "bj-manager", "bj-manager-pw")[1]["token"]
    second = token(server, "bj-manager", "bj-manager-pw")[1]["token"]
    status, listed = call(server.url, "/api/v1/auth/tokens", first)
    assert status == 200 and len(listed) == 3  # the template's, and these two
    assert [t["current"] for t in listed] == [False, True, False]  # newest first
    second_id = listed[0]["id"]
    status, theirs = call(server.url, "/api/v1/auth/tokens", site.tokens["hq-admin"])
    assert status == 200 and len(theirs) == 1
    status, body = call(server.url, f"/api/v1/auth/tokens/{theirs[0]['id']}", first,
                        method="DELETE")  # fmt: skip
    assert status == 404 and "detail" in body  # another user's token: not yours to end
    assert call(server.url, "/api/v1/summary?node=BJ", site.tokens["hq-admin"])[0] == 200
    status, _ = call(server.url, f"/api/v1/auth/tokens/{second_id}", first, method="DELETE")
    assert status == 204
    assert call(server.url, "/api/v1/summary?node=BJ", second)[0] == 401
    assert call(server.url, "/api/v1/auth/logout", first, method="POST")[0] == 204
    assert call(server.url, "/api/v1/summary?node=BJ", first)[0] == 401
    assert call(server.url, "/api/v1/summary?node=BJ", site.tokens["bj-manager"])[0] == 200
    ended = ratepad(site, "users", "revoke-tokens", "bj-manager")  # an operator's way
    assert ended.returncode == 0 and "1 API tokens revoked" in ended.stdout
    assert call(server.url, "/api/v1/summary?node=BJ", site.tokens["bj-manager"])[0] == 401
    assert count(site, "action = 'token.revoke'") == 3


def _key_id(key: str) -> str:
    return key.removeprefix("rpk_").partition("_")[0]


def _heartbeat(server: Server, key: str) -> int:
    """An empty batch: the agent's heartbeat, 200 for a live key, 401 for any other."""
    return call(server.url, "/api/v1/ingest/batch", key, {})[0]


def test_agent_keys_listed_revoked_and_rotated(site: Site, server: Server) -> None:
    listed = json.loads(ratepad(site, "keys", "list", "--json").stdout)
    assert sorted(k["branch"] for k in listed) == ["BJ-001", "BJ-002", "SH-001"]
    assert all(k["live"] and k["revoked_at"] is None for k in listed)
    bj, bj2, sh = (site.keys[b] for b in ("BJ-001", "BJ-002", "SH-001"))
    assert _heartbeat(server, bj) == 200
    assert ratepad(site, "keys", "revoke", _key_id(bj)).returncode == 0
    assert _heartbeat(server, bj) == 401  # the very next upload, same server
    rotated = ratepad(site, "keys", "rotate", _key_id(bj2), "--json")
    new = json.loads(rotated.stdout)
    assert new["branch"] == "BJ-002" and new["old_key_id"] == _key_id(bj2)
    assert _heartbeat(server, bj2) == 401 and _heartbeat(server, new["key"]) == 200
    overlap = json.loads(ratepad(site, "keys", "rotate", _key_id(sh), "--overlap", "1",
                                 "--json").stdout)  # fmt: skip
    assert _heartbeat(server, sh) == 200 and _heartbeat(server, overlap["key"]) == 200
    listed = json.loads(ratepad(site, "keys", "list", "--branch", "BJ", "--json").stdout)
    assert {(k["key_id"], k["live"]) for k in listed} == {
        (_key_id(bj), False), (_key_id(bj2), False), (new["key_id"], True)
    }  # fmt: skip
    one_line_error(ratepad(site, "keys", "revoke", "nope"), "'nope': no such agent key")
    one_line_error(ratepad(site, "keys", "rotate", _key_id(bj)), "is revoked")
    assert count(site, "action LIKE 'agent_key.%'") == 3
    enrolled = json.loads(ratepad(site, "enroll-agent", "--branch", "SH-001", "--json").stdout)
    assert _heartbeat(server, enrolled["key"]) == 200
    assert count(site, "action = 'agent_key.enroll' AND username LIKE '%(cli)'") == 1
