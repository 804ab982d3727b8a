"""Accounts on the web: one throttle for the admin pages' login, the web's and the API's; the
account page (password change under the policy, with the current password); the web's logout
ending the user's API tokens."""

from __future__ import annotations

from serverlib import Server, Site, call
from webclient import PASSWORDS, WebClient, logged_in

THROTTLED = "失败次数过多".encode()  # "Too many failed attempts" (zh-Hans, the default)


def test_admin_login_is_throttled_like_every_login(site: Site, server: Server) -> None:
    """Five wrong passwords at /admin/login/ (which had no limit): then 429 with a message even
    with the right one, and the same user name is refused by the API's token call and the
    web's login; another user is not affected."""
    client = WebClient(server.url)
    client.get("/admin/login/")
    form = {"username": "hq-admin", "password": "wrong", "next": "/admin/"}
    for _ in range(5):
        status, body = client.post("/admin/login/", form)
        assert status == 200 and THROTTLED not in body
    status, body = client.post("/admin/login/", {**form, "password": PASSWORDS["hq-admin"]})
    assert status == 429 and THROTTLED in body and b'name="username"' in body
    status, answer = call(server.url, "/api/v1/auth/token", None,
                          {"username": "hq-admin", "password": PASSWORDS["hq-admin"]})  # fmt: skip
    assert status == 429 and set(answer) == {"detail"}
    assert WebClient(server.url).login("hq-admin") == 429
    admin = WebClient(server.url)
    admin.get("/admin/login/")
    other = {"username": "bj001-admin", "password": PASSWORDS["bj001-admin"], "next": "/admin/"}
    assert admin.post("/admin/login/", other)[0] == 200  # not a root admin: the form again
    row = site.sql("SELECT count(*) FROM audit_auditentry WHERE action = 'login.throttled' "
                   "AND username = 'hq-admin'")  # fmt: skip
    assert row == (3,)


def test_password_change_page(site: Site, server: Server) -> None:
    client = logged_in(server.url, "bj-manager")
    status, body = client.get("/account/")
    assert status == 200 and b'id="initial"' in body and b'id="password-form"' in body
    old = PASSWORDS["bj-manager"]

    def change(current: str, new: str) -> tuple[int, bytes]:
        return client.post("/account/", {"old_password": current, "new_password1": new,
                                         "new_password2": new})  # fmt: skip

    assert change("wrong", "Tulip harbour 57")[0] == 400
    for weak in ("short", "password123", "31415926535897", "bj-manager-2026", old):
        status, body = change(old, weak)
        assert status == 400 and b'id="password-errors"' in body, weak
    status, _ = change(old, "Tulip harbour 57")
    assert status == 302 and "/account/?changed=1" in client.last_headers["Location"]
    status, body = client.get("/account/?changed=1")
    assert status == 200 and b'id="changed"' in body and b'id="initial"' not in body
    assert client.get("/report/BJ/")[0] == 200  # this session stays logged in
    assert WebClient(server.url).login("bj-manager", "Tulip harbour 57") == 302
    assert WebClient(server.url).login("bj-manager") == 200  # the old one: the form again
    for _ in range(3):  # a wrong current password is a failed login (5 with the two above)
        assert change("wrong", "Another long one 58")[0] == 400
    status, body = change("Tulip harbour 57", "Another long one 58")
    assert status == 429 and THROTTLED in body  # a left-open session cannot guess it
    row = site.sql("SELECT count(*) FROM audit_auditentry WHERE action = 'password.change'")
    assert row == (1,)


def test_web_logout_ends_the_users_api_tokens(site: Site, server: Server) -> None:
    own = site.tokens["bj-viewer"]
    assert call(server.url, "/api/v1/summary?node=BJ", own)[0] == 200
    client = logged_in(server.url, "bj-viewer")
    status, body = client.get("/account/")
    assert status == 200 and body.count(b"/revoke") == 1  # the template's token, revocable
    assert client.post("/logout/")[0] == 302
    assert call(server.url, "/api/v1/summary?node=BJ", own)[0] == 401
    assert call(server.url, "/api/v1/summary?node=BJ", site.tokens["bj-manager"])[0] == 200


def test_admin_pages_reset_passwords_and_revoke_agent_keys(site: Site, server: Server) -> None:
    """A root admin resets a user's password on the admin pages (the policy applies; recorded)
    and revokes an agent key there: its very next upload is refused."""
    admin = WebClient(server.url)
    admin.get("/admin/login/")
    status, _ = admin.post("/admin/login/", {"username": "hq-admin", "next": "/admin/",
                                             "password": PASSWORDS["hq-admin"]})  # fmt: skip
    assert status == 302
    row = site.sql("SELECT id FROM auth_user WHERE username = 'bj-viewer'")
    assert row is not None
    page = f"/admin/auth/user/{row[0]}/password/"
    weak = {"password1": "short", "password2": "short", "usable_password": "true"}
    assert admin.post(page, weak)[0] == 200  # the form again, with the policy's message
    good = {"password1": "Tulip harbour 57", "password2": "Tulip harbour 57",
            "usable_password": "true"}  # fmt: skip
    assert admin.post(page, good)[0] == 302
    assert WebClient(server.url).login("bj-viewer", "Tulip harbour 57") == 302
    status, body = admin.get("/admin/auth/user/")
    assert status == 200 and b"bj-viewer" in body
    key = site.keys["SH-001"]
    assert call(server.url, "/api/v1/ingest/batch", key, {})[0] == 200
    status, body = admin.get("/admin/ingest/agentkey/")
    key_id = key.removeprefix("rpk_").partition("_")[0]
    assert status == 200 and key_id.encode() in body
    pk = site.sql(f"SELECT id FROM ingest_agentkey WHERE key_id = '{key_id}'")
    assert pk is not None
    status, _ = admin.post("/admin/ingest/agentkey/", {"action": "revoke_keys", "index": "0",
                                                       "_selected_action": str(pk[0])})  # fmt: skip
    assert status == 302
    assert call(server.url, "/api/v1/ingest/batch", key, {})[0] == 401
    assert call(server.url, "/api/v1/ingest/batch", site.keys["BJ-001"], {})[0] == 200
    done = site.sql("SELECT count(*) FROM audit_auditentry WHERE action IN "
                    "('password.reset', 'agent_key.revoke') AND username = 'hq-admin'")  # fmt: skip
    assert done == (2,)
