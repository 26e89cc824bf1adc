"""The job queue: the ONLY writer of Job rows.

    enqueue ─▶ queued ──claim──▶ running ──finish──▶ succeeded
                 ▲  │                │ ├──fail────▶ failed | needs_attention
                 │  └──cancel──▶ cancelled        │ └──retry_later──▶ queued (run_after later)
                 └──── reap (lease expired) ◀─────┘
    running ──reap (lease expired, cancel requested)──▶ cancelled
    running ──reap (lease expired, attempts used up)──▶ failed
    failed | cancelled | needs_attention ──retry (admin)──▶ queued
    needs_attention ──resolve (admin)──▶ succeeded | failed

A cancel sticks: a job whose cancel was requested is never claimed nor queued again (the reaper
and ``retry_later`` turn it into ``cancelled``); only an admin's ``retry`` clears the request.
Leases are on one clock, the database's (``clock()``): a lease's expiry is written and compared
in database time, so a daemon whose own clock is fast cannot take a job another still holds.
Every way a job ends is reported to provisiond.outcomes, which moves the service.

A claim is atomic (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``; both with
one conditional update for the batch, then a read of the rows it made ours), gives the job a
lease owner and expiry, and bumps its fence. Heartbeat and every outcome count only for the
current owner and fence, so a worker whose lease expired and whose job was claimed again
records nothing. Jobs of one service run one at a time, in order: only the oldest open job of a
service can be claimed, and a partial unique index refuses a second running job per service.
"""

from __future__ import annotations

import collections
import datetime
from typing import Callable, Iterable

import peewee as pw

from provisiond import db as dbmod
from provisiond.errors import NotFound, StateError
from provisiond.models import OPEN_JOB_STATUSES, Job, JobStatus, Service, database, utcnow

QUEUED, RUNNING = JobStatus.QUEUED.value, JobStatus.RUNNING.value
CANCELLED, FAILED = JobStatus.CANCELLED.value, JobStatus.FAILED.value
RETRYABLE = (JobStatus.FAILED.value, JobStatus.CANCELLED.value, JobStatus.NEEDS_ATTENTION.value)


def clock() -> datetime.datetime:
    """The database's current time (naive UTC): the one clock leases are written and read on."""
    db = database.obj
    if dbmod.is_postgres(db):
        return db.execute_sql("SELECT clock_timestamp() AT TIME ZONE 'UTC'").fetchone()[0]
    text = db.execute_sql("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").fetchone()[0]
    return datetime.datetime.fromisoformat(text)


def enqueue(action: str, *, service=None, server=None, params: dict | None = None,
            secret_params: str | None = None, idempotency_key: str | None = None,
            max_attempts: int = 6, run_after: datetime.datetime | None = None) -> tuple[Job, bool]:
    """Add a job; return an existing one instead (created False) when the idempotency key was
    used already, or, without a key, when the service's newest open job is the same request
    (same action and params): identical requests are merged, whatever raced them."""
    if idempotency_key:
        existing = Job.get_or_none(Job.idempotency_key == idempotency_key)
        if existing is not None:
            return existing, False
    now = utcnow()
    try:
        with database.atomic():  # read, then write: SQLite's write lock is taken at BEGIN (db.py)
            if service is not None and not idempotency_key:
                _lock_service(service)
                newest = (Job.select().where((Job.service == service) & Job.status.in_(OPEN_JOB_STATUSES))
                          .order_by(Job.id.desc()).first())
                if newest is not None and newest.action == action and newest.params == (params or {}):
                    return newest, False
            job = Job.create(action=action, service=service, server=server, params=params or {},
                             secret_params=secret_params, idempotency_key=idempotency_key,
                             max_attempts=max_attempts, run_after=run_after or now,
                             created_at=now, updated_at=now)
            dbmod.announce_work()
    except pw.IntegrityError:
        if not idempotency_key:
            raise
        return Job.get(Job.idempotency_key == idempotency_key), False
    return job, True


def _lock_service(service) -> None:
    """PostgreSQL: hold the service's row until the caller's transaction ends, so two requests
    for one service are decided one after the other (SQLite's BEGIN IMMEDIATE does this)."""
    if dbmod.is_postgres():
        Service.select(Service.id).where(Service.id == service).for_update().execute()


