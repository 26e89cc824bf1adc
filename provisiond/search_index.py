"""The services search's index on PostgreSQL: trigrams (``pg_trgm``) of the text it searches.

``listing`` finds a service by any part of its ref, domain, username or email with one ``LIKE
'%text%'`` on those four joined by newlines and lower-cased in the "C" collation. No B-tree
serves a substring, so without this index that is a scan of every service (170 ms at 100,000
on the bench machine). A GIN index of the trigrams of exactly that expression serves it: the
database reads only the services that hold every trigram of the text, then checks those.

The index needs the ``pg_trgm`` extension. Migration 22 creates it where the database allows
(``CREATE EXTENSION`` needs the database's CREATE right, or an owner who made it already);
where it does not, the migration logs why and what an owner can run, and the search stays a
scan: slower on a large fleet, the same answers. SQLite has no such index; its scan is cheaper
(four ``LIKE`` that fold ASCII case themselves).
"""

from __future__ import annotations

import logging

import peewee as pw

log = logging.getLogger("provisiond.db")

NAME = "service_search_trgm"
# Must be the expression listing._search builds, to the letter, or the planner cannot use it
# (tests/integration/test_search_index.py asks the planner).
EXPRESSION = ("LOWER(((((((ref || E'\\n') || domain) || E'\\n') || COALESCE(username, '')) || E'\\n') "
              "|| email) COLLATE \"C\")")
CREATE = f"CREATE INDEX IF NOT EXISTS {NAME} ON service USING gin (({EXPRESSION}) gin_trgm_ops)"


def create(db: pw.Database) -> bool:
    """Create the index on PostgreSQL where ``pg_trgm`` can be had; whether it exists after."""
    from provisiond.db import is_postgres
    if not is_postgres(db):
        return False
    try:
        with db.atomic():  # a savepoint: a refusal leaves the migration's transaction usable
            db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            db.execute_sql(CREATE)
    except pw.DatabaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("the services search stays a scan of every service: no trigram index (%s). "
                    "An owner of the database can make it: CREATE EXTENSION pg_trgm; %s;", reason, CREATE)
        return False
    return True


def exists(db: pw.Database) -> bool:
    from provisiond.db import is_postgres
    return is_postgres(db) and bool(db.execute_sql(
        "SELECT 1 FROM pg_indexes WHERE indexname = %s AND tablename = 'service'", (NAME,)).fetchone())
