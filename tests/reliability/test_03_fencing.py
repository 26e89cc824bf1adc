"""Guarantee 3: fencing.

A worker that stalls (it never renews its lease) loses its job to the reaper and a second
owner, whose claim bumps the fence. The stale worker's run guard then says stop: its playbook
is killed before the panel call that follows, and it records nothing — no log row, no job or
service change — while the new owner's claim stands untouched.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time

from provisiond import artifacts, lifecycle, queue
from provisiond.artifacts import keep_run
from provisiond.models import Job, ProvisioningLog, Service, utcnow
from provisiond.worker import Worker, _RunGuard
from tests.reliability.conftest import run_processes, wait_for


def test_stale_owner_can_neither_renew_nor_record(shop, registry, vault, settings, monkeypatch):
    _, job = lifecycle.order(registry, vault, product="starter", domain="fence.example.com",
                             email="me@fence.example.com")
    now = utcnow()
    [stale] = queue.claim("stale", now, 1, lease_seconds=1)
    later = now + datetime.timedelta(seconds=2)
    Job.update(lease_expires_at=queue.clock() - datetime.timedelta(seconds=1)).where(Job.id == job.id).execute()
    assert queue.reap() == [job.id]
    [fresh] = queue.claim("fresh", later, 1, lease_seconds=60)
    assert (fresh.fence, fresh.attempts) == (stale.fence + 1, 2)
    before = Job.get_by_id(job.id).__data__

    assert queue.heartbeat([stale], later, 600) == {job.id: False}
    assert not queue.finish(stale, later)
    assert not queue.fail(stale, later, "late failure")
    assert not queue.retry_later(stale, later, "late retry", later)
    assert not queue.cancel_running(stale, later)
    assert Job.get_by_id(job.id).__data__ == before  # not even the lease expiry moved

    monkeypatch.setattr(_RunGuard, "CHECK_SECONDS", 0.0)
    assert _RunGuard([stale], settings)() is True      # the stale run is told to stop
    assert _RunGuard([fresh], settings)() is False     # the owner's run goes on


def test_a_stalled_worker_stops_its_playbook_and_records_nothing(shop, registry, vault, settings, whm,
                                                                 server_name, caplog):
    whm.latency = 8.0  # the lookup before createacct is still in flight when the job is taken
    service, job = lifecycle.order(registry, vault, product="starter", domain="stalled.example.com",
                                   email="me@stalled.example.com")
    # A one-second lease that is never renewed: the worker behaves as if paused or partitioned.
    stalled = dataclasses.replace(settings, lease_seconds=1, heartbeat_seconds=3600)
    worker = Worker(stalled, vault, owner="stalled-worker")
    try:
        caplog.set_level(logging.WARNING, logger="provisiond.worker")
        [run] = worker.tick()
        assert wait_for(lambda: len(whm.requests) >= 1, 60), "the playbook never called the panel"
        assert wait_for(lambda: queue.clock() > Job.get_by_id(job.id).lease_expires_at, 5)
        assert queue.reap() == [job.id]
        [taken] = queue.claim("new-owner", utcnow(), 1, lease_seconds=600)
        taken_at = time.monotonic()
        run.result(timeout=60)
        stopped_after = time.monotonic() - taken_at
    finally:
        worker.shutdown()

    assert stopped_after < 7  # the guard checks every 2 s; the panel call alone takes 8 s
    row = Job.get_by_id(job.id)
    assert (row.status, row.lease_owner, row.fence, row.attempts) == ("running", "new-owner", taken.fence, 2)
    assert row.lease_expires_at == taken.lease_expires_at
    assert "stopped renewing its lease" in row.last_error  # the reaper's words, nothing from the run
    assert ProvisioningLog.select().count() == 0
    assert Service.get_by_id(service.id).last_error is None
    assert [r.path for r in whm.requests] == ["/json-api/accountsummary"]  # createacct never sent
    assert whm.accounts == {}
    assert run_processes(server_name) == {}
    assert any("taken over by another worker" in r.getMessage() for r in caplog.records)


def test_a_job_taken_over_as_its_run_ends_is_left_to_its_owner_and_the_rest_are_recorded(
        shop, registry, vault, settings, whm, monkeypatch, caplog):
    """A run's jobs are recorded together (worker.RECORD_CHUNK to a transaction), each job in a
    savepoint: the one taken over meanwhile rolls back alone."""
    (taken_service, taken), (kept_service, kept) = [
        lifecycle.order(registry, vault, product="starter", domain=f"{name}.example.com",
                        email=f"me@{name}.example.com") for name in ("taken", "kept")]
    new_owner = []

    def take_over_then_keep(*args, **kwargs):   # the run has ended; nothing is recorded yet
        Job.update(lease_expires_at=queue.clock() - datetime.timedelta(seconds=1)).where(Job.id == taken.id).execute()
        assert queue.reap() == [taken.id]
        new_owner.extend(queue.claim("new-owner", utcnow(), 1, lease_seconds=600))
        return keep_run(*args, **kwargs)

    monkeypatch.setattr(artifacts, "keep_run", take_over_then_keep)
    caplog.set_level(logging.WARNING, logger="provisiond.worker")
    worker = Worker(settings, vault, owner="ending-worker")
    try:
        [run] = worker.tick()
        run.result(timeout=120)
    finally:
        worker.shutdown()

    assert sorted(whm.accounts) == sorted([taken_service.username, kept_service.username])  # both ran
    [claim] = new_owner
    row = Job.get_by_id(taken.id)
    assert (claim.id, row.status, row.lease_owner, row.fence) == (taken.id, "running", "new-owner", claim.fence)
    assert not ProvisioningLog.select().where(ProvisioningLog.job == taken.id).exists()
    assert Service.get_by_id(taken_service.id).status == "pending"
    assert Job.get_by_id(kept.id).status == "succeeded"
    assert [r.status for r in ProvisioningLog.select().where(ProvisioningLog.job == kept.id)] == ["succeeded"]
    assert Service.get_by_id(kept_service.id).status == "active"
    assert [r.getMessage() for r in caplog.records if "taken over" in r.getMessage()] == [
        f"job {taken.id} was taken over by another worker; its result was not recorded"]
