"""Build a test database: schema, the test organisation, agent keys and user tokens.

Run as ``python make_template.py DB_URL`` (a fresh process: Django is configured once per
process); prints (last line) ``{"keys": {branch: key}, "tokens": {username: token}}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ORG = Path(__file__).with_name("org.toml")
BRANCHES = ("BJ-001", "BJ-002", "SH-001")
USERS = {
    "hq-admin": "hq-admin-pw",
    "bj-manager": "bj-manager-pw",
    "bj-viewer": "bj-viewer-pw",
    "sh-manager": "sh-manager-pw",
    "bj001-admin": "bj001-admin-pw",
    "s001": "s001-pw",
}


def main(url: str) -> None:
    from ratepad_server.cli import main as server

    for argv in (["init", "--db", url], ["load-org", str(ORG), "--db", url]):
        if server(argv) != 0:
            raise SystemExit(f"ratepad server {argv[0]} failed")
    from ratepad_server.api.auth import issue_token
    from ratepad_server.ingest.keys import enroll
    from ratepad_server.org.models import Node

    keys = {b: enroll(Node.objects.get(code=b))[1] for b in BRANCHES}
    tokens = {u: issue_token(u, pw) for u, pw in USERS.items()}
    from django.db import connections

    connections.close_all()
    print(json.dumps({"keys": keys, "tokens": tokens}))


if __name__ == "__main__":
    os.environ["RATEPAD_SECRET_KEY"] = "test-secret-key-of-the-ratepad-server-test-suite"
    main(sys.argv[1])  # the JSON is the last line of the output
