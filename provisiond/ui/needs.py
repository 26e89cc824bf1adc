"""``/ui/``, Needs you: the console's home page, the queue of what an admin must decide.

Failed and needs_attention jobs, the most recently stopped first, each with what an admin reads
first: the task that failed and the first line of the panel's own answer (from the job's latest
attempt), and how long it has been waiting; counts by server and by panel, so a server that is
down shows as one cause rather than fifty rows; and the queued jobs waiting for a later attempt
(backing off after a transient failure), with when the next one is due.

A page costs a fixed number of queries whatever its length: the jobs with their service and
server, their latest attempts in one query, the counts in one, the scheduled jobs in one.
"""

from __future__ import annotations

from typing import Annotated

import peewee as pw
from fastapi import APIRouter, Query, Request

from provisiond.api.base import with_db
from provisiond.models import Job, JobStatus, ProvisioningLog, Server, Service, utcnow
from provisiond.ui import session
from provisiond.ui.render import page

router = APIRouter()

NEEDS = (JobStatus.FAILED.value, JobStatus.NEEDS_ATTENTION.value)
PAGE_SIZE = 100
SCHEDULED_SHOWN = 100


@router.get("/")
@with_db
def needs_you(request: Request, admin: session.AdminDep,
              page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1):
    jobs = list(needing(page_number))
    total = Job.select().where(Job.status.in_(NEEDS)).count()
    by_server, by_panel = counts()
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return page(request, "needs.html", title="Needs you", admin=admin, jobs=jobs,
                latest=latest_attempts([j.id for j in jobs]), total=total, page_number=page_number,
                pages=max(1, -(-total // PAGE_SIZE)), by_server=by_server, by_panel=by_panel,
                scheduled=scheduled(), here=here, now=utcnow())


def needing(page_number: int):
    """One page of the failed and held jobs with their service and server, newest first."""
    return (Job.select(Job, Service, Server)
            .join(Service, pw.JOIN.LEFT_OUTER, on=(Job.service == Service.id)).switch(Job)
            .join(Server, pw.JOIN.LEFT_OUTER, on=(Job.server == Server.id))
            .where(Job.status.in_(NEEDS))
            .order_by(Job.updated_at.desc(), Job.id.desc())
            .paginate(page_number, PAGE_SIZE))


def latest_attempts(job_ids: list[int]) -> dict[int, ProvisioningLog]:
    """The latest log row of each job, by job id: one query for the whole page."""
    if not job_ids:
        return {}
    newest = (ProvisioningLog.select(pw.fn.MAX(ProvisioningLog.id))
              .where(ProvisioningLog.job.in_(job_ids)).group_by(ProvisioningLog.job))
    rows = ProvisioningLog.select(ProvisioningLog.id, ProvisioningLog.job, ProvisioningLog.panel,
                                  ProvisioningLog.failed_task, ProvisioningLog.panel_answer,
                                  ProvisioningLog.message).where(ProvisioningLog.id.in_(newest))
    return {row.job_id: row for row in rows}


def counts() -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """How many jobs need an admin, by server and by panel, most first (one query)."""
    rows = (Job.select(Server.name, Server.panel, pw.fn.COUNT(Job.id).alias("n"))
            .join(Server, pw.JOIN.LEFT_OUTER, on=(Job.server == Server.id))
            .where(Job.status.in_(NEEDS)).group_by(Server.name, Server.panel).tuples())
    by_server: dict[str, int] = {}
    by_panel: dict[str, int] = {}
    for name, panel, n in rows:
        by_server[name or "(no server)"] = by_server.get(name or "(no server)", 0) + n
        by_panel[panel or "(no server)"] = by_panel.get(panel or "(no server)", 0) + n
    return most_first(by_server), most_first(by_panel)


def most_first(counted: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counted.items(), key=lambda item: (-item[1], item[0]))


def scheduled():
    """Queued jobs whose next attempt is set later than now, the soonest first."""
    return list(Job.select(Job, Service)
                .join(Service, pw.JOIN.LEFT_OUTER, on=(Job.service == Service.id))
                .where((Job.status == JobStatus.QUEUED.value) & (Job.run_after > utcnow()))
                .order_by(Job.run_after, Job.id).limit(SCHEDULED_SHOWN))
