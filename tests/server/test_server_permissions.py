"""The permission matrix: every route of the JSON API, taken from Django's URL map, called as
every kind of caller. A route missing from ``EXPECTED`` fails the test, so a new endpoint
cannot escape the access rules; a wrong method answers 405."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from serverlib import Server, Site, call

CALLERS = ["anonymous", "agent", "hq-admin", "bj-manager", "bj-viewer", "sh-manager",
           "bj001-admin", "s001"]  # fmt: skip
READ = {"anonymous": 401, "agent": 401, "hq-admin": 200, "bj-manager": 200, "bj-viewer": 200,
        "sh-manager": 403, "bj001-admin": 200, "s001": 200}  # fmt: skip
NO_STAFF = {**READ, "s001": 403}
MANAGE = {**READ, "bj-viewer": 403, "s001": 403}
ADMIN = {**MANAGE, "bj-manager": 403, "hq-admin": 404, "bj001-admin": 404}  # 404: no such item
EVERYONE = dict.fromkeys(CALLERS, 200)
USERS = {**dict.fromkeys(CALLERS, 200), "anonymous": 401, "agent": 401}

# (method, route) -> (query or body, expected status per caller)
EXPECTED: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {
    ("GET", "api/v1/openapi.json"): ("", EVERYONE),
    ("GET", "api/v1/"): ("", dict.fromkeys(CALLERS, 404)),  # django-ninja's root: nothing
    ("POST", "api/v1/auth/token"): (  # a user name per caller: 5 failures for one throttle
        lambda caller: {"username": f"{caller}-x", "password": "wrong"},
        dict.fromkeys(CALLERS, 401),
    ),
    ("POST", "api/v1/auth/logout"): ({}, {**USERS, **dict.fromkeys(CALLERS[2:], 204)}),  # last
    ("GET", "api/v1/auth/tokens"): ("", USERS),
    ("DELETE", "api/v1/auth/tokens/<token_id>"): ({}, {**USERS, **dict.fromkeys(CALLERS[2:], 404)}),
    ("POST", "api/v1/ingest/batch"): ({}, {**dict.fromkeys(CALLERS, 401), "agent": 200}),
    ("GET", "api/v1/ratings"): ("?node=BJ-001", READ),
    ("GET", "api/v1/summary"): ("?node=BJ-001", READ),
    ("GET", "api/v1/nodes"): ("?node=BJ-001", READ),
    ("GET", "api/v1/devices"): ("?node=BJ-001", NO_STAFF),
    ("GET", "api/v1/live"): ("?node=BJ-001&seconds=0.2", NO_STAFF),
    ("GET", "api/v1/quarantine"): ("?node=BJ-001", MANAGE),
    ("GET", "api/v1/loop/report"): ("?node=BJ-001", NO_STAFF),
    ("GET", "api/v1/loop/cases"): ("?node=BJ-001", NO_STAFF),
    ("GET", "api/v1/conflicts"): ("?node=BJ-001", {**MANAGE, "bj-manager": 403}),
    # no survey imported here: a reader of the node learns that (404), nobody else
    ("GET", "api/v1/surveys/report"): (
        "?node=BJ-001",
        {k: 404 if v == 200 else v for k, v in NO_STAFF.items()},
    ),
    ("GET", "api/v1/surveys/returnvisits"): ("?node=BJ-001", NO_STAFF),
    ("POST", "api/v1/surveys/returnvisits"): (  # a rating that is not there
        {
            "serial": "K1",
            "journal_seq": 999,
            "contacted_at": "2026-12-01T10:00:00+08:00",
            "channel": "phone",
            "outcome": "reached",
        },
        {**{k: 404 if v == 200 else v for k, v in MANAGE.items()}, "sh-manager": 404},
    ),
    ("POST", "api/v1/quarantine/assign"): (
        {"serial": "K9", "journal_seq": 1, "window": "BJ-001-W1"},
        ADMIN,
    ),
}


def api_routes() -> list[str]:
    """Every route under api/ in the server's URL map."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratepad_server.settings")
    os.environ.setdefault("RATEPAD_SECRET_KEY", "only-the-url-map-is-read-here")
    import django
    from django.urls import URLPattern, URLResolver, get_resolver

    django.setup()
    out: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                out.append(prefix + str(p.pattern))

    walk(get_resolver().url_patterns, "")
    return sorted(r for r in out if r.startswith("api/"))


def ninja_methods() -> dict[str, set[str]]:
    """Route -> methods, from the API's routers (the operations behind the URL map)."""
    from ratepad_server.api.api import api

    out: dict[str, set[str]] = {}
    for prefix, router in api._routers:
        for path, view in router.path_operations.items():
            route = "api/v1/" + "/".join(p for p in (prefix + "/" + path).split("/") if p)
            route = re.sub(r"\{(\w+)\}", r"<\1>", route)  # as in the URL map
            out[route] = {m for op in view.operations for m in op.methods}
    return out


# plain Django views under api/ (not operations): what every method gets from them
PLAIN = {"api/v1/": {"GET"}, "api/v1/openapi.json": {"GET"}}


def test_every_route_as_every_caller(site: Site, server: Server) -> None:
    routes = api_routes()
    assert "api/v1/ratings" in routes and "api/v1/ingest/batch" in routes
    methods = ninja_methods()
    seen = set()
    for route in sorted(routes, key=lambda r: r.endswith("/logout")):  # it ends the tokens
        assert route in methods or route in PLAIN, f"/{route}: neither an operation nor known"
        path = "/" + re.sub(r"<\w+>", "999999", route)  # a path parameter: no such item
        for method in sorted(methods.get(route) or PLAIN[route]):
            key = (method, route)
            assert key in EXPECTED, f"{method} /{route} is not in the permission matrix"
            seen.add(key)
            arg, expected = EXPECTED[key]
            for caller in CALLERS:
                token = {"anonymous": None, "agent": site.keys["BJ-001"]}.get(
                    caller, site.tokens.get(caller)
                )
                if method == "GET":
                    status, body = call(server.url, f"{path}{arg}", token)
                else:
                    data = arg(caller) if callable(arg) else arg
                    status, body = call(server.url, path, token, data, method=method)
                assert status == expected[caller], (method, route, caller, status, body)
                if status in (401, 403, 404):
                    assert isinstance(body, dict) and "detail" in body, body
    assert seen == set(EXPECTED), f"routes gone from the URL map: {set(EXPECTED) - seen}"


@pytest.mark.parametrize("route", ["api/v1/ratings", "api/v1/ingest/batch"])
def test_wrong_method_is_405(site: Site, server: Server, route: str) -> None:
    status, _ = call(server.url, f"/{route}", site.tokens["hq-admin"], method="DELETE")
    assert status == 405


def test_unknown_and_foreign_nodes_are_403(site: Site, server: Server) -> None:
    token = site.tokens["bj-manager"]
    assert call(server.url, "/api/v1/ratings?node=NOPE", token)[0] == 403  # no oracle
    for node in ("SH", "SH-001", "HQ", "NOPE"):
        status, body = call(server.url, f"/api/v1/summary?node={node}", token)
        assert status == 403 and "不在您的管辖范围内" in body["detail"]  # zh-Hans by default
        english = {"Accept-Language": "en"}
        status, body = call(server.url, f"/api/v1/summary?node={node}", token, headers=english)
        assert status == 403 and "outside your part" in body["detail"]
    assert call(server.url, "/api/v1/summary?node=SH", site.tokens["hq-admin"])[0] == 200