def _candidates(now: datetime.datetime, limit: int, skip_servers: Iterable[int] = (),
                server_id: int | None = None, action: str | None = None, servers: Iterable[int] | None = None):
    """Queued, due jobs on a server that are the oldest open job of their service."""
    earlier = Job.alias("earlier")
    blocked = (earlier.select(earlier.id)
               .where((earlier.service == Job.service) & (earlier.id < Job.id)
                      & (earlier.status.in_(OPEN_JOB_STATUSES))))
    query = (Job.select(Job.id)
             .where((Job.status == QUEUED) & ~Job.cancel_requested
                    & (Job.run_after <= now) & Job.server.is_null(False) & ~pw.fn.EXISTS(blocked))
             .order_by(Job.run_after, Job.id).limit(limit))
    if server_id is not None:
        query = query.where(Job.server == server_id)
    if action is not None:
        query = query.where(Job.action == action)
    skip = list(skip_servers)
    if skip:
        query = query.where(Job.server.not_in(skip))
    if servers is not None:
        query = query.where(Job.server.in_(list(servers)))
    return query


def next_due(now: datetime.datetime, skip_servers: Iterable[int] = (), *, action: str | None = None,
             servers: Iterable[int] | None = None) -> tuple[int, str] | None:
    """(server id, action) of the oldest due job (of ``action``, on one of ``servers``, when
    given): what the next run, or the next server of a run, should be about."""
    servers = None if servers is None else list(servers)
    if servers == []:
        return None
    head = _candidates(now, 1, skip_servers, action=action, servers=servers)
    row = (Job.select(Job.server, Job.action).where(Job.id.in_(head)).tuples().first())
    return (row[0], row[1]) if row else None


def next_wakeup(now: datetime.datetime) -> datetime.datetime | None:
    """When the earliest queued job that is not due yet becomes due (a retry's backoff), so the
    daemon can tick then rather than up to a whole tick interval later."""
    first = (Job.select(Job.run_after).where(Job.status == JobStatus.QUEUED.value, Job.run_after > now)
             .order_by(Job.run_after).first())
    return first.run_after if first else None


def claim(owner: str, now: datetime.datetime, limit: int, lease_seconds: float, *,
          server_id: int | None = None, action: str | None = None,
          skip_servers: Iterable[int] = ()) -> list[Job]:
    """Take up to ``limit`` due jobs for ``owner``; each gets a lease and a new fence.

    With ``server_id`` and ``action`` only jobs that can share one run are taken. ``now`` decides
    which jobs are due; the lease's expiry is set on the database's clock.
    """
    if limit <= 0:
        return []
    expires = clock() + datetime.timedelta(seconds=lease_seconds)
    db = database.obj
    with db.atomic():
        query = _candidates(now, limit, skip_servers, server_id, action)
        if dbmod.is_postgres(db):
            query = query.for_update(skip_locked=True, of=Job)
        candidates = [job_id for (job_id,) in query.tuples()]
        if not candidates:
            return []
        # One statement for the batch. The rows are this transaction's (SQLite's BEGIN IMMEDIATE,
        # PostgreSQL's FOR UPDATE), and the status test keeps a job that is not queued untouched.
        (Job.update(status=RUNNING, lease_owner=owner, lease_expires_at=expires,
                    fence=Job.fence + 1, attempts=Job.attempts + 1, updated_at=now)
         .where(Job.id.in_(candidates) & (Job.status == QUEUED) & ~Job.cancel_requested).execute())
        claimed = list(Job.select().where(Job.id.in_(candidates) & (Job.status == RUNNING)
                                          & (Job.lease_owner == owner)).order_by(Job.id))
    return claimed


def _owned(job: Job):
    return ((Job.id == job.id) & (Job.status == RUNNING) & (Job.lease_owner == job.lease_owner)
            & (Job.fence == job.fence))


