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

from provisiond import daily, db, health, metrics, sweep, sync, usage
from provisiond.models import Job, JobStatus, ProvisioningLog, ServerSync, utcnow
from provisiond.ui import chart, session
from provisiond.ui.render import page

router = APIRouter()
HOURS = 24
FAILED_STATUSES = tuple(metrics.FAILURE_KINDS)


@router.get("/overview")
@session.with_admin
def overview(request: Request, admin: session.AdminDep):
    settings = request.app.state.context.settings
    now = utcnow()
    verdict = health.check(settings, now)
    bars = chart.hourly_bars(attempts_by_hour(chart.first_hour(now, HOURS)), now, HOURS)
    return page(request, "overview.html", title="Overview", admin=admin, now=now, health=verdict,
                jobs=health.queue_depth(), daemons=health.daemons(settings, now),
                chart=bars, queued_due=queued_due(now),
                oldest_due=health.oldest_queued_age(now, due_only=True),
                tick_seconds=settings.tick_seconds, daily=daily_work())


def attempts_by_hour(since: datetime.datetime) -> dict[datetime.datetime, tuple[int, int]]:
    """Provisioning log rows (attempts and product steps, as ``/metrics`` counts them) started
    since ``since``, by clock hour: hour -> (rows, failed rows). One grouped query."""
    log = ProvisioningLog
    hour = hour_of(log.started_at)
    failed = pw.fn.SUM(pw.Case(None, [(log.status.in_(FAILED_STATUSES), 1)], 0))
    rows = (log.select(hour, pw.fn.COUNT(log.id), failed)
            .where(log.started_at >= since).group_by(hour).tuples())
    return {_as_datetime(start): (int(n), int(bad or 0)) for start, n, bad in rows}


def hour_of(field: pw.Field) -> pw.Node:
    """The start of the hour a time column falls in, computed by the database: ``date_trunc``
    on PostgreSQL; on SQLite, which keeps times as ISO text, its own ``strftime`` (peewee's
    ``truncate`` there calls a Python function per row, three times slower on a busy day)."""
    if db.is_postgres():
        return pw.fn.date_trunc(pw.SQL("'hour'"), field)
    return pw.fn.strftime("%Y-%m-%d %H:00:00", field)


def _as_datetime(value) -> datetime.datetime:
    """PostgreSQL gives a datetime, SQLite 'YYYY-MM-DD HH:00:00'."""
    return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)


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
