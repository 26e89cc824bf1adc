"""Routes of a job's attempts: what each run did for that job only, its task events, its stdout
and (an admin token) its artifacts; a billing system reads them to say what happened to an
order. The data comes from ``provisiond.runs``, as the console's job page does."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse, Response

from provisiond import ansi, queue, runs
from provisiond.api.base import FORBIDDEN, INVALID, MAX_ID, NOT_FOUND, JobId, require_admin, with_db
from provisiond.api.schemas import AttemptList, EventPage
from provisiond.models import ProvisioningLog

router = APIRouter(tags=["attempts"])
AttemptId = Annotated[int, Path(ge=1, le=MAX_ID, description="an attempt's id, from /v1/jobs/{id}/attempts")]
EventStatus = Literal["ok", "changed", "failed", "skipped", "unreachable", "ignored"]
MEDIA = {"txt": "text/plain; charset=utf-8", "ansi": "text/plain; charset=utf-8",
         "html": "text/html; charset=utf-8"}
# An HTML fragment served by the API is never a page: no script, style or frame may run in it.
FRAGMENT_HEADERS = {"Content-Security-Policy": "default-src 'none'; sandbox", "X-Content-Type-Options": "nosniff"}


def attempt_view(log: ProvisioningLog) -> dict:
    return {"id": log.id, "job_id": log.job_id, "attempt": log.attempt, "action": log.action,
            "status": log.status, "panel": log.panel, "rc": log.rc, "started_at": log.started_at,
            "finished_at": log.finished_at, "duration": log.duration, "failed_task": log.failed_task,
            "message": log.message, "panel_answer": runs.answer_of(log)}


@router.get("/jobs/{job_id}/attempts", response_model=AttemptList, responses={**NOT_FOUND, **INVALID})
@with_db
def list_attempts(job_id: JobId):
    """The job's attempts, oldest first, and its product's extra steps (``create:<step>``)."""
    queue.get(job_id)
    return {"job_id": job_id, "attempts": [attempt_view(log) for log in runs.attempts_of(job_id)]}


@router.get("/attempts/{attempt_id}/events", response_model=EventPage, responses={**NOT_FOUND, **INVALID})
@with_db
def list_events(attempt_id: AttemptId, status: Annotated[EventStatus | None, Query()] = None,
                task: Annotated[str | None, Query(min_length=1, max_length=1000)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0):
    """The attempt's task results in run order, only its job's (a batch's other jobs never show);
    ``?status=failed`` or ``?task=NAME`` keep those."""
    runs.get_attempt(attempt_id)
    events = runs.events_of(attempt_id, status=status, task=task)
    page = [{"seq": e.seq, "event": e.event, "play": e.play, "task": e.task, "status": e.status,
             "started_at": e.started_at, "duration": e.duration, "stdout": ansi.strip(e.stdout) or None,
             "detail": e.detail} for e in events[offset:offset + limit]]
    return {"attempt_id": attempt_id, "events": page, "total": len(events), "limit": limit, "offset": offset}


@router.get("/attempts/{attempt_id}/stdout", response_class=PlainTextResponse,
            responses={200: {"description": "the output", "content": {"text/plain": {}, "text/html": {}}},
                       **NOT_FOUND, **INVALID})
@with_db
def show_stdout(attempt_id: AttemptId, format: Annotated[Literal["txt", "ansi", "html"], Query(
        description="txt: plain text; ansi: with Ansible's colour codes; html: an escaped HTML "
                    "fragment, colours as <span class=\"ansi-31\">")] = "txt"):
    """What the run printed for this attempt's job: the play and task headers and its own results."""
    runs.get_attempt(attempt_id)
    text = runs.stdout_of(attempt_id, format)
    return Response(str(text), media_type=MEDIA[format],
                    headers=FRAGMENT_HEADERS if format == "html" else {"X-Content-Type-Options": "nosniff"})


@router.get("/attempts/{attempt_id}/artifacts", response_class=Response, dependencies=[Depends(require_admin)],
            responses={200: {"description": "a .tar.gz of this job's part of the run",
                             "content": {"application/gzip": {}}}, **NOT_FOUND, **FORBIDDEN, **INVALID})
@with_db
def download_artifacts(attempt_id: AttemptId):
    """The attempt's record, events, stdout and kept artifact, for this job only (never the
    batch's other jobs)."""
    name, body = runs.artifact_bundle(runs.get_attempt(attempt_id))
    return Response(body, media_type="application/gzip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
