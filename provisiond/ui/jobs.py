"""``/ui/jobs/{id}``: why a job failed, in seconds.

The page leads with what an admin needs first and AWX's job output page does not give: the
chosen attempt's failing task and the panel's own answer (pretty-printed when it is JSON). The
play/task tree, the coloured stdout and the artifacts' download follow, each cut to this job's
inventory host (``runs``), so a batch neighbour's host, events or output never show here.

The attempts make a timeline; the chosen one (``?attempt=N``) defaults to the latest failed
attempt, else the latest. A product's extra steps (log rows of action ``create:<step>``) are
shown as part of the attempt they ran in. The retry, cancel and resolve forms shown are the
ones the job's status allows; other routes answer them.

``GET /ui/attempts/{log_id}/artifacts`` is the download: a .tar.gz of this job's part of the
run (``runs.artifact_bundle``).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from provisiond import runs
from provisiond.api.base import MAX_ID
from provisiond.models import Job, JobStatus, ProvisioningLog, utcnow
from provisiond.ui import session
from provisiond.ui.render import page

router = APIRouter()

# A log status that means the attempt did not do what it was asked (worker._settle's statuses).
FAILED_STATUSES = frozenset({"failed", "retrying", "timeout", "needs_attention", "error"})
# Which forms the job's status allows (queue.retry, queue.cancel, queue.resolve decide again).
ACTIONS = {
    "retry": frozenset({JobStatus.FAILED.value, JobStatus.CANCELLED.value, JobStatus.NEEDS_ATTENTION.value}),
    "cancel": frozenset({JobStatus.QUEUED.value, JobStatus.RUNNING.value}),
    "resolve": frozenset({JobStatus.NEEDS_ATTENTION.value}),
}


@dataclasses.dataclass
class Attempt:
    """One attempt of a job: its run's log row (``main``) and its product steps' rows."""

    number: int
    main: ProvisioningLog
    steps: list[ProvisioningLog]

    @property
    def failed(self) -> bool:
        return self.main.status in FAILED_STATUSES or any(s.status in FAILED_STATUSES for s in self.steps)

    @property
    def failed_task(self) -> str | None:
        """The task that failed: the run's, else the first failed step's."""
        return self.main.failed_task or next((s.failed_task for s in self.steps if s.failed_task), None)


def group_attempts(rows: list[ProvisioningLog]) -> list[Attempt]:
    """The log rows of a job (oldest first) as attempts, oldest first. A step row (action
    ``create:<step>``) joins the attempt of its number; an attempt with steps only is led by its
    first step."""
    attempts: dict[int, Attempt] = {}
    for row in rows:
        step = ":" in row.action
        found = attempts.get(row.attempt)
        if found is None:
            attempts[row.attempt] = Attempt(row.attempt, row, [])
        elif step:
            found.steps.append(row)
        elif ":" in found.main.action:  # the run's row came after a step's
            found.steps.insert(0, found.main)
            found.main = row
        else:
            found.main = row  # a later row of the same attempt tells how it ended
    return list(attempts.values())


def choose(attempts: list[Attempt], wanted: int | None) -> Attempt | None:
    """The attempt asked for, else the latest failed one, else the latest (None: no attempt yet)."""
    if wanted is not None:
        return next((a for a in attempts if a.number == wanted), None)
    return next((a for a in reversed(attempts) if a.failed), attempts[-1] if attempts else None)


def number(text: str | None) -> int | None:
    """A database id or attempt number from the address; None when it is not one."""
    if text is None or not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        return None
    return int(text)


def not_found(request: Request, admin: session.Admin, message: str) -> Response:
    return page(request, "error.html", status_code=404, title="Not found", admin=admin, message=message)


@router.get("/jobs/{job_id}")
@session.with_admin
def job_page(request: Request, job_id: str, admin: session.AdminDep,
             attempt: Annotated[str | None, Query(max_length=12)] = None):
    found = number(job_id)
    job = Job.get_or_none(Job.id == found) if found else None
    if job is None:
        return not_found(request, admin, f"There is no job {job_id[:40]}.")
    attempts = group_attempts(runs.attempts_of(job.id))
    wanted = number(attempt)
    if attempt and wanted is None:
        return not_found(request, admin, f"Job {job.id} has no attempt {attempt[:12]}.")
    chosen = choose(attempts, wanted)
    if wanted is not None and chosen is None:
        return not_found(request, admin, f"Job {job.id} has no attempt {wanted}.")
    now = utcnow()
    detail = {}
    if chosen is not None:
        detail = {"tree": runs.task_tree(chosen.main.id), "stdout": runs.stdout_of(chosen.main.id, "html")}
    return page(request, "job.html", title=f"Job {job.id}", admin=admin, job=job,
                service=job.service if job.service_id else None,
                server=job.server if job.server_id else None, attempts=attempts, chosen=chosen,
                allowed={name for name, statuses in ACTIONS.items() if job.status in statuses},
                waiting=job.status == JobStatus.QUEUED.value and job.run_after > now, now=now, **detail)


@router.get("/attempts/{log_id}/artifacts")
@session.with_admin
def artifacts(request: Request, log_id: str, admin: session.AdminDep):
    found = number(log_id)
    log = ProvisioningLog.get_or_none(ProvisioningLog.id == found) if found else None
    if log is None:
        return not_found(request, admin, f"There is no attempt {log_id[:40]}.")
    name, body = runs.artifact_bundle(log)
    return Response(body, media_type="application/gzip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
