"""The queue on a real database (SQLite file and PostgreSQL): claims, leases, fences, order."""

from __future__ import annotations

import datetime
import threading

import pytest

from provisiond import lifecycle, queue
from provisiond.errors import StateError
from provisiond.models import Job, Service, utcnow

LEASE = 90


def run_out(*jobs) -> None:
    """Make the jobs' leases expire now on the database's clock (as a worker's death would)."""
    past = queue.clock() - datetime.timedelta(seconds=1)
    Job.update(lease_expires_at=past).where(Job.id.in_([j.id for j in jobs])).execute()


def order(registry, vault, n: int) -> list[Service]:
    return [lifecycle.order(registry, vault, product="starter", domain=f"q{i}.example.com",
                            email=f"o@q{i}.example.com")[0] for i in range(n)]


def test_idempotency_key_returns_the_same_job(cpanel_setup):
    server, _ = cpanel_setup
    first, created = queue.enqueue("test_connection", server=server, idempotency_key="k-1")
    again, created_again = queue.enqueue("test_connection", server=server, idempotency_key="k-1")
    assert created and not created_again and first.id == again.id
    assert Job.select().count() == 1


def test_concurrent_claims_never_share_a_job(cpanel_setup, registry, vault):
    order(registry, vault, 40)
    claimed: list[list[int]] = []
    errors = []

    def claim_all(owner):
        mine = []
        try:
            while True:
                jobs = queue.claim(owner, utcnow(), 3, LEASE)
                if not jobs:
                    break
                mine.extend(j.id for j in jobs)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        claimed.append(mine)

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    every = [job_id for mine in claimed for job_id in mine]
    assert len(every) == len(set(every)) == 40
    assert Job.select().where(Job.status == "running").count() == 40
    assert {j.fence for j in Job.select()} == {1}


def test_jobs_of_one_service_run_one_at_a_time_in_order(cpanel_setup, registry, vault):
    service = order(registry, vault, 1)[0]
    create = queue.open_job(service)
    suspend, _ = queue.enqueue("suspend", service=service, server=service.server)
    first = queue.claim("w1", utcnow(), 10, LEASE)
    assert [j.id for j in first] == [create.id]
    assert queue.claim("w2", utcnow(), 10, LEASE) == []  # suspend waits for the create
    assert queue.finish(first[0], utcnow())
    assert [j.id for j in queue.claim("w2", utcnow(), 10, LEASE)] == [suspend.id]


def test_database_refuses_two_running_jobs_for_one_service(cpanel_setup, registry, vault, database):
    import peewee as pw
    service = order(registry, vault, 1)[0]
    queue.claim("w1", utcnow(), 1, LEASE)
    second, _ = queue.enqueue("suspend", service=service, server=service.server)
    with pytest.raises(pw.IntegrityError):
        with database.atomic():
            Job.update(status="running").where(Job.id == second.id).execute()


def test_a_worker_whose_lease_was_taken_over_records_nothing(cpanel_setup, registry, vault):
    order(registry, vault, 1)
    now = utcnow()
    [stale] = queue.claim("old-worker", now, 1, lease_seconds=1)
    later = now + datetime.timedelta(seconds=5)
    run_out(stale)
    assert queue.reap() == [stale.id]
    [fresh] = queue.claim("new-worker", later, 1, LEASE)
    assert fresh.fence == stale.fence + 1
    assert not queue.finish(stale, later)
    assert not queue.fail(stale, later, "late")
    assert queue.heartbeat([stale], later, LEASE) == {stale.id: False}
    assert queue.heartbeat([fresh], later, LEASE) == {fresh.id: True}
    assert Job.get_by_id(fresh.id).status == "running"
    assert queue.finish(fresh, later)


def test_one_renewal_for_a_run_renews_its_live_jobs_and_leaves_a_taken_over_one(cpanel_setup, registry, vault):
    """A run's jobs are renewed together: the one another worker took over keeps that worker's
    lease; the others, of two fences, get the new expiry."""
    order(registry, vault, 3)
    now = utcnow()
    taken, again, live = queue.claim("run", now, 3, lease_seconds=1)
    run_out(taken, again)
    queue.reap()
    [stolen] = queue.claim("other", now, 1, LEASE)
    assert stolen.id == taken.id
    [again] = queue.claim("run", now, 1, lease_seconds=1)   # fence 2, where live's is 1
    assert (again.fence, live.fence) == (2, 1)
    theirs = Job.get_by_id(taken.id).lease_expires_at
    assert queue.heartbeat([taken, again, live], now, 3600) == {taken.id: False, again.id: True, live.id: True}
    rows = {job.id: job for job in Job.select()}
    assert rows[taken.id].lease_owner == "other" and rows[taken.id].lease_expires_at == theirs
    soon = queue.clock() + datetime.timedelta(seconds=600)
    assert rows[again.id].lease_expires_at > soon and rows[live.id].lease_expires_at > soon


