"""Connecting the database and keeping its schema current.

SQLite is the default (a file under the home directory, WAL, ``synchronous=FULL``, busy
timeout, every transaction a writer from its BEGIN); PostgreSQL is chosen by URL
(``PROVISIOND_DATABASE_URL=postgresql://...``).
Schema changes are numbered steps in ``MIGRATIONS``; ``upgrade()`` applies the missing ones in
one transaction each and records the version, so ``provisiond init`` and ``provisiond db
upgrade`` are safe to run twice.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from pathlib import Path
from typing import Callable, TypeVar

import peewee as pw
from playhouse.db_url import parse as parse_url
from playhouse.pool import PooledDatabase, _PooledPostgresqlDatabase

from provisiond.errors import ConfigError
from provisiond.models import MODELS, Setting, database

log = logging.getLogger("provisiond.db")

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: an acknowledged enqueue survives power loss
    "foreign_keys": 1,
    "busy_timeout": 30000,
}


class SqliteDatabase(pw.SqliteDatabase):
    """SQLite whose transactions take the write lock at BEGIN (``BEGIN IMMEDIATE``).

    A deferred transaction that reads, then writes, may not get to write: "If some other database
    connection has already modified the database [...], then upgrading to a write transaction is
    not possible and the write statement will fail with SQLITE_BUSY" (sqlite.org,
    lang_transaction.html), at once, since "invoking the busy handler could result in a deadlock"
    (sqlite3_busy_handler). Most of provisiond's transactions read first (does the name exist? is
    the job still ours?): begun immediate, a second writer waits its turn under the busy timeout
    instead of failing. Reads outside a transaction are not held up (WAL)."""

    def begin(self, lock_type=None):
        return super().begin(lock_type or "IMMEDIATE")


def is_postgres(db: pw.Database | None = None) -> bool:
    return isinstance(db or database.obj, pw.PostgresqlDatabase)


class ReconnectingPostgresqlDatabase(pw.PostgresqlDatabase):
    """PostgreSQL whose threads get a new connection once theirs was dropped by the server.

    After ``pg_terminate_backend``, a restart or a failover, psycopg marks the thread's
    connection closed at its first failed statement; peewee would go on handing out that
    dead connection ("connection already closed") forever. Here the next cursor taken outside
    a transaction (a BEGIN included) opens a new one instead. The statement that failed is not
    sent again: whether it was applied is unknown, so the caller decides (see ``retrying``).
    """

    def cursor(self, *args, **kwargs):
        if not self.is_closed() and not self.in_transaction() and connection_dropped(self):
            self.dispose()  # the old connection is already closed on our side
        return super().cursor(*args, **kwargs)


class PooledReconnectingPostgresqlDatabase(_PooledPostgresqlDatabase, ReconnectingPostgresqlDatabase):
    """``ReconnectingPostgresqlDatabase`` whose closed connections are kept for the next thread
    that connects (peewee's pool): the API's requests connect and close, and so reuse a few
    connections instead of opening one each.

    A kept connection is checked when handed out (a round trip), so one the server dropped while
    it was idle is thrown away, and one kept ``stale_timeout`` seconds is closed and replaced. A
    connection dropped while a thread uses it is replaced at that thread's next cursor (the
    parent class), and only that connection leaves the pool: peewee's own ``dispose`` would forget
    every thread's connection. Threads that never close (the daemon's) simply keep theirs.
    """

    def dispose(self):
        conn = self._state.conn
        if conn is not None:
            with self._pool_lock:
                self._in_use.pop(self.conn_key(conn), None)
                self._pool_available.notify()
            self._close_raw(conn)
        super(PooledDatabase, self).dispose()  # this thread's state only


def connection_dropped(db: pw.Database | None = None) -> bool:
    """Whether this thread's connection is open in peewee but closed underneath."""
    db = db or database.obj
    if db is None or db.is_closed():
        return False
    return bool(getattr(db._state.conn, "closed", False))


def connection_lost(exc: BaseException, db: pw.Database | None = None) -> bool:
    """Whether ``exc`` means the database is unreachable or dropped this thread's connection
    (so the same work may succeed on a new connection), not a problem with the work itself."""
    db = db or database.obj
    if not isinstance(exc, (pw.InterfaceError, pw.OperationalError)) or not is_postgres(db):
        return False
    return db.is_closed() or connection_dropped(db)


T = TypeVar("T")


