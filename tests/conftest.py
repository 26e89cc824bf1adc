"""Shared fixtures: a real database (SQLite file, or PostgreSQL), settings in a temp home,
a key, the panel registry, and a WHM simulator with a group, server and product set up.

The ``database`` fixture is parametrised: every test that uses it runs on SQLite and on
PostgreSQL. PostgreSQL comes from PROVISIOND_TEST_PG_URL (default: the local server); when it
cannot be reached the PostgreSQL cases are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import os
import urllib.parse

import pytest

from provisiond import catalog, cli, config, crypto, db, panels
from provisiond.sandbox.cpanel import WhmSimulator

PG_URL = os.environ.get("PROVISIOND_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WHM_TOKEN = "canary-whm-token-7Qx9Zr2Lp"


def _admin(sql: str) -> None:
    import psycopg2
    conn = psycopg2.connect(PG_URL, connect_timeout=3)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def pg_url(worker_id):
    """A database of its own for each test process of this run, dropped at the end."""
    name = f"provisiond_test_{os.getpid()}_{worker_id}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure means no PostgreSQL here
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI and is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    parts = urllib.parse.urlsplit(PG_URL)
    yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    from provisiond.models import database as proxy
    if proxy.obj is not None:
        proxy.obj.close()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def worker_id(request):
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


def empty_database(request, tmp_path, kind: str) -> str:
    """The URL of an empty database of ``kind`` (sqlite or postgres) for one test."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'provisiond.db'}"
    url = request.getfixturevalue("pg_url")
    conn = db.connect(url)
    conn.execute_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    conn.close()
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    return empty_database(request, tmp_path, request.param)


@pytest.fixture
def settings(tmp_path, database_url):
    home = tmp_path / "home"
    result = config.load({"home": home, "database_url": database_url, "retry_base": 0.2,
                          "retry_cap": 1.0}, environ={})
    crypto.create_key_file(result.secret_key_file)
    return result


@pytest.fixture
def database(settings):
    conn = db.connect(settings.database_url)
    db.upgrade(conn)
    yield conn
    conn.close()


@pytest.fixture
def vault(settings):
    return crypto.Vault.from_settings(settings)


@pytest.fixture
def registry(settings):
    return panels.discover(settings.panel_dirs())


@pytest.fixture
def whm():
    with WhmSimulator(token=WHM_TOKEN) as simulator:
        yield simulator


@pytest.fixture
def cpanel_setup(database, registry, vault, whm):
    """A group 'web' with server 'whm1' on the simulator and product 'starter' (plan basic)."""
    catalog.add_group("web")
    server = catalog.add_server(registry, vault, name="whm1", panel="cpanel", host=whm.host,
                                port=whm.port, group_name="web", max_accounts=50,
                                credentials={"api_token": WHM_TOKEN, "scheme": "http"})
    product = catalog.add_product(registry, name="starter", panel="cpanel", group_name="web",
                                  package="basic")
    return server, product


@pytest.fixture
def worker(settings, vault):
    """A worker on the test's settings; shut down (its runs waited for) at the end."""
    from provisiond.worker import Worker
    w = Worker(settings, vault, owner="test-worker")
    yield w
    w.shutdown()


@pytest.fixture
def run(settings, capsys):
    """run(*argv) → (exit code, stdout, stderr): the provisiond command in-process, as a user
    types it, against the test's home and database."""
    def invoke(*argv):
        code = cli.main(["--home", str(settings.home), "--database-url", settings.database_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err
    return invoke



class Console:
    """A TestClient signed in to the console (``/ui/``) with an admin token; ``csrf`` is the
    session's CSRF value, which every form that changes something must carry."""

    def __init__(self, client, token: str, vault):
        from provisiond.ui import session
        self.client, self.token = client, token
        answer = client.post("/ui/login", data={"token": token})
        assert answer.status_code == 303, answer.text
        self.csrf = session.read(vault, client.cookies.get(session.COOKIE))[1]

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf", self.csrf)
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def console(database, settings, vault):
    """The console signed in as the admin token ``ops`` (redirects are not followed)."""
    from fastapi.testclient import TestClient
    from provisiond import api, tokens
    token = tokens.create("ops", scope="admin")
    with TestClient(api.create_app(settings, vault), follow_redirects=False) as client:
        yield Console(client, token, vault)
