"""Routes of jobs and the queue: see (a billing token), retry, cancel and resolve (an admin
token) what the daemon runs."""

from __future__ import annotations

import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from provisiond import health as daemon_health
from provisiond import lifecycle, listing, outcomes, queue
from provisiond.api.base import (CONFLICT, FORBIDDEN, INVALID, MAX_ID, NOT_FOUND, Context, JobId, context,
                                 job_view, query_errors, require_admin, with_db)
from provisiond.api.schemas import REF_PATTERN, JobOut, JobPage, QueueStats, ResolveIn
from provisiond.models import ApiToken, JobStatus, utcnow

router = APIRouter(tags=["jobs"])
Ctx = Annotated[Context, Depends(context)]


@router.get("/jobs", response_model=JobPage, responses=INVALID)
@with_db
def list_jobs(status: Annotated[JobStatus | None, Query()] = None,
              service: Annotated[str | None, Query(min_length=1, max_length=100, pattern=REF_PATTERN,
                                                   description="a service's billing reference")] = None,
              limit: Annotated[int, Query(ge=1, le=listing.MAX_LIMIT)] = 50,
              offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0):
    """Jobs, newest first; ``?status=failed`` lists the failed ones, ``?service=REF`` those
    of one service (422 naming ``service`` when no service has that reference)."""
    with query_errors():
        rows, total = listing.jobs(service=service, status=status and status.value, limit=limit, offset=offset)
    return {"jobs": [job_view(j) for j in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/jobs/{job_id}", response_model=JobOut, responses={**NOT_FOUND, **INVALID})
@with_db
def show_job(job_id: JobId):
    return job_view(queue.get(job_id))


ADMIN_JOB_RESPONSES = {**NOT_FOUND, **CONFLICT, **FORBIDDEN, **INVALID}


@router.post("/jobs/{job_id}/retry", status_code=202, response_model=JobOut,
             responses=ADMIN_JOB_RESPONSES)
@with_db
def retry_job(job_id: JobId, ctx: Ctx, token: Annotated[ApiToken, Depends(require_admin)]):
    """Queue a failed, cancelled or held job again, with fresh attempts. Audited."""
    return job_view(lifecycle.retry_job(job_id, ctx.settings.retry_max_attempts, actor=f"api:{token.name}"))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, responses=ADMIN_JOB_RESPONSES,
             dependencies=[Depends(require_admin)])
@with_db
def cancel_job(job_id: JobId, ctx: Ctx):
    """Cancel a queued job at once, or ask a running one to stop."""
    return job_view(outcomes.cancel(job_id, ctx.settings))


@router.post("/jobs/{job_id}/resolve", response_model=JobOut, responses=ADMIN_JOB_RESPONSES)
@with_db
def resolve_job(job_id: JobId, body: ResolveIn, ctx: Ctx, token: Annotated[ApiToken, Depends(require_admin)]):
    """End a needs_attention job as the panel shows it; the service moves on as that
    outcome of a run would (status, alert, billing webhook). Audited."""
    return job_view(outcomes.resolve(job_id, body.outcome == "succeeded", actor=f"api:{token.name}",
                                     note=body.note, settings=ctx.settings, vault=ctx.vault))


def queue_stats(now: datetime.datetime) -> dict:
    counts = daemon_health.queue_depth()
    return {"counts": counts, "queued": counts[JobStatus.QUEUED.value],
            "running": counts[JobStatus.RUNNING.value],
            "oldest_queued_age_seconds": daemon_health.oldest_queued_age(now)}


@router.get("/queue/stats", response_model=QueueStats)
@with_db
def stats():
    return queue_stats(utcnow())
