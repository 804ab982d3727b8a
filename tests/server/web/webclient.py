"""A browser-like HTTP client for the server's pages: cookies, Django's CSRF token, no
redirect following (the tests look at the 302s themselves)."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

PASSWORDS = {
    "hq-admin": "hq-admin-pw",
    "bj-manager": "bj-manager-pw",
    "bj-viewer": "bj-viewer-pw",
    "sh-manager": "sh-manager-pw",
    "bj001-admin": "bj001-admin-pw",
    "s001": "s001-pw",
}  # fmt: skip (tests/server/make_template.py)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebClient:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self.last_headers: dict[str, str] = {}
        self.headers: dict[str, str] = {}  # sent with every request (a proxy's, say)

    def _cookie(self, name: str) -> str:
        return next((c.value or "" for c in self.jar if c.name == name), "")

    def request(self, method: str, path: str, data: dict[str, Any] | None = None,
                timeout: float = 30) -> tuple[int, bytes]:  # fmt: skip
        body = None
        if method == "POST":
            if not self._cookie("csrftoken"):
                self.request("GET", "/login/")
            fields = {"csrfmiddlewaretoken": self._cookie("csrftoken"), **(data or {})}
            body = urllib.parse.urlencode(fields, doseq=True).encode()  # lists: repeated fields
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers=self.headers)  # fmt: skip
        if body is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                self.last_headers = dict(resp.headers)
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            self.last_headers = dict(exc.headers)
            return exc.code, exc.read()

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, data: dict[str, Any] | None = None) -> tuple[int, bytes]:
        return self.request("POST", path, data)

    def login(self, username: str, password: str | None = None) -> int:
        self.get("/login/")
        status, _ = self.post(
            "/login/", {"username": username, "password": password or PASSWORDS[username]}
        )
        return status


def logged_in(base: str, username: str) -> WebClient:
    client = WebClient(base)
    status = client.login(username)
    assert status == 302, f"{username} could not log in ({status})"
    return client
