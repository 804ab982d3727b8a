"""The web's permission matrix: every page of the URL map (outside /api/ and /admin/, which
have their own), taken from Django's resolver, opened as every kind of caller with the method
it answers. A page missing from ``EXPECTED`` fails the test, so a new page cannot escape the
access rules; each page also refuses a user of another subtree (sh-manager on BJ-001)."""

from __future__ import annotations

import http.cookiejar
import os
from typing import Any

from serverlib import Server, Site, call
from webclient import PASSWORDS, WebClient, logged_in
from webdata import rating, upload

CALLERS = ["anonymous", "hq-admin", "bj-manager", "bj-viewer", "sh-manager", "bj001-admin",
           "s001"]  # fmt: skip
LOGIN = 302  # anonymous callers are sent to the login page


def _m(**by: int) -> dict[str, int]:
    return {"anonymous": LOGIN, **by}


READ = _m(**{"hq-admin": 200, "bj-manager": 200, "bj-viewer": 200, "sh-manager": 403,
             "bj001-admin": 200, "s001": 403})  # fmt: skip
ALL = {**READ, "s001": 200}
OWN_SUBTREE = {**READ, "sh-manager": 200}  # lists filtered to the caller's subtree
ACT = {**READ, "hq-admin": 400, "bj-manager": 400, "bj001-admin": 400, "bj-viewer": 403}
ADMIN = _m(**{"hq-admin": 200, "bj-manager": 403, "bj-viewer": 403, "sh-manager": 403,
              "bj001-admin": 200, "s001": 403})  # fmt: skip
EVERYONE = dict.fromkeys(CALLERS, 302)
NO_SURVEY = {**READ, **dict.fromkeys(["hq-admin", "bj-manager", "bj-viewer", "bj001-admin"], 404)}


def _every(status: int) -> dict[str, int]:
    """Every logged-in caller gets ``status``; anonymous callers are sent to the login page."""
    return _m(**dict.fromkeys(CALLERS[1:], status))


# url name -> (method, args, query or form, expected status per caller)
EXPECTED: dict[str, tuple[str, list[Any], Any, dict[str, int]]] = {
    "web:home": ("GET", [], "", _every(200)),  # the overview: every role its own
    "web:login": ("GET", [], "", {**EVERYONE, "anonymous": 200}),
    "web:logout": ("GET", [], "", {**dict.fromkeys(CALLERS, 405)}),  # POST only (tested apart)
    "web:report": ("GET", ["BJ-001"], "", READ),
    "web:export_report": ("GET", ["BJ-001", "csv"], "", READ),
    "web:monthly_pdf": ("GET", ["BJ-001"], "", READ),
    "web:live": ("GET", ["BJ-001"], "", READ),
    "web:live_events": ("GET", ["BJ-001"], "?seconds=0.2", READ),
    "web:live_state": ("GET", ["BJ-001"], "", READ),
    "web:wall": ("GET", ["BJ-001"], "", READ),
    "web:ratings": ("GET", ["BJ-001"], "", {**ALL}),
    "web:export_ratings": ("GET", ["BJ-001", "xlsx"], "", {**ALL}),
    "web:alerts": ("GET", [], "", OWN_SUBTREE),
    "web:alert": ("GET", [1], "", READ),
    "web:alerts_bulk": ("POST", [], {"ids": "1", "action": "?"}, {**ACT, "sh-manager": 400}),
    "web:alert_act": ("POST", [1], {"action": "nothing"}, ACT),
    "web:alert_comment": ("POST", [1], {"text": ""}, ACT),
    "web:rules": ("GET", [], "", ADMIN),
    "web:rule_toggle": ("POST", [1], {}, {**ADMIN, "hq-admin": 302, "bj001-admin": 302}),
    "web:rule_new": ("GET", [], "?kind=bad_share", ADMIN),
    "web:rule_edit": ("GET", [1], "", ADMIN),
    "web:rule_delete": ("POST", [999999], {}, {**ADMIN, "hq-admin": 404, "bj001-admin": 404}),
    "web:appeals": ("GET", [], "", {**ALL, "sh-manager": 200}),
    "web:appeal_decide": ("POST", [1], {"decision": "?"}, ACT),
    "web:cases": ("GET", [], "", OWN_SUBTREE),
    "web:case": ("GET", [1], "", READ),  # the case of K1#1, a 1
    "web:case_step": ("POST", [1], {"step": "?"}, ACT),
    "web:loop_month": ("GET", [], "", OWN_SUBTREE),
    "web:loop_policy": ("GET", [], "", ADMIN),
    "web:holidays": ("GET", [], "", {**ADMIN, "bj001-admin": 403}),  # a top node's admin only
    "web:notifications": ("GET", [], "", {**ALL, "sh-manager": 200}),
    "web:notifications_read": ("POST", [], {}, {**EVERYONE, "anonymous": LOGIN}),
    "web:survey": ("GET", [], "", {**READ, "sh-manager": 200}),
    "web:survey_report": ("GET", ["BJ-001"], "", READ),
    "web:survey_export": ("GET", ["BJ-001", "csv"], "", NO_SURVEY),  # readers: 404, none yet
    "web:returnvisits": ("GET", ["BJ-001"], "", READ),
    "web:returnvisits_export": ("GET", ["BJ-001", "xlsx"], "", READ),
    "web:returnvisit_new": ("GET", ["BJ-001"], "", {**ACT, "bj-viewer": 403}),  # 400: no rating
    "web:audit": ("GET", [], "", ADMIN),
    "web:account": ("GET", [], "", _every(200)),
    "web:token_revoke": ("POST", [999999], {}, _every(404)),
    "set_language": ("POST", [], {"language": "en", "next": "/"}, EVERYONE),
}