def first_line(exc: BaseException) -> str:
    """A driver error's first line (psycopg adds hints and context on the next ones)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

# After a lost connection, the delay before trying again doubles between these bounds.
RECONNECT_FIRST = 0.5
RECONNECT_MAX = 30.0


def retrying(work: Callable[[], T], what: str, stopping: threading.Event, *,
             give_up_after: float | None = None) -> T:
    """Do ``work``; while it fails because the connection was lost, wait and do it again.

    The delay doubles from ``RECONNECT_FIRST`` up to ``RECONNECT_MAX``. Stops trying when ``stopping``
    is set or after ``give_up_after`` seconds, raising the last error. ``work`` must be safe
    to repeat: a write whose answer was lost may or may not have been applied.
    """
    delay, waited = RECONNECT_FIRST, 0.0
    while True:
        try:
            return work()
        except pw.PeeweeException as exc:
            if not connection_lost(exc):
                raise
            if stopping.is_set() or (give_up_after is not None and waited >= give_up_after):
                raise
            log.warning("%s: lost the database connection (%s); trying again in %.1f s",
                        what, first_line(exc), delay)
            stopping.wait(delay)  # the next statement opens a new connection
            waited += delay
            delay = min(RECONNECT_MAX, delay * 2)


# A kept connection older than this is closed and replaced (server-side memory, pgbouncer limits).
POOL_STALE_SECONDS = 600


def connect(url: str, pool: bool = False) -> pw.Database:
    """Open the database named by ``url`` and bind the models to it. ``pool``: on PostgreSQL,
    keep the connections threads close for the next thread (the API's requests; how many at
    once is bounded by ``api.base``)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "sqlite":
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        db = SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=30, check_same_thread=False)
    elif scheme in ("postgres", "postgresql"):
        params = parse_url(url.replace("postgres://", "postgresql://", 1))
        if pool:
            db = PooledReconnectingPostgresqlDatabase(max_connections=None, stale_timeout=POOL_STALE_SECONDS,
                                                      **params)
        else:
            db = ReconnectingPostgresqlDatabase(**params)
    else:
        raise ConfigError(f"database_url: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)")
    database.initialize(db)
    db.connect(reuse_if_open=True)
    return db


WAKE_CHANNEL = "provisiond_wake"


def wake_file(db: pw.Database | None = None) -> Path | None:
    """The file SQLite enqueuers touch to wake daemons: beside the database file."""
    db = db or database.obj
    if isinstance(db, pw.SqliteDatabase) and db.database not in ("", ":memory:"):
        return Path(os.path.abspath(db.database) + ".wake")
    return None


def announce_work() -> None:
    """Wake the daemons once the current transaction commits (NOTIFY, or a touched file)."""
    db = database.obj
    if is_postgres(db):
        db.execute_sql(f"NOTIFY {WAKE_CHANNEL}")  # PostgreSQL delivers it at commit
        return
    path = wake_file(db)
    if path is not None:
        db.after_commit(path.touch)


# -- migrations ------------------------------------------------------------------------------

def _create_tables(db: pw.Database) -> None:
    db.create_tables(MODELS, safe=True)


def _one_running_job_per_service(db: pw.Database) -> None:
    # At most one running job per service, enforced by the database itself.
    db.execute_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS job_one_running_per_service "
        "ON job (service_id) WHERE status = 'running'")
    db.execute_sql("CREATE INDEX IF NOT EXISTS job_service_status ON job (service_id, status)")


def _tokens_outbox_product_policies(db: pw.Database) -> None:
    from playhouse.migrate import SchemaMigrator, migrate
    from provisiond.models import ApiToken, Notification, Product
    db.create_tables([ApiToken, Notification], safe=True)
    columns = {c.name for c in db.get_columns("product")}
    migrator = SchemaMigrator.from_database(db)
    for name in ("welcome_password", "backup_before_terminate"):
        if name not in columns:
            migrate(migrator.add_column("product", name, getattr(Product, name)))
    db.execute_sql("CREATE INDEX IF NOT EXISTS service_overdue ON service (status, paid_until)")


def _audit_and_daemons(db: pw.Database) -> None:
    from provisiond.models import AuditEntry, Daemon
    db.create_tables([AuditEntry, Daemon], safe=True)


def _password_state(db: pw.Database) -> None:
    from playhouse.migrate import SchemaMigrator, migrate
    from provisiond.models import Service
    if "password_state" not in {c.name for c in db.get_columns("service")}:
        migrate(SchemaMigrator.from_database(db).add_column("service", "password_state",
                                                            Service.password_state))


def _log_playbook_folder(db: pw.Database) -> None:
    from playhouse.migrate import SchemaMigrator, migrate
    from provisiond.models import ProvisioningLog
    table = ProvisioningLog._meta.table_name
    if "playbook_folder" not in {c.name for c in db.get_columns(table)}:
        migrate(SchemaMigrator.from_database(db).add_column(table, "playbook_folder",
                                                            ProvisioningLog.playbook_folder))


def _token_scopes(db: pw.Database) -> None:
    # Every token made before scopes existed could do everything, so each becomes an admin
    # token: it keeps working exactly as before. New tokens are billing unless asked.
    from playhouse.migrate import SchemaMigrator, migrate
    from provisiond.models import ApiToken
    table = ApiToken._meta.table_name
    if "scope" not in {c.name for c in db.get_columns(table)}:
        migrate(SchemaMigrator.from_database(db).add_column(
            table, "scope", pw.CharField(max_length=16, default="admin")))


def _server_sync(db: pw.Database) -> None:
    from provisiond.models import ServerSync
    db.create_tables([ServerSync], safe=True)


def _usage(db: pw.Database) -> None:
    from provisiond.models import Usage
    db.create_tables([Usage], safe=True)