def heartbeat(jobs: Iterable[Job], now: datetime.datetime, lease_seconds: float,
              renew: bool = True) -> dict[int, bool]:
    """Renew the leases of running jobs (or only look, with ``renew=False``).

    Returns job id → True while the job is still ours and nobody asked to cancel it. The new
    expiry is on the database's clock.
    """
    jobs = list(jobs)
    if renew:
        expires = clock() + datetime.timedelta(seconds=lease_seconds)
        held = collections.defaultdict(list)   # one statement per (owner, fence): a run's jobs share few
        for job in jobs:
            held[(job.lease_owner, job.fence)].append(job.id)
        for (owner, fence), ids in held.items():
            (Job.update(lease_expires_at=expires, updated_at=now)
             .where(Job.id.in_(ids) & (Job.status == RUNNING) & (Job.lease_owner == owner) & (Job.fence == fence))
             .execute())
    rows = {row.id: row for row in Job.select(Job.id, Job.status, Job.lease_owner, Job.fence,
                                              Job.cancel_requested)
            .where(Job.id.in_([j.id for j in jobs]))}
    state = {}
    for job in jobs:
        row = rows.get(job.id)
        state[job.id] = bool(row and row.status == RUNNING and row.lease_owner == job.lease_owner
                             and row.fence == job.fence and not row.cancel_requested)
    return state


def _settle(job: Job, now: datetime.datetime, when=True, **changes) -> bool:
    changes.setdefault("lease_owner", None)
    changes.setdefault("lease_expires_at", None)
    return bool(Job.update(updated_at=now, **changes).where(_owned(job) & when).execute())


def finish(job: Job, now: datetime.datetime) -> bool:
    """Record success; False when the caller no longer owns the job (nothing written)."""
    return _settle(job, now, status=JobStatus.SUCCEEDED.value, finished_at=now, last_error=None)


def fail(job: Job, now: datetime.datetime, error: str,
         status: JobStatus = JobStatus.FAILED) -> bool:
    return _settle(job, now, status=status.value, finished_at=now, last_error=error)


def retry_later(job: Job, now: datetime.datetime, error: str, run_after: datetime.datetime) -> str | None:
    """Queue the job again for ``run_after``; a job whose cancel was requested meanwhile is
    cancelled instead (a cancel sticks). Returns the status written, None when not the owner."""
    if _settle(job, now, when=~Job.cancel_requested, status=QUEUED,
               run_after=run_after, last_error=error):
        return QUEUED
    if cancel_running(job, now, f"cancelled after a failed attempt: {error}"):
        return CANCELLED
    return None


def cancel_running(job: Job, now: datetime.datetime, error: str = "cancelled") -> bool:
    return _settle(job, now, status=JobStatus.CANCELLED.value, finished_at=now, last_error=error)


def _reapable(at: datetime.datetime):
    """Running jobs whose lease ran out (on the database's clock), and queued jobs that carry a
    cancel request (left by an older version): both are ended or queued again by ``reap``."""
    return (((Job.status == RUNNING) & (Job.lease_expires_at < at))
            | ((Job.status == QUEUED) & Job.cancel_requested))


def _reaped_outcome(job: Job, at: datetime.datetime) -> tuple[str, str, dict]:
    """What the reaper makes of one job: (status, error, changes)."""
    if job.status == QUEUED:
        return CANCELLED, "cancelled by an admin", {"finished_at": at}
    error = f"worker {job.lease_owner} stopped renewing its lease; outcome of attempt {job.attempts} unknown"
    if job.cancel_requested:
        return CANCELLED, f"cancelled; {error}", {"finished_at": at}
    if job.attempts >= job.max_attempts:
        return FAILED, error, {"finished_at": at}
    return QUEUED, error, {}  # its run_after has passed already: due at once, first in line


def reap(on_end: Callable[[Job, str, str], None] | None = None) -> list[int]:
    """End or re-queue running jobs whose lease expired (their worker died or stalled).

    Expiry is judged on the database's clock, never the caller's. A job with a cancel request
    is cancelled; one that used all its attempts fails; the others go back in the queue, where
    the outcome of the interrupted run (unknown) is handled by reading the panel before acting.
    ``on_end(job, status, error)`` runs in the same transaction as each job's change, so the
    service moves with the job (provisiond.outcomes passes it).
    """
    at = clock()
    reaped = []
    for job in list(Job.select().where(_reapable(at)).order_by(Job.id)):
        status, error, changes = _reaped_outcome(job, at)
        with database.atomic():
            updated = Job.update(status=status, last_error=error, lease_owner=None, lease_expires_at=None,
                                 updated_at=at, **changes).where(
                (Job.id == job.id) & (Job.fence == job.fence) & _reapable(at)).execute()
            if updated:
                reaped.append(job.id)
                if on_end is not None:
                    on_end(job, status, error)
    return reaped


