"""``/ui/overview``: is the fleet keeping up? Jobs by status, attempts and failures per hour
for the last 24 hours, the oldest job waiting for a worker, the daemons' heartbeats and the
daily work (overdue sweep, sync, usage collection).

The figures are those ``provisiond status`` and ``/metrics`` give (``health``): a daemon is
stale when it has not ticked for three tick intervals and did not stop cleanly
(``health.daemon_state`` calls it silent); a failure is an attempt the worker recorded as
retrying, timed out, failed or needing attention (``metrics.FAILURE_KINDS``).
"""

from __future__ import annotations

import datetime

import peewee as pw
from fastapi import APIRouter, Request

from provisiond import daily, health, metrics, sweep, sync, usage
from provisiond.api.base import with_db
from provisiond.models import Job, JobStatus, ProvisioningLog, ServerSync, utcnow
from provisiond.ui import chart, session
from provisiond.ui.render import page

router = APIRouter()
HOURS = 24
FAILED_STATUSES = tuple(metrics.FAILURE_KINDS)


@router.get("/overview")
@with_db
def overview(request: Request, admin: session.AdminDep):
    settings = request.app.state.context.settings
    now = utcnow()
    status = health.status(settings, now)
    bars = chart.hourly_bars(attempts_by_hour(chart.first_hour(now, HOURS)), now, HOURS)
    return page(request, "overview.html", title="Overview", admin=admin, now=now, status=status,
                chart=bars, queued_due=queued_due(now),
                oldest_due=health.oldest_queued_age(now, due_only=True),
                tick_seconds=settings.tick_seconds, daily=daily_work())


def attempts_by_hour(since: datetime.datetime) -> dict[datetime.datetime, tuple[int, int]]:
    """Provisioning log rows started since ``since``, by hour: hour -> (rows, failed rows).

    One grouped query; the hour comes from peewee's ``truncate`` (``date_trunc`` on
    PostgreSQL, the same function registered by peewee on SQLite), grouped by its position
    because PostgreSQL does not see two bound ``'hour'`` parameters as the same expression.
    """
    log = ProvisioningLog
    failed = pw.fn.SUM(pw.Case(None, [(log.status.in_(FAILED_STATUSES), 1)], 0))
    rows = (log.select(log.started_at.truncate("hour"), pw.fn.COUNT(log.id), failed)
            .where(log.started_at >= since).group_by(pw.SQL("1")).tuples())
    return {_as_datetime(hour): (int(n), int(bad or 0)) for hour, n, bad in rows}


def _as_datetime(value) -> datetime.datetime:
    """PostgreSQL gives a datetime; peewee's SQLite function gives 'YYYY-MM-DD HH:00:00'
    (parsed by peewee unless the driver already did)."""
    return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(str(value))


def queued_due(now: datetime.datetime) -> int:
    """Queued jobs whose next attempt time has passed: waiting for a worker right now."""
    return Job.select().where((Job.status == JobStatus.QUEUED.value) & (Job.run_after <= now)).count()


def daily_work() -> dict:
    """The last day of each daily work, and what the last syncs found (``ServerSync``: one
    row per server, its last report)."""
    synced, last_checked, drifting = ServerSync.select(
        pw.fn.COUNT(ServerSync.id), pw.fn.MAX(ServerSync.checked_at),
        pw.fn.SUM(pw.Case(None, [(ServerSync.fingerprint != sync.EMPTY, 1)], 0))).tuples().get()
    return {"sweep": sweep.last_day(), "sync": daily.last_day(sync.LAST_SYNC),
            "usage": daily.last_day(usage.LAST_COLLECTION), "servers_synced": synced,
            "last_checked": last_checked, "servers_drifting": int(drifting or 0)}
