"""The API's PostgreSQL connections: kept between requests, at most ``api_db_pool`` at once, and
replaced when the server drops them (restart, failover). PostgreSQL only."""

from __future__ import annotations

import threading
import time

import peewee as pw
import psycopg2
import pytest
from fastapi.testclient import TestClient

from provisiond import api, tokens
from provisiond import db as dbmod
from provisiond.api import base
from tests.conftest import PG_URL

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def backends(dbname: str, spare: int) -> set[int]:
    """The server processes connected to ``dbname`` but ``spare`` (the test's own)."""
    return set(admin("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s", (dbname, spare)))


def admin(sql: str, params: tuple) -> list:
    conn = psycopg2.connect(PG_URL, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture
def pooled(database, settings):
    """The models bound to a pooled database, as ``provisiond api`` binds them; returns the
    test's own backend pid (its main thread's connection)."""
    database.close()
    db = dbmod.connect(settings.database_url, pool=True)
    yield db, db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    db.close_all()


def test_requests_reuse_a_few_connections_and_survive_their_loss(pooled, settings, vault):
    db, spare = pooled
    token = tokens.create("shop")
    with TestClient(api.create_app(settings, vault), headers={"Authorization": f"Bearer {token}"}) as client:
        assert all(client.get("/v1/services").status_code == 200 for _ in range(20))
        kept = backends(db.database, spare)
        assert 1 <= len(kept) <= 2  # the token check and the route, each at most once at a time
        assert all(client.get("/v1/services?q=x").status_code == 200 for _ in range(20))
        assert backends(db.database, spare) == kept  # the same connections served them all
        admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
              (db.database, spare))
        assert [client.get("/v1/services").status_code for _ in range(5)] == [200] * 5
        assert backends(db.database, spare).isdisjoint(kept)


def test_a_connection_dropped_while_in_use_is_replaced_and_only_it_leaves_the_pool(pooled):
    db, spare = pooled
    seen = []

    def request():
        with base.connection():
            pid = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
            admin("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(pw.OperationalError):  # the statement in flight fails: the caller decides
                db.execute_sql("SELECT 1")
            seen.append(db.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid)

    worker = threading.Thread(target=request)
    worker.start()
    worker.join(30)
    assert seen == [True]
    assert len(db._in_use) == 1 and len(db._connections) == 1  # the test's own, and the new one kept


def test_at_most_api_db_pool_requests_hold_a_connection(pooled, monkeypatch):
    db, spare = pooled
    monkeypatch.setattr(base, "_slots", threading.BoundedSemaphore(3))  # api_db_pool: 3
    inside, most, release = [0], [0], threading.Event()
    lock = threading.Lock()

    def request():
        with base.connection():
            db.execute_sql("SELECT 1")
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            release.wait(10)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(8)]
    for each in threads:
        each.start()
    deadline = time.monotonic() + 10
    while inside[0] < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert inside[0] == 3 and len(backends(db.database, spare)) == 3
    release.set()
    for each in threads:
        each.join(30)
    assert most[0] == 3 and len(backends(db.database, spare)) == 3
