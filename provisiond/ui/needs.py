"""``/ui/``, Needs you: the console's home page, the queue of what an admin must decide.

Failed and needs_attention jobs, the most recently stopped first, each with what an admin reads
first: the task that failed and the first line of the panel's own answer (from the job's latest
attempt), and how long it has been waiting; counts by server and by panel, so a server that is
down shows as one cause rather than fifty rows; and the queued jobs waiting for a later attempt
(backing off after a transient failure), with when the next one is due.

A page costs a fixed number of queries whatever its length: the page's jobs with their service
and server, their latest attempts in one query, the counts, the scheduled jobs.
"""

from __future__ import annotations

from typing import Annotated

import peewee as pw
from fastapi import APIRouter, Query, Request

from provisiond.models import Job, JobStatus, ProvisioningLog, Server, Service, utcnow
from provisiond.ui import session
from provisiond.ui.render import page

router = APIRouter()

NEEDS = (JobStatus.FAILED.value, JobStatus.NEEDS_ATTENTION.value)
PAGE_SIZE = 100
SCHEDULED_SHOWN = 100


@router.get("/")
@session.with_admin
def needs_you(request: Request, admin: session.AdminDep,
              page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1):
    jobs = needing(page_number)
    by_server, by_panel = counts()
    total = sum(n for _, n in by_server)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return page(request, "needs.html", title="Needs you", admin=admin, jobs=jobs,
                latest=latest_attempts([j.id for j in jobs]), total=total, page_number=page_number,
                pages=max(1, -(-total // PAGE_SIZE)), by_server=by_server, by_panel=by_panel,
                scheduled=scheduled(), here=here)


def needing(page_number: int) -> list[Job]:
    """One page of the failed and held jobs with their service and server, newest first.

    The page's ids are chosen first, from the job table alone, and only those rows are joined:
    sorting thousands of failed jobs joined to their services would cost more than the page."""
    newest = (Job.updated_at.desc(), Job.id.desc())
    ids = [job.id for job in Job.select(Job.id).where(Job.status.in_(NEEDS))
           .order_by(*newest).paginate(page_number, PAGE_SIZE)]
    if not ids:
        return []
    return list(Job.select(Job, Service, Server)
                .join(Service, pw.JOIN.LEFT_OUTER, on=(Job.service == Service.id)).switch(Job)
                .join(Server, pw.JOIN.LEFT_OUTER, on=(Job.server == Server.id))
                .where(Job.id.in_(ids)).order_by(*newest))


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
    """How many jobs need an admin, by server and by panel, most first: counted on the job
    table alone, then named from the few servers concerned."""
    per_server = dict(Job.select(Job.server, pw.fn.COUNT(Job.id)).where(Job.status.in_(NEEDS))
                      .group_by(Job.server).tuples())
    servers = {s.id: s for s in Server.select(Server.id, Server.name, Server.panel)
               .where(Server.id.in_([i for i in per_server if i is not None]))}
    by_server: dict[str, int] = {}
    by_panel: dict[str, int] = {}
    for server_id, n in per_server.items():
        server = servers.get(server_id)
        name, panel = (server.name, server.panel) if server else ("(no server)", "(no server)")
        by_server[name] = by_server.get(name, 0) + n
        by_panel[panel] = by_panel.get(panel, 0) + n
    return most_first(by_server), most_first(by_panel)


def most_first(counted: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counted.items(), key=lambda item: (-item[1], item[0]))


def scheduled():
    """Queued jobs whose next attempt is set later than now, the soonest first."""
    return list(Job.select(Job, Service)
                .join(Service, pw.JOIN.LEFT_OUTER, on=(Job.service == Service.id))
                .where((Job.status == JobStatus.QUEUED.value) & (Job.run_after > utcnow()))
                .order_by(Job.run_after, Job.id).limit(SCHEDULED_SHOWN))
