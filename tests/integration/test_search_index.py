"""Migration 22: the services search's trigram index on PostgreSQL (pg_trgm), used by the
search's own statement; where the extension cannot be had, the migration still passes, says
why, and the search answers the same by a scan."""

from __future__ import annotations

import logging
import os
import urllib.parse

import pytest

from provisiond import db as dbmod
from provisiond import listing, search_index
from provisiond.models import Service, Setting
from tests.conftest import _admin
from tests.helpers import add_services

STEP = "22: a trigram index for the services search (PostgreSQL with pg_trgm)"


def plan_of_search(database, text: str) -> str:
    """PostgreSQL's plan of the services search for ``text``, sequential scans priced out (so
    it names the index whenever the index can serve the statement at all)."""
    query, params = Service.select(Service.id).where(listing._search(text)).sql()
    with database.atomic():
        database.execute_sql("SET LOCAL enable_seqscan = off")
        return "\n".join(row[0] for row in database.execute_sql("EXPLAIN " + query, params))


def test_a_database_of_version_20_gets_the_index_and_the_search_uses_it(cpanel_setup, database, vault):
    server, product = cpanel_setup
    add_services(vault, product, server, [("INV-1", "alpha.example.com", "active"),
                                          ("INV-2", "Beta-Shop.example.org", "active")])
    if not dbmod.is_postgres(database):
        assert not search_index.exists(database)  # SQLite: no such index, no error
        return
    database.execute_sql(f"DROP INDEX {search_index.NAME}")
    Setting.update(value="20").where(Setting.key == "schema_version").execute()  # the one before 22
    assert dbmod.pending_migrations(database) == [STEP]
    assert dbmod.upgrade(database) == [STEP] and dbmod.upgrade(database) == []
    assert search_index.exists(database)
    assert search_index.NAME in plan_of_search(database, "beta-shop")
    rows, total = listing.services(q="BETA-shop")
    assert [s.ref for s in rows] == ["INV-2"] and total == 1


@pytest.fixture
def restricted_url(database_url, request):
    """The test's PostgreSQL database as a role that may create tables but not extensions."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the extension is PostgreSQL's")
    role = f"pvd_noext_{os.getpid()}"
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    conn = dbmod.connect(database_url)
    conn.execute_sql(f'DROP ROLE IF EXISTS "{role}"')
    conn.execute_sql(f'CREATE ROLE "{role}" LOGIN')
    conn.execute_sql(f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC, "{role}"')
    conn.execute_sql(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"')
    conn.execute_sql("DROP EXTENSION IF EXISTS pg_trgm CASCADE")
    conn.close()
    parts = urllib.parse.urlsplit(database_url)
    yield urllib.parse.urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
    from provisiond.models import database as proxy
    proxy.obj.close()
    conn = dbmod.connect(database_url)
    conn.execute_sql(f'DROP OWNED BY "{role}" CASCADE')
    conn.close()
    _admin(f'DROP ROLE IF EXISTS "{role}"')


def test_without_the_right_to_create_the_extension_the_upgrade_passes_and_says_why(restricted_url, caplog):
    caplog.set_level(logging.WARNING, logger="provisiond.db")
    conn = dbmod.connect(restricted_url)
    applied = dbmod.upgrade(conn)
    assert applied[-1] == STEP and dbmod.pending_migrations(conn) == []
    assert not search_index.exists(conn)
    [said] = [r.getMessage() for r in caplog.records if "services search" in r.getMessage()]
    assert "permission denied" in said and "CREATE EXTENSION pg_trgm" in said and search_index.CREATE in said
    rows, total = listing.services(q="anything")  # a scan: the same answers, only slower
    assert rows == [] and total == 0
