"""An agent's requests on the lean path: a heartbeat is one statement once the process knows
the key, and a key the process remembers is still refused on the very next request once it is
revoked (nothing of that upload stored, no failed batch counted, the agent not marked heard)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from serverlib import Server, Site, call, rating, server_env, upload

# one heartbeat's statements, in a process that has checked the key once (Django's own count)
STATEMENTS = """
import json, os, sys
os.environ["RATEPAD_DB"] = sys.argv[1]
os.environ["DJANGO_SETTINGS_MODULE"] = "ratepad_server.settings"
import django
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from ratepad_server.ingest.keys import authenticate
from ratepad_server.ingest.schemas import BatchIn
from ratepad_server.ingest.service import commit_batch
commit_batch(authenticate(sys.argv[2]), BatchIn())
with CaptureQueriesContext(connection) as queries:
    commit_batch(authenticate(sys.argv[2]), BatchIn())
print(json.dumps([q["sql"] for q in queries.captured_queries]))
"""


def test_heartbeat_is_one_update(site: Site) -> None:
    out = subprocess.run(
        [sys.executable, "-c", STATEMENTS, site.db, site.keys["BJ-001"]],
        env=server_env(), cwd=site.dir, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    statements = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(statements) == 1 and statements[0].startswith("UPDATE ingest_agentkey"), statements


def _failed_batches(server: Server) -> float:
    status, text = call(server.url, "/metrics")
    assert status == 200, text
    found = re.search(r'ratepad_ingest_batches_total\{kind="data",outcome="failed"\} (\S+)', text)
    assert found, text
    return float(found[1])


def test_remembered_key_refused_on_the_next_request_once_revoked(
    site: Site, server: Server
) -> None:
    key = site.keys["BJ-001"]
    key_id = key.removeprefix("rpk_").partition("_")[0]
    assert upload(server, key, ratings=[rating("K1", 1)])[1]["stored"] == 1
    assert call(server.url, "/api/v1/ingest/batch", key, {})[0] == 200  # remembered now
    heard = site.sql(f"SELECT last_upload_at FROM ingest_agentkey WHERE key_id = '{key_id}'")
    revoke = subprocess.run(
        [sys.executable, "-m", "ratepad_server", "keys", "revoke", key_id, "--db", site.db],
        env=server_env(), cwd=site.dir, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert revoke.returncode == 0, revoke.stderr
    status, answer = call(server.url, "/api/v1/ingest/batch", key, {"ratings": [rating("K1", 2)]},
                          headers={"Accept-Language": "en"})  # fmt: skip
    assert status == 401 and answer == {"detail": "missing or invalid bearer token"}
    assert call(server.url, "/api/v1/ingest/batch", key, {})[0] == 401
    assert site.sql("SELECT COUNT(*) FROM ingest_rating WHERE journal_seq = 2") == (0,)
    assert site.sql("SELECT COUNT(*) FROM ingest_ratingkey WHERE journal_seq = 2") == (0,)
    assert (
        site.sql(f"SELECT last_upload_at FROM ingest_agentkey WHERE key_id = '{key_id}'") == heard
    )
    assert _failed_batches(server) == 0
    other = site.keys["BJ-002"]  # the other keys are not affected
    assert call(server.url, "/api/v1/ingest/batch", other, {})[0] == 200
