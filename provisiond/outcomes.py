"""Every way a job ends, through one path, so the service, alerts and webhooks cannot diverge.

    run outcome (worker) ─────────┐
    refusal (worker) ─────────────┤
    reap (lease expired) ─────────┼─▶ ended(job, status, message) ─▶ service status, last_error,
    cancel (admin) ───────────────┤                                  admin alert, billing webhook
    resolve (admin, held job) ────┘

queue.py moves the Job row (it is the only writer of jobs); ``ended`` then moves the job's
service, in the same transaction: a success as ``lifecycle.apply_success``, a final failure
as ``lifecycle.apply_failure`` (a create that failed for good fails the service, alerts an
admin once and posts ``service.failed``), a held job alerts an admin, a cancel says on the
service what is left to do. The operations here (``reap``, ``cancel``, ``resolve``) are the
faces' and the daemon's way to end jobs.
"""

from __future__ import annotations

import datetime
from typing import Any

from provisiond import audit, lifecycle, notify, queue
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import ValidationError
from provisiond.models import Job, JobStatus, Service, ServiceStatus, database, utcnow

SUCCEEDED, FAILED = JobStatus.SUCCEEDED.value, JobStatus.FAILED.value
CANCELLED, HELD, QUEUED = JobStatus.CANCELLED.value, JobStatus.NEEDS_ATTENTION.value, JobStatus.QUEUED.value
NOTE_CHARS = 1000


def ended(job: Job, status: str, message: str | None, *, settings: Settings | None = None,
          vault: Vault | None = None, reported: dict | None = None) -> None:
    """Move the job's service on after queue.py settled ``job`` as ``status``.

    Call it inside the transaction that settled the job. ``status`` is the job's new status
    (``queued`` when it waits for another attempt); ``reported`` is what the playbook reported.
    """
    if status == SUCCEEDED:
        lifecycle.apply_success(job, reported or {}, vault, settings=settings)
    elif status == FAILED:
        lifecycle.apply_failure(job, message or "failed", final=True, settings=settings)
    elif status == HELD:
        _alert_held(job, message or "", settings)
        lifecycle.apply_failure(job, message or "", final=False)
    elif status == CANCELLED:
        _cancelled(job, message or "cancelled")
    else:
        lifecycle.apply_failure(job, message or "", final=False)


def _alert_held(job: Job, message: str, settings: Settings | None) -> None:
    if settings is None:
        return
    notify.alert(settings, f"provisiond: job {job.id} ({job.action}) needs a human",
                 f"Job {job.id} stopped without acting: {message}\n"
                 f"See `provisiond log show {job.id}`; then `provisiond job retry {job.id}`, or, "
                 f"once you checked the panel, `provisiond job resolve {job.id} --succeeded|--failed`.",
                 f"job:{job.id}:needs_attention:{job.attempts}")


def _cancelled(job: Job, message: str) -> None:
    """A cancelled job leaves its service as it was; a service whose create was cancelled
    says how to go on (it holds no account that provisiond made)."""
    lifecycle.apply_failure(job, message, final=False)
    if job.action == "create" and job.service_id is not None:
        ref = Service.get_by_id(job.service_id).ref
        Service.update(pending_reason=f"create job {job.id} was cancelled; `provisiond service close "
                                      f"{ref}` ends the service, `provisiond job retry {job.id}` "
                                      "creates it after all").where(
            (Service.id == job.service_id) & (Service.status == ServiceStatus.PENDING.value)).execute()


# -- the ways to end jobs --------------------------------------------------------------------

def reap(settings: Settings | None = None) -> list[int]:
    """Reap jobs whose lease ran out (database clock); each one's service moves with it."""
    return queue.reap(on_end=lambda job, status, error: ended(job, status, error, settings=settings))


def cancel(job_id: int, settings: Settings | None = None, now: datetime.datetime | None = None) -> Job:
    """Cancel a queued job at once (its service moves now), or ask a running one to stop (its
    service moves when the worker or the reaper ends it)."""
    with database.atomic():
        job = queue.cancel(job_id, now or utcnow())
        if job.status == CANCELLED:
            ended(job, CANCELLED, job.last_error, settings=settings)
    return job


def resolve(job_id: int, succeeded: bool, *, actor: str, note: str | None = None,
            settings: Settings | None = None, vault: Vault | None = None) -> Job:
    """An admin checked the panel and says how a held (needs_attention) job ended.

    The job becomes succeeded or failed and its service moves on exactly as that outcome of a
    run would move it (status, alert, billing webhook); the decision is audited.
    """
    if note is not None and (len(note) > NOTE_CHARS or "\x00" in note):
        raise ValidationError("note", f"must be at most {NOTE_CHARS} characters, without NUL bytes")
    now = utcnow()
    with database.atomic():
        job = queue.resolve(job_id, now, succeeded, note)
        detail: dict[str, Any] = {"outcome": job.status, "job_action": job.action, "attempts": job.attempts}
        if note:
            detail["note"] = note
        if job.service_id is not None:
            detail["service"] = Service.get_by_id(job.service_id).ref
        audit.record(actor, "job.resolve", f"job:{job.id}", **detail)
        ended(job, job.status, job.last_error, settings=settings, vault=vault)
    return queue.get(job_id)
