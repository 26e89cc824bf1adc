"""Guarantee 2: dead workers are noticed.

A daemon process is SIGKILLed in the middle of a playbook (the WHM simulator answers slowly).
Its job keeps the dead daemon's lease until the lease runs out; only then does a second daemon
take it (the reaper puts it back in the queue), run it, and the account exists exactly once.
Leases are on the database's clock: a node whose own clock is fast takes nothing early.
"""

from __future__ import annotations

import datetime
import os
import signal

from provisiond import daemon, lifecycle, queue, worker as workermod
from provisiond.daemon import Daemon
from provisiond.models import Job, ProvisioningLog, utcnow
from tests.reliability.conftest import run_processes, wait_for

LEASE = 6


def test_a_killed_daemons_job_is_taken_over_after_its_lease_not_before(shop, registry, vault, whm,
                                                                        daemons, server_name):
    whm.latency = 1.5
    _, job = lifecycle.order(registry, vault, product="starter", domain="killed.example.com",
                             email="me@killed.example.com")
    first = daemons(lease_seconds=LEASE)
    assert wait_for(lambda: len(whm.requests) >= 1, 60), "the first daemon never called the panel"
    during = Job.get_by_id(job.id)
    assert during.status == "running" and during.attempts == 1
    dead_owner = during.lease_owner

    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    killed_at = utcnow()
    expires = Job.get_by_id(job.id).lease_expires_at  # nobody renews it any more
    assert expires > killed_at - datetime.timedelta(seconds=1)

    daemons(lease_seconds=LEASE)
    observations = []

    def taken_over() -> bool:
        row = Job.get_by_id(job.id)
        observations.append((utcnow(), row.status, row.lease_owner, row.attempts))
        return row.attempts >= 2

    assert wait_for(taken_over, LEASE + 30), observations[-1]
    for seen_at, status, owner, attempts in observations:
        if seen_at < expires:  # before the lease ran out: still the dead daemon's, untouched
            assert (status, owner, attempts) == ("running", dead_owner, 1), (seen_at, expires)
    retaken_at = observations[-1][0]
    assert retaken_at >= expires
    assert retaken_at - expires < datetime.timedelta(seconds=10)  # noticed within seconds

    assert wait_for(lambda: Job.get_by_id(job.id).status == "succeeded", 60), Job.get_by_id(job.id).last_error
    done = Job.get_by_id(job.id)
    assert done.attempts == 2 and done.lease_owner is None
    [log] = ProvisioningLog.select().where(ProvisioningLog.job == job.id)
    assert (log.attempt, log.status) == (2, "succeeded")
    assert log.started_at >= expires  # the second run began after the dead daemon's lease
    assert [a.domain for a in whm.accounts.values()] == ["killed.example.com"]
    creates = [r for r in whm.requests if r.path.endswith("/createacct")]
    assert len(creates) == 1
    assert run_processes(server_name) == {}  # the killed daemon's playbook died with it


FAST = datetime.timedelta(seconds=120)


def test_a_daemon_whose_clock_is_fast_never_takes_a_job_another_still_holds(shop, registry, vault, settings,
                                                                             whm, monkeypatch):

    _, job = lifecycle.order(registry, vault, product="starter", domain="held.example.com",
                             email="me@held.example.com")
    [held] = queue.claim("live-worker", utcnow(), 1, lease_seconds=60)  # alive, renewing every few s
    fast_now = lambda: utcnow() + FAST  # noqa: E731 - this node's clock is two minutes ahead
    monkeypatch.setattr(workermod, "utcnow", fast_now)
    monkeypatch.setattr(daemon, "utcnow", fast_now)
    fast = Daemon(settings, vault, owner="fast-node")
    try:
        fast.reap()
        assert fast.worker.tick(fast_now(), wait=True) == []
    finally:
        fast.worker.shutdown()
    row = Job.get_by_id(job.id)
    assert (row.status, row.lease_owner, row.fence, row.attempts) == ("running", "live-worker", held.fence, 1)
    assert whm.requests == []

    # A lease the fast node writes is on the database's clock too, not two minutes too long.
    other = lifecycle.order(registry, vault, product="starter", domain="other.example.com",
                            email="me@other.example.com")[1]
    before = queue.clock()
    [mine] = queue.claim("fast-node", fast_now(), 1, lease_seconds=60)
    assert mine.id == other.id
    lease = datetime.timedelta(seconds=60)
    assert before + lease <= mine.lease_expires_at <= queue.clock() + lease
    assert queue.heartbeat([mine], fast_now(), 60) == {mine.id: True}
    assert Job.get_by_id(mine.id).lease_expires_at <= queue.clock() + datetime.timedelta(seconds=60)
