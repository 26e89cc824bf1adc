"""Guarantee 13: a daemon outlives its database connections.

PostgreSQL drops connections (``pg_terminate_backend``, a restart, a failover). A real daemon
process works a wave of orders in small runs while every connection to the test's database
but the test's own is terminated, three times: at the first panel call, and twice more as the
wave goes on. The tick, the wake-up listener, the reaper, the notifier, the runs' lease
renewals and their recording all open new connections and carry on: every job finishes, each
exactly once (one successful attempt, one account creation on the panel), and the daemon
ticks on afterwards. And a result whose connection drops just before it is recorded is
recorded on a new one. PostgreSQL only: SQLite has no connections to lose.
"""

from __future__ import annotations

import collections

import psycopg2
import pytest

from provisiond import lifecycle
from provisiond.models import Daemon, Job, ProvisioningLog, database, utcnow
from tests.conftest import PG_URL
from tests.reliability.conftest import wait_for

ORDERS = 12


def terminate(condition: str, params: tuple) -> int:
    """Terminate the server processes (connections) matching ``condition``; returns how many."""
    admin = psycopg2.connect(PG_URL, connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        f"WHERE pid <> pg_backend_pid() AND {condition}", params)
            return cur.fetchone()[0]
    finally:
        admin.close()


def terminate_backends(dbname: str, spare: int) -> int:
    """Terminate every connection to ``dbname`` but ``spare`` (the test's)."""
    return terminate("datname = %s AND pid <> %s", (dbname, spare))


def created_users(whm) -> collections.Counter:
    return collections.Counter(r.form().get("username") for r in list(whm.requests)
                               if r.path.endswith("/createacct"))


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_every_job_finishes_exactly_once_while_the_database_drops_every_connection(
        shop, registry, vault, whm, daemons, settings):
    whm.latency = 0.3  # runs last a while, so connections are dropped in the middle of them
    daemon = daemons(batch_size=2, max_runs=2, per_server_runs=2)
    assert wait_for(lambda: Daemon.select().where(Daemon.last_tick_at.is_null(False)).exists(), 60), \
        daemon.log_path.read_text()
    spare = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    dbname = database.obj.database

    jobs = [lifecycle.order(registry, vault, product="starter", domain=f"drop{i}.example.com",
                            email=f"me@drop{i}.example.com")[1].id for i in range(ORDERS)]
    terminated = []
    def daemon_connections() -> int:
        return database.execute_sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                                    (dbname, spare)).fetchone()[0]

    for created in (1, 4, 8):
        assert wait_for(lambda: len(created_users(whm)) >= created, 120), daemon.log_path.read_text()
        # After a drop the daemon reconnects after a delay; drop again only once it has.
        assert wait_for(lambda: daemon_connections() >= 2, 60), daemon.log_path.read_text()
        terminated.append(terminate_backends(dbname, spare))
    assert all(n >= 2 for n in terminated), terminated  # the daemon's connections really went

    def all_done() -> bool:
        return Job.select().where(Job.id.in_(jobs), Job.status == "succeeded").count() == ORDERS

    assert wait_for(all_done, 240), (
        [(j.id, j.status, j.last_error) for j in Job.select().where(Job.id.in_(jobs))],
        daemon.log_path.read_text()[-4000:])
    succeeded = collections.Counter(job for (job,) in ProvisioningLog.select(ProvisioningLog.job)
                                    .where(ProvisioningLog.status == "succeeded").tuples())
    assert succeeded == {job: 1 for job in jobs}
    assert sorted(a.domain for a in whm.accounts.values()) == sorted(f"drop{i}.example.com" for i in range(ORDERS))
    assert set(created_users(whm).values()) == {1}  # no account was created twice

    # The daemon lives on and still works: a new order after the last drop is done too.
    assert daemon.poll() is None, daemon.log_path.read_text()
    assert "lost the database connection" in daemon.log_path.read_text()
    since = utcnow()
    _, job = lifecycle.order(registry, vault, product="starter", domain="after.example.com",
                             email="me@after.example.com")
    assert wait_for(lambda: Job.get_by_id(job.id).status == "succeeded", 120), daemon.log_path.read_text()[-4000:]
    assert Daemon.select().where(Daemon.last_tick_at >= since).exists()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_result_whose_connection_dropped_before_recording_is_recorded_once(
        shop, registry, vault, whm, worker, monkeypatch):
    """The connection of the run's thread is terminated between the playbook's end and the
    recording of its result: the result is recorded on a new connection, not lost (a lost one
    would leave the job running until its lease ran out, and the account created again)."""
    from provisiond import execute
    real_run, dropped = execute.run, []

    def run_then_drop(spec):
        result = real_run(spec)
        own = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        dropped.append(terminate("pid = %s", (own,)))
        return result

    monkeypatch.setattr(execute, "run", run_then_drop)
    _, job = lifecycle.order(registry, vault, product="starter", domain="late.example.com",
                             email="me@late.example.com")
    worker.tick(wait=True)
    assert dropped == [1]
    done = Job.get_by_id(job.id)
    assert (done.status, done.attempts, done.lease_owner) == ("succeeded", 1, None)
    assert [log.status for log in done.logs] == ["succeeded"]
    assert list(created_users(whm).values()) == [1]