def test_reaper_leaves_live_leases_and_fails_exhausted_jobs(cpanel_setup, registry, vault):
    order(registry, vault, 2)
    now = utcnow()
    a, b = queue.claim("w", now, 2, lease_seconds=30)
    Job.update(max_attempts=1).where(Job.id == b.id).execute()
    assert queue.reap() == []
    run_out(a, b)
    reaped = queue.reap()
    assert sorted(reaped) == sorted([a.id, b.id])
    assert Job.get_by_id(a.id).status == "queued"
    assert Job.get_by_id(b.id).status == "failed"
    assert "outcome of attempt 1 unknown" in Job.get_by_id(b.id).last_error


def test_cancel_and_retry(cpanel_setup, registry, vault):
    order(registry, vault, 2)
    queued = Job.select().order_by(Job.id).first()
    assert queue.cancel(queued.id, utcnow()).status == "cancelled"
    claimed = queue.claim("w", utcnow(), 5, LEASE)
    assert queued.id not in [j.id for j in claimed]  # a cancelled job is never claimed
    running = claimed[0]
    assert queue.cancel(running.id, utcnow()).cancel_requested
    assert queue.heartbeat([running], utcnow(), LEASE) == {running.id: False}
    with pytest.raises(StateError):
        queue.retry(running.id, utcnow(), 3)
    retried = queue.retry(queued.id, utcnow(), 3)
    assert retried.status == "queued" and retried.max_attempts == retried.attempts + 3


def test_retry_later_waits_until_run_after(cpanel_setup, registry, vault):
    order(registry, vault, 1)
    now = utcnow()
    [job] = queue.claim("w", now, 1, LEASE)
    assert queue.retry_later(job, now, "HTTP 503", now + datetime.timedelta(seconds=60))
    assert queue.claim("w", now + datetime.timedelta(seconds=59), 1, LEASE) == []
    [again] = queue.claim("w", now + datetime.timedelta(seconds=61), 1, LEASE)
    assert again.attempts == 2 and again.fence == 2


# -- a cancel sticks ---------------------------------------------------------------------------

def test_a_running_job_asked_to_cancel_whose_worker_died_is_cancelled_not_queued(cpanel_setup, registry, vault):
    service = order(registry, vault, 1)[0]
    [job] = queue.claim("dead-worker", utcnow(), 1, LEASE)
    assert queue.cancel(job.id, utcnow()).cancel_requested
    run_out(job)
    assert queue.reap() == [job.id]
    row = Job.get_by_id(job.id)
    assert (row.status, row.lease_owner) == ("cancelled", None)
    assert "cancelled" in row.last_error and "outcome of attempt 1 unknown" in row.last_error
    assert queue.claim("w2", utcnow(), 5, LEASE) == []
    assert queue.open_job(service) is None


def test_a_queued_job_carrying_a_cancel_request_is_never_claimed_and_gets_cancelled(cpanel_setup, registry, vault):
    order(registry, vault, 1)
    job = Job.get()
    # The state the old reaper left behind: queued again with the cancel request still set.
    Job.update(cancel_requested=True).where(Job.id == job.id).execute()
    assert queue.claim("w", utcnow(), 5, LEASE) == []
    assert queue.reap() == [job.id]
    assert (Job.get_by_id(job.id).status, Job.get_by_id(job.id).attempts) == ("cancelled", 0)


def test_a_failed_attempt_of_a_job_asked_to_cancel_is_not_retried(cpanel_setup, registry, vault):
    order(registry, vault, 1)
    now = utcnow()
    [job] = queue.claim("w", now, 1, LEASE)
    queue.cancel(job.id, now)
    assert queue.retry_later(job, now, "HTTP 503", now) == "cancelled"
    row = Job.get_by_id(job.id)
    assert row.status == "cancelled" and "HTTP 503" in row.last_error
    assert queue.claim("w", now + datetime.timedelta(seconds=5), 1, LEASE) == []
