"""The agent's side: ``[upload]`` / ``--upload`` configuration, a real agent with simulated
keypads uploading ratings, prompts, staff sessions and device states, and TLS verified against
a custom CA through a TLS-terminating reverse proxy."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pg import wait_for
from serverlib import T0, Server, Site, call

import ratepad.sim
from ratepad.agent import Agent, AgentConfig, ConfigError, load_config
from ratepad.agent.config import UploadConfig
from ratepad.agent.store import Store
from ratepad.agent.upload import Uploader, UploadError
from ratepad.scenario.sink import store_ratings

KEY = "rpk_0123456789ab_" + "x" * 43


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[upload]\nurl = "ftp://x/"\nkey = "' + KEY + '"\n', "must be http"),
        ('[upload]\nurl = "http://x/"\nkey = "short"\n', "16..256"),
        ('[upload]\nurl = "http://x/"\n', r"\[upload\]: key is required"),
        ('[upload]\nurl = "https://x/"\nkey = "' + KEY + '"\nca = "none.pem"\n', "not a file"),
        ('[upload]\nurl = "http://x/"\nkey = "' + KEY + '"\nretries = 3\n', "unknown setting"),
        ('[upload]\nurl = "http://x/"\nkey = "' + KEY + '"\nbatch = 0\n', "batch"),
    ],
)
def test_bad_upload_settings(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=error):
        load_config(path)


def test_upload_settings_and_flags(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    path = tmp_path / "agent.toml"
    path.write_text(f'[upload]\nurl = "https://srv/"\nkey = "{KEY}"\nca = "ca.pem"\nbatch = 50\n')
    assert load_config(path).upload == UploadConfig("https://srv/", KEY, tmp_path / "ca.pem", 50)
    out = subprocess.run(
        [sys.executable, "-m", "ratepad", "agent", "--upload", "http://srv/"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "--upload-key" in out.stderr


def test_a_real_agent_uploads_everything(site: Site, server: Server, tmp_path: Path) -> None:
    ratepad.sim.reset()
    fast = "debounce=eager&debounce_ms=5&chord_ms=0&repeat_guard_ms=0&thanks_ms=200"
    config = AgentConfig(
        devices=(f"sim://K1?{fast}", f"sim://K2?{fast}"), db=tmp_path / "agent.db",
        listen=None, upload=UploadConfig(server.url, site.keys["BJ-001"]),
    )  # fmt: skip
    with Agent(config) as agent:
        wait_for(lambda: all(w.connected for w in agent.workers), 10, "keypads")
        agent.login("K1", "S001", "王小明")
        time.sleep(1.5)  # a status carries the login
        handle = agent.prompt("K1", "S001", timeout=5)
        ratepad.sim.get("K1").press(5)
        assert agent.wait_answer("K1", handle.prompt_id, 5) is not None
        agent.prompt("K2", "S002", timeout=0.5)  # nobody answers this one
        time.sleep(0.8)
        agent.prompt_timed_out("K2", 1)
        for score in (4, 2):
            time.sleep(0.3)
            ratepad.sim.get("K2").press(score)
        token = site.tokens["bj-manager"]

        def arrived() -> bool:
            got = call(server.url, "/api/v1/ratings?node=BJ-001", token)[1]["ratings"]
            return len(got) == 3

        wait_for(arrived, 20, "the ratings on the server")
        summary = call(server.url, "/api/v1/summary?node=BJ-001", token)[1]
        wait_for(lambda: agent.uploader is not None and agent.uploader.pending() == 0, 10,
                 "the outbox to drain")  # fmt: skip
    ratepad.sim.reset()
    assert summary["n"] == 3
    summary = call(server.url, "/api/v1/summary?node=BJ-001", token)[1]
    assert (summary["prompts"], summary["response_rate"]) == (2, 0.5)
    devices = call(server.url, "/api/v1/devices?node=BJ-001", token)[1]["devices"]
    assert {d["serial"] for d in devices} == {"K1", "K2"}
    assert {d["staff_id"] for d in devices if d["serial"] == "K1"} == {"S001"}


# -- TLS through a reverse proxy -------------------------------------------------------------
def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "srv.key", directory / "srv.csr", directory / "srv.pem"
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n")
    run = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=ratepad test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
         "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out",
         cert, "-days", "2", "-extfile", ext],
    ]  # fmt: skip
    for args in run:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    return ca, cert, key


class TLSProxy:
    """Terminates TLS and forwards the plain bytes to the server, like nginx in front."""

    def __init__(self, cert: Path, key: Path, target: int) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.target = target
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # the client refused our certificate
            return
        upstream = socket.create_connection(("127.0.0.1", self.target))

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_tls_is_verified_against_the_custom_ca(site: Site, tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_cert(tmp_path)
    server = site.server("--trusted-proxy", "127.0.0.1")
    proxy = TLSProxy(cert, key, server.port)
    db = tmp_path / "agent.db"
    store = Store(db)
    # keypad times near T0: the server takes times up to a day ahead of its clock, no more
    store_ratings(store, [{"device": "K1", "seq": s, "score": 4, "at_ms": s} for s in (1, 2)], T0)
    store.close()
    url = f"https://127.0.0.1:{proxy.port}/"
    try:
        untrusted = Uploader(db, UploadConfig(url, site.keys["BJ-001"]))  # the system's CAs
        with pytest.raises(UploadError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusted.upload_once()
        untrusted.stop()
        trusted = Uploader(db, UploadConfig(url, site.keys["BJ-001"], ca))
        assert trusted.drain(20), trusted.last_error
        trusted.stop()
        got = call(server.url, "/api/v1/ratings?node=BJ-001", site.tokens["hq-admin"])[1]
        assert [r["journal_seq"] for r in got["ratings"]] == [1, 2]
    finally:
        proxy.close()
        server.close()


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_a_store_from_before_uploads_gains_its_outbox(site: Site, tmp_path: Path) -> None:
    """A store written by an agent without upload (schema 1) is migrated and sends all it has."""
    import sqlite3

    from ratepad.agent.store.schema import MIGRATIONS, statements

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at_ms INTEGER)")
    for statement in statements(MIGRATIONS[0][1]):
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1, 0)")
    conn.execute(
        "INSERT INTO ratings (serial, journal_seq, boot_id, uptime_ms, time_ms, time_exact,"
        " score, key_count, level, level_value, staff_id, prompt_id, flags, flag_names,"
        " received_at_ms) VALUES ('K1', 1, 1, 0, 1796000000000, 1, 5, 5, 'very', 100, 'S001',"
        " 0, 0, '', 0)"
    )
    conn.close()
    Store(db).close()  # migrates to the current schema
    server = site.server()
    try:
        uploader = Uploader(db, UploadConfig(server.url, site.keys["BJ-001"]))
        assert uploader.drain(20), uploader.last_error
        uploader.stop()
        got = call(server.url, "/api/v1/ratings?node=BJ-001", site.tokens["hq-admin"])[1]
        assert [(r["serial"], r["score"]) for r in got["ratings"]] == [("K1", 5)]
    finally:
        server.close()


def test_an_item_the_server_refuses_does_not_block_the_rest(site: Site, tmp_path: Path) -> None:
    """One rating the server answers 422 for (a key count it does not accept, written by a
    newer firmware, say) is found by sending the batch in halves, kept in the store's
    ``upload_rejected`` and listed by ``ratepad export --rejected``; every other rating and the
    device state go through, and the agent's outbox is empty afterwards."""
    import sqlite3

    db = tmp_path / "agent.db"
    Store(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    for seq in range(1, 10):
        keys = 12 if seq == 6 else 5  # the server takes 1..9 keys
        conn.execute(
            "INSERT INTO ratings (serial, journal_seq, boot_id, uptime_ms, time_ms, time_exact,"
            " score, key_count, level, level_value, staff_id, prompt_id, flags, flag_names,"
            " received_at_ms) VALUES ('K1', ?, 1, 0, ?, 1, 4, ?, 'good', 80, 'S001', 0, 0, '',"
            " 0)",
            (seq, 1_796_000_000_000 + seq * 1000, keys),
        )
    conn.execute(
        "INSERT INTO devices (serial, url, connected, updated_at_ms)"
        " VALUES ('K1', 'sim://K1', 1, 1796000000000)"
    )
    conn.close()
    server = site.server()
    try:
        uploader = Uploader(db, UploadConfig(server.url, site.keys["BJ-001"]))
        assert uploader.drain(30), uploader.last_error
        assert uploader.rejected == 1 and uploader.pending() == 0
        uploader.stop()
        got = call(server.url, "/api/v1/ratings?node=BJ-001&limit=100", site.tokens["hq-admin"])[1]
        assert sorted(r["journal_seq"] for r in got["ratings"]) == [1, 2, 3, 4, 5, 7, 8, 9]
        devices = call(server.url, "/api/v1/devices?node=BJ-001", site.tokens["hq-admin"])[1]
        assert "K1" in str(devices)
    finally:
        server.close()
    out = subprocess.run(
        [sys.executable, "-m", "ratepad", "export", "--rejected", "--json", "--db", str(db)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and '"journal_seq": 6' in lines[0] and "422" in lines[0]
