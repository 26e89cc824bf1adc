"""Guarantee 11: cluster-wide periodic work runs once.

Three daemons share one database. On each of three days all three fire their sweep at the same
moment: one sweep runs per day (the others wait on the day's row and find it done), and the
overdue services get one suspend job each. Then the jobs are left by a dead worker with expired leases, and the
three daemons' reapers fire together three times: each expired job is reaped exactly once.
"""

from __future__ import annotations

import collections
import datetime
import threading
import time
import types

from provisiond import daemon as daemon_module, queue, sweep
from provisiond.daemon import Daemon
from provisiond.models import Job, Service, database, utcnow

OVERDUE = 8


class FakeDate(datetime.date):
    current = datetime.date(2030, 1, 10)

    @classmethod
    def today(cls):
        return cls.current


def overdue_services(server, product, n: int) -> None:
    now, paid = utcnow(), datetime.date(2029, 12, 1)  # 40 days before the first fake day
    Service.insert_many([{"ref": f"R11-{i}", "product": product.id, "server": server.id,
                          "domain": f"late{i}.example.com", "email": f"o@late{i}.example.com",
                          "username": f"late{i}", "package": "basic", "status": "active",
                          "paid_until": paid, "created_at": now, "updated_at": now} for i in range(n)]).execute()


def all_at_once(daemons: list[Daemon], method: str) -> None:
    barrier = threading.Barrier(len(daemons))

    def fire(daemon):
        try:
            barrier.wait()
            getattr(daemon, method)()
        finally:
            database.close()  # each thread's own connection

    threads = [threading.Thread(target=fire, args=(d,)) for d in daemons]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def test_three_daemons_sweep_once_a_day_and_reap_each_job_once(shop, settings, vault, monkeypatch):
    server, product = shop
    overdue_services(server, product, OVERDUE)
    daemons = [Daemon(settings, vault, owner=f"node{i}") for i in range(3)]
    for d in daemons:
        monkeypatch.setattr(d, "bring_tick_forward", lambda: None)  # no scheduler running here
    monkeypatch.setattr(daemon_module, "datetime", types.SimpleNamespace(
        date=FakeDate, datetime=datetime.datetime, timedelta=datetime.timedelta, timezone=datetime.timezone))
    sweeps = collections.Counter()
    real_run_sweep = daemon_module.run_sweep

    def counting_run_sweep(settings_, today, dry_run=False, claim=False):
        result = real_run_sweep(settings_, today, dry_run, claim)
        sweeps[today] += result.claimed or bool(result.decisions)  # the others found the day done
        return result

    monkeypatch.setattr(daemon_module, "run_sweep", counting_run_sweep)
    try:
        days = [FakeDate.current + datetime.timedelta(days=n) for n in range(3)]
        for day in days:
            FakeDate.current = day
            all_at_once(daemons, "sweep")
        assert sweeps == {day: 1 for day in days}
        assert sweep.last_day() == days[-1]
        suspends = list(Job.select().where(Job.action == "suspend"))
        assert len(suspends) == OVERDUE and len({j.service_id for j in suspends}) == OVERDUE

        # A worker claims them all and dies; its leases run out.
        dead = queue.claim("dead-node", utcnow(), OVERDUE, lease_seconds=1)
        assert len(dead) == OVERDUE
        time.sleep(1.2)
        reaped: list[int] = []
        lock = threading.Lock()
        real_reap = queue.reap

        def counting_reap(*args, **kwargs):
            got = real_reap(*args, **kwargs)
            with lock:
                reaped.extend(got)
            return got

        monkeypatch.setattr(queue, "reap", counting_reap)
        for _ in range(3):
            all_at_once(daemons, "reap")
        assert sorted(reaped) == sorted(j.id for j in dead)  # each once, across nodes and ticks
        assert {(j.status, j.attempts, j.fence) for j in Job.select().where(Job.action == "suspend")} == {
            ("queued", 1, 1)}
    finally:
        for d in daemons:
            d.worker.shutdown()
