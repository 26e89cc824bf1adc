"""Daemon heartbeats, and what they say: is anyone working the queue, and how far behind?

Each daemon (and each ``run --once``) keeps one ``Daemon`` row: who it is (owner, host, pid,
version), when it started, when it last ticked and, after a clean stop, when it stopped.
``check`` is what ``/v1/health`` answers: healthy while the database answers and some daemon
ticked within three tick intervals. ``status`` is what ``provisiond status`` prints.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import socket

import peewee as pw

from provisiond import sweep
from provisiond.config import Settings
from provisiond.models import Daemon, Job, JobStatus, database, utcnow

# A tick may be late by this many intervals before health says nobody is working.
TICKS_OF_SILENCE = 3
# Rows of daemons silent this long are removed when a daemon starts.
FORGET_AFTER = datetime.timedelta(days=7)


def version() -> str:
    try:
        return importlib.metadata.version("provisiond")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def register(owner: str, now: datetime.datetime) -> None:
    """Record a starting daemon; forget daemons silent for a week."""
    Daemon.delete().where(pw.fn.COALESCE(Daemon.last_tick_at, Daemon.started_at) < now - FORGET_AFTER).execute()
    Daemon.insert(owner=owner, host=socket.gethostname()[:255], pid=os.getpid(), version=version()[:32],
                  started_at=now, last_tick_at=None, stopped_at=None).on_conflict(
        conflict_target=[Daemon.owner],
        update={Daemon.started_at: now, Daemon.stopped_at: None}).execute()


def beat(owner: str, now: datetime.datetime) -> None:
    """A tick of ``owner`` finished: it is alive and working the queue."""
    if not Daemon.update(last_tick_at=now).where(Daemon.owner == owner).execute():
        register(owner, now)
        Daemon.update(last_tick_at=now).where(Daemon.owner == owner).execute()


def stopped(owner: str, now: datetime.datetime) -> None:
    Daemon.update(stopped_at=now).where(Daemon.owner == owner).execute()


@dataclasses.dataclass(frozen=True)
class Health:
    ok: bool
    reason: str | None = None


def silence_allowed(settings: Settings) -> datetime.timedelta:
    return datetime.timedelta(seconds=TICKS_OF_SILENCE * settings.tick_seconds)


def check(settings: Settings, now: datetime.datetime | None = None) -> Health:
    """Healthy when the database answers and a daemon ticked within three tick intervals."""
    now = now or utcnow()
    try:
        database.execute_sql("SELECT 1")
        last = Daemon.select(pw.fn.MAX(Daemon.last_tick_at)).scalar()
    except pw.PeeweeException:
        return Health(False, "the database cannot be reached")
    if last is None:
        return Health(False, "no daemon has ticked yet: is `provisiond run` (or a `run --once` cron job) running?")
    if now - last > silence_allowed(settings):
        return Health(False, f"no daemon has ticked for {_age(now - last)} "
                             f"(expected every {settings.tick_seconds:g} s)")
    return Health(True)


def _age(delta: datetime.timedelta) -> str:
    seconds = int(max(0.0, delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def daemon_state(row: Daemon, settings: Settings, now: datetime.datetime) -> str:
    """running, stopped, or silent (no clean stop, and no tick for three intervals)."""
    if row.stopped_at is not None:
        return "stopped"
    last = row.last_tick_at or row.started_at
    return "running" if now - last <= silence_allowed(settings) else "silent"


def queue_depth() -> dict[str, int]:
    """How many jobs are in each status (every status listed, zero included)."""
    counts = {status.value: 0 for status in JobStatus}
    for status, n in Job.select(Job.status, pw.fn.COUNT(Job.id)).group_by(Job.status).tuples():
        counts[status] = n
    return counts


def oldest_queued_age(now: datetime.datetime, due_only: bool = False) -> float | None:
    """Seconds since the oldest queued job was enqueued, or None with nothing queued. With
    ``due_only``, only jobs whose ``run_after`` has passed count (waiting for a worker, not
    for their next retry)."""
    waiting = Job.status == JobStatus.QUEUED.value
    if due_only:
        waiting &= Job.run_after <= now
    oldest = Job.select(pw.fn.MIN(Job.created_at)).where(waiting).scalar()
    return max(0.0, (now - oldest).total_seconds()) if oldest else None


def daemons(settings: Settings, now: datetime.datetime) -> list[dict]:
    """Every daemon's row and its ``daemon_state``, the newest started first."""
    return [{"owner": d.owner, "host": d.host, "pid": d.pid, "version": d.version,
             "state": daemon_state(d, settings, now), "started_at": d.started_at,
             "last_tick_at": d.last_tick_at, "stopped_at": d.stopped_at}
            for d in Daemon.select().order_by(Daemon.started_at.desc())]


def status(settings: Settings, now: datetime.datetime | None = None) -> dict:
    """Daemons, queue depth by status, the oldest queued job's age, the last sweep, health."""
    now = now or utcnow()
    verdict = check(settings, now)
    last_sweep = sweep.last_day()
    return {"healthy": verdict.ok, "reason": verdict.reason, "daemons": daemons(settings, now),
            "queue": queue_depth(), "oldest_queued_age_seconds": oldest_queued_age(now),
            "last_sweep": last_sweep.isoformat() if last_sweep else None}