def cancel(job_id: int, now: datetime.datetime) -> Job:
    """Cancel a queued job at once; ask a running one to stop (its worker ends the run)."""
    job = get(job_id)
    with database.atomic():
        if Job.update(status=JobStatus.CANCELLED.value, finished_at=now, updated_at=now,
                      last_error="cancelled by an admin").where(
                (Job.id == job_id) & (Job.status == QUEUED)).execute():
            return get(job_id)
        if Job.update(cancel_requested=True, updated_at=now).where(
                (Job.id == job_id) & (Job.status == RUNNING)).execute():
            return get(job_id)
    raise StateError(f"job {job_id} is {job.status}; only queued or running jobs can be cancelled")


def retry(job_id: int, now: datetime.datetime, extra_attempts: int) -> Job:
    """Queue a failed, cancelled or held job again, with ``extra_attempts`` more attempts."""
    job = get(job_id)
    updated = Job.update(status=QUEUED, run_after=now, finished_at=None, cancel_requested=False,
                         max_attempts=Job.attempts + extra_attempts, updated_at=now).where(
        (Job.id == job_id) & Job.status.in_(RETRYABLE)).execute()
    if updated:
        dbmod.announce_work()
    else:
        raise StateError(f"job {job_id} is {job.status}; only failed, cancelled or "
                         "needs_attention jobs can be retried")
    return get(job_id)


def resolve(job_id: int, now: datetime.datetime, succeeded: bool, note: str | None = None) -> Job:
    """End a held (needs_attention) job as an admin found it on the panel: succeeded or failed."""
    job = get(job_id)
    if succeeded:
        changes = {"status": JobStatus.SUCCEEDED.value, "last_error": None}
    else:
        changes = {"status": FAILED, "last_error": "resolved as failed by an admin" + (f": {note}" if note else "")}
    updated = Job.update(finished_at=now, updated_at=now, **changes).where(
        (Job.id == job_id) & (Job.status == JobStatus.NEEDS_ATTENTION.value)).execute()
    if not updated:
        raise StateError(f"job {job_id} is {job.status}; only needs_attention jobs can be resolved")
    return get(job_id)


def get(job_id: int) -> Job:
    job = Job.get_or_none(Job.id == job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return job


def open_job(service) -> Job | None:
    """The service's queued or running job, if any."""
    return (Job.select().where((Job.service == service) & Job.status.in_(OPEN_JOB_STATUSES))
            .order_by(Job.id).first())


def enqueue_many(rows: list[dict], now: datetime.datetime, chunk: int = 500) -> int:
    """Insert many jobs at once (the sweep); rows whose idempotency key exists are skipped.

    Each row has action, service, server, params, idempotency_key, max_attempts. Returns how
    many jobs were added.
    """
    added = 0
    for start in range(0, len(rows), chunk):
        batch = [dict(row, run_after=now, created_at=now, updated_at=now, status=QUEUED)
                 for row in rows[start:start + chunk]]
        added += _insert_new(batch)
    if added:
        dbmod.announce_work()
    return added


def _insert_new(rows: list[dict]) -> int:
    """One multi-row INSERT ... ON CONFLICT DO NOTHING; returns how many rows were added.

    Written out rather than ``Job.insert_many``: peewee renders every value as a query node,
    which made a 6,000-job sweep spend 1 s in Python for 0.06 s in SQLite.
    """
    meta, db = Job._meta, database.obj
    defaults = {field.name: value() if callable(value) else value for field, value in meta.defaults.items()}
    rows = [{**defaults, **row} for row in rows]
    fields = [meta.fields[name] for name in sorted(set().union(*rows))]
    columns = ", ".join(f'"{field.column_name}"' for field in fields)
    values = ", ".join(["(" + ", ".join([db.param] * len(fields)) + ")"] * len(rows))
    sql = f'INSERT INTO "{meta.table_name}" ({columns}) VALUES {values} ON CONFLICT DO NOTHING'
    params = [field.db_value(row.get(field.name)) for row in rows for field in fields]
    return db.execute_sql(sql, params).rowcount