def page_names() -> list[str]:
    """Every named URL outside api/ and admin/ in the server's URL map."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratepad_server.settings")
    os.environ.setdefault("RATEPAD_SECRET_KEY", "only-the-url-map-is-read-here")
    import django
    from django.urls import URLPattern, URLResolver, get_resolver

    django.setup()
    out: list[str] = []

    def walk(patterns: list[Any], prefix: str, ns: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                route = prefix + str(p.pattern)
                if route.startswith(("api/", "admin/")):
                    continue
                walk(p.url_patterns, route, f"{ns}{p.namespace}:" if p.namespace else ns)
            elif isinstance(p, URLPattern):
                assert p.name, f"/{prefix}{p.pattern} has no name: the matrix cannot reach it"
                out.append(ns + p.name)

    walk(get_resolver().url_patterns, "", "")
    return sorted(out)


def _setup(server: Server, site: Site) -> None:
    admin = logged_in(server.url, "hq-admin")
    status, _ = admin.post(
        "/rules/", {"name": "bad", "node": "BJ-001", "kind": "low_rating", "level": "2"}
    )
    assert status == 302
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 1)])
    clerk = logged_in(server.url, "s001")
    status, body = clerk.post(
        "/appeals/",
        {"serial": "K1", "journal_seq": "1", "reason": "the customer pressed by mistake"},
    )
    assert status == 302, body


def test_every_page_as_every_caller(site: Site, server: Server) -> None:
    from django.urls import reverse

    names = page_names()
    assert "web:report" in names and "web:live" in names
    missing = sorted(set(names) - set(EXPECTED))
    assert not missing, f"pages not in the permission matrix: {missing}"
    assert set(EXPECTED) <= set(names), f"gone from the URL map: {set(EXPECTED) - set(names)}"
    _setup(server, site)
    clients = {c: WebClient(server.url) if c == "anonymous" else logged_in(server.url, c)
               for c in CALLERS}  # fmt: skip
    for name in names:
        method, args, arg, expected = EXPECTED[name]
        path = reverse(name, args=args)
        for caller in CALLERS:
            client = clients[caller]
            if method == "GET":
                status, body = client.get(path + arg)
            else:
                status, body = client.post(path, arg)
            assert status == expected[caller], (name, caller, status, body[:300])
            if status == LOGIN and caller == "anonymous" and name != "set_language":
                assert "/login/" in client.last_headers.get("Location", "")


def test_logout_ends_the_session(site: Site, server: Server) -> None:
    client = logged_in(server.url, "bj-manager")
    assert client.get("/report/BJ/")[0] == 200
    assert client.post("/logout/")[0] == 302
    assert client.get("/report/BJ/")[0] == 302


def test_unknown_node_403_bad_period_400(site: Site, server: Server) -> None:
    client = logged_in(server.url, "bj-manager")
    assert client.get("/report/NOPE/")[0] == 403  # like another subtree's: no oracle
    assert client.get("/report/BJ/?since=yesterday")[0] == 400
    assert client.get("/report/BJ/?since=2026-02-01&until=2026-01-01")[0] == 400
    assert client.get("/report/BJ/export.doc")[0] == 400
    assert client.post("/report/BJ/")[0] == 405


def test_login_is_throttled_and_audited(site: Site, server: Server) -> None:
    client = WebClient(server.url)
    for _ in range(5):
        assert client.login("bj-viewer", "wrong") == 200  # the form again, with an error
    assert client.login("bj-viewer") == 429  # the right password, too late
    other = WebClient(server.url)
    assert other.login("bj-manager") == 302  # another user from the same address
    admin = logged_in(server.url, "hq-admin")
    status, body = admin.get("/audit/")
    assert status == 200
    text = body.decode()
    assert text.count('data-action="login.failed"') == 5 and "login.throttled" in text


def test_api_token_is_throttled_like_the_login(site: Site, server: Server) -> None:
    """Guessing passwords through ``POST /api/v1/auth/token`` counts against the same limit as
    the web's login form: after 5 failures, 429 (JSON) even with the right password; the web
    login of that user is refused too; another user is not affected."""
    for _ in range(5):
        status, body = call(server.url, "/api/v1/auth/token", None,
                            {"username": "bj-viewer", "password": "wrong"})  # fmt: skip
        assert status == 401 and set(body) == {"detail"}
    status, body = call(server.url, "/api/v1/auth/token", None,
                        {"username": "bj-viewer", "password": PASSWORDS["bj-viewer"]})  # fmt: skip
    assert status == 429 and "detail" in body
    assert WebClient(server.url).login("bj-viewer") == 429
    manager = {"username": "bj-manager", "password": PASSWORDS["bj-manager"]}
    status, body = call(server.url, "/api/v1/auth/token", None, manager)
    assert status == 200 and body["token"].startswith("rpt_")
    admin = logged_in(server.url, "hq-admin")
    text = admin.get("/audit/")[1].decode()
    assert text.count('data-action="login.failed"') == 5 and "127.0.0.1" in text


class _BehindTLS(http.cookiejar.DefaultCookiePolicy):
    """The browser speaks HTTPS to the proxy: its Secure cookies go back over that."""

    def return_ok_secure(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return True


def test_a_trusted_proxy_is_believed_and_no_one_else(site: Site) -> None:
    """``run --trusted-proxy ADDR``: the proxy's X-Forwarded-For is the client's address in the
    audit log and the login throttle, and its X-Forwarded-Proto makes Django treat the request
    as HTTPS (whose form posts need a matching Origin); without it, the same headers from a
    client are dropped."""
    spoofed = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    direct = site.server()
    try:
        client = WebClient(direct.url)
        client.headers = dict(spoofed)
        assert client.login("bj-viewer", "wrong") == 200  # a plain http request: the form again
        audit = logged_in(direct.url, "hq-admin").get("/audit/")[1].decode()
        assert "203.0.113.7" not in audit and "127.0.0.1" in audit
    finally:
        direct.close()
    proxied = site.server("--trusted-proxy", "127.0.0.1")
    try:
        client = WebClient(proxied.url)
        client.headers = {"X-Forwarded-For": "203.0.113.7"}
        assert client.login("bj-viewer", "wrong") == 200
        audit = logged_in(proxied.url, "hq-admin").get("/audit/")[1].decode()
        assert "203.0.113.7" in audit
        https = WebClient(proxied.url)
        https.jar.set_policy(_BehindTLS())
        https.headers = dict(spoofed)
        assert https.login("bj-manager") == 403  # HTTPS: a post without Origin/Referer
        https.headers["Origin"] = proxied.url.rstrip("/").replace("http://", "https://")
        assert https.login("bj-manager") == 302
    finally:
        proxied.close()
