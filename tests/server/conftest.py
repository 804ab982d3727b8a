"""Fixtures of the server tests: every test runs on SQLite and on a real PostgreSQL cluster
(started for the session, see pg.py), each from a fresh copy of a template database holding
the test organisation (org.toml), an agent key per branch and a token per user."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# the helpers (pg, serverlib, netproxy) import as top-level modules; appended, so that
# ``conftest`` and the other tests' modules keep resolving to tests/
sys.path.append(str(Path(__file__).resolve().parent))

from pg import Cluster, pg_bin
from serverlib import Server, Site, Template, build_template, fresh_sqlite

BACKENDS = ["sqlite", "postgresql"]
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: run make setup")
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def templates(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Template]:
    return {}


def _template(
    backend: str,
    request: pytest.FixtureRequest,
    cache: dict[str, Template],
    tmp_path_factory: pytest.TempPathFactory,
) -> Template:
    if backend not in cache:
        work = tmp_path_factory.mktemp(f"template-{backend}")
        if backend == "postgresql":
            cluster: Cluster = request.getfixturevalue("pg_cluster")
            url = cluster.create_database("ratepad_template")
            cache[backend] = build_template(url, backend, "ratepad_template", work)
        else:
            path = work / "template.sqlite3"
            cache[backend] = build_template(f"sqlite:///{path}", backend, str(path), work)
    return cache[backend]


@pytest.fixture(params=BACKENDS)
def site(
    request: pytest.FixtureRequest,
    templates: dict[str, Template],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Site:
    backend: str = request.param
    template = _template(backend, request, templates, tmp_path_factory)
    cluster = None
    if backend == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        db = cluster.create_database(f"t{next(_counter)}", template.source)
    else:
        db = fresh_sqlite(template, tmp_path)
    return Site(backend, db, tmp_path, template.keys, template.tokens, cluster)


@pytest.fixture
def server(site: Site) -> Iterator[Server]:
    srv = site.server()
    try:
        yield srv
    finally:
        srv.close()