def _service_customer_name(db: pw.Database) -> None:
    from playhouse.migrate import SchemaMigrator, migrate
    from provisiond.models import Service
    if "name" not in {c.name for c in db.get_columns("service")}:
        migrate(SchemaMigrator.from_database(db).add_column("service", "name", Service.name))


def _run_events(db: pw.Database) -> None:
    from provisiond.models import RunEvent
    db.create_tables([RunEvent], safe=True)


def _server_max_concurrency(db: pw.Database) -> None:
    # Every server gets the default of 2 calls at once: what two runs of one fork each made before.
    from playhouse.migrate import SchemaMigrator, migrate
    from provisiond.models import Server
    if "max_concurrency" not in {c.name for c in db.get_columns("server")}:
        migrate(SchemaMigrator.from_database(db).add_column("server", "max_concurrency", Server.max_concurrency))


def _variants(db: pw.Database) -> None:
    # Services made before variants have none: they keep the product's own package settings.
    from playhouse.migrate import SchemaMigrator, migrate
    from provisiond.models import ProductVariant, Service
    db.create_tables([ProductVariant], safe=True)
    if "variant_id" not in {c.name for c in db.get_columns("service")}:
        migrate(SchemaMigrator.from_database(db).add_column("service", "variant_id", Service.variant))
    db.execute_sql("CREATE INDEX IF NOT EXISTS service_variant_id ON service (variant_id)")


def _console_indexes(db: pw.Database) -> None:
    # What the console's pages read by: Needs you (failed and held jobs, newest change first,
    # counted by server), the Overview's attempts per hour of the last day, the Servers page.
    db.execute_sql("CREATE INDEX IF NOT EXISTS job_status_updated ON job (status, updated_at, id)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS job_status_server ON job (status, server_id)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS provisioning_log_started ON provisioning_log (started_at)")
    # The Servers page's accounts placed per server: counted from the index alone (SQLite read
    # every service row for its server otherwise: 300 ms at 100,000 services).
    db.execute_sql("CREATE INDEX IF NOT EXISTS service_status_server ON service (status, server_id)")


def _step_secrets(db: pw.Database) -> None:
    from provisiond.models import StepSecret
    db.create_tables([StepSecret], safe=True)


def _checkout(db: pw.Database) -> None:
    # Products made before have no checkout fields of their own, services no checkout values.
    from playhouse.migrate import SchemaMigrator, migrate
    from provisiond.models import Product, Service
    migrator = SchemaMigrator.from_database(db)
    if "checkout" not in {c.name for c in db.get_columns("product")}:
        migrate(migrator.add_column("product", "checkout", Product.checkout))
    if "fields" not in {c.name for c in db.get_columns("service")}:
        migrate(migrator.add_column("service", "fields", Service.fields))


def _service_search_index(db: pw.Database) -> None:
    from provisiond import search_index
    search_index.create(db)


MIGRATIONS: list[tuple[int, str, Callable[[pw.Database], None]]] = [
    (1, "create tables", _create_tables),
    (2, "one running job per service", _one_running_job_per_service),
    (3, "api tokens, notification outbox, product mail and backup policies", _tokens_outbox_product_policies),
    (4, "audit trail, daemon heartbeats", _audit_and_daemons),
    (5, "who chose a service's password, and whether it was revealed", _password_state),
    (9, "the panel folder of each logged attempt", _log_playbook_folder),
    (10, "the customer's name on a service", _service_customer_name),
    (12, "api token scopes: tokens made before them are admin tokens", _token_scopes),
    (13, "the last sync report of each server", _server_sync),
    (14, "usage collected from the panels, one row per service per collection", _usage),
    (15, "each attempt's own task events, for the console's task tree and stdout", _run_events),
    (16, "indexes the console's pages read by", _console_indexes),
    (17, "each server's limit of panel calls at once (max_concurrency)", _server_max_concurrency),
    (18, "the secrets a product's steps make (mailbox, database passwords), encrypted", _step_secrets),
    (19, "checkout fields: a product's own, and the values each order gave", _checkout),
    (20, "product variants, and the variant of each service", _variants),
    (22, "a trigram index for the services search (PostgreSQL with pg_trgm)", _service_search_index),
]


def current_version(db: pw.Database) -> int:
    if not db.table_exists(Setting._meta.table_name):
        return 0
    row = Setting.get_or_none(Setting.key == "schema_version")
    return int(row.value) if row else 0


def upgrade(db: pw.Database) -> list[str]:
    """Apply every migration newer than the recorded version; return what was applied."""
    applied = []
    for version, name, step in MIGRATIONS:
        if version <= current_version(db):
            continue
        with db.atomic():
            step(db)
            Setting.insert(key="schema_version", value=str(version)).on_conflict(
                conflict_target=[Setting.key], update={Setting.value: str(version)}).execute()
        applied.append(f"{version}: {name}")
    return applied


def pending_migrations(db: pw.Database) -> list[str]:
    have = current_version(db)
    return [f"{v}: {name}" for v, name, _ in MIGRATIONS if v > have]


def require_current(db: pw.Database) -> None:
    missing = pending_migrations(db)
    if missing:
        raise ConfigError("database schema is not current; run `provisiond db upgrade` "
                          f"(pending: {', '.join(missing)})")

