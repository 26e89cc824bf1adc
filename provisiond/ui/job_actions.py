"""The console's decisions about jobs, posted from every page that lists them: retry, cancel,
resolve one job (``/ui/jobs/{id}/retry|cancel|resolve``) or retry / cancel / resolve the
ticked ones (``/ui/jobs/bulk``).

Each calls exactly what the API's routes call (``lifecycle.retry_job``, ``outcomes.cancel``,
``outcomes.resolve``), so a job moves the same way whichever face asked. A state that does not
allow the action (a running job retried, a job that no longer exists) is not an error page: the
admin is sent back where they were (the form's ``next``, a console path only) with a message
saying what was done and what was refused and why. A bulk action acts on each job on its own,
so one refusal spares the others. Retries and cancels by hand are audited under the signed-in
token (``ui:NAME``), as resolve is, so a service's timeline shows who decided.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form

from provisiond import audit, lifecycle, outcomes
from provisiond.api.base import Context, JobId, context
from provisiond.errors import NotFound, StateError, ValidationError
from provisiond.models import JobStatus
from provisiond.ui import session
from provisiond.ui.render import redirect

router = APIRouter()
Ctx = Annotated[Context, Depends(context)]
Next = Annotated[str, Form(max_length=2000)]

BULK_MOST = 500      # more than a page of the Needs-you list, fewer than a runaway form
REFUSALS_SHOWN = 5   # a flash is short; the rest are counted


def retry(job_id: int, ctx: Context, actor: str) -> str:
    lifecycle.retry_job(job_id, ctx.settings.retry_max_attempts, actor=actor)
    return "queued again"


def cancel(job_id: int, ctx: Context, actor: str) -> str:
    job = outcomes.cancel(job_id, ctx.settings)
    audit.record(actor, "job.cancel", f"job:{job_id}", job_action=job.action, status=job.status)
    return "cancelled" if job.status == JobStatus.CANCELLED.value else "asked to stop (it is running)"


def resolver(outcome: str, note: str | None):
    """Resolve as ``outcome`` (succeeded or failed): what the admin found on the panel."""
    def resolve(job_id: int, ctx: Context, actor: str) -> str:
        outcomes.resolve(job_id, outcome == "succeeded", actor=actor, note=note, settings=ctx.settings,
                         vault=ctx.vault)
        return f"resolved as {outcome}"
    return resolve


# What each bulk choice does: (a factory of its action, given the form's outcome and note, which
# only resolve takes; the verb its refusals are listed under).
ACTIONS = {"retry": (lambda outcome, note: retry, "retried"),
           "cancel": (lambda outcome, note: cancel, "cancelled"),
           "resolve": (resolver, "resolved")}
OUTCOMES = ("succeeded", "failed")


def refusal(exc: Exception) -> str:
    """Why one job was refused, as a sentence: 'Job 9 is running; only failed, ...'."""
    text = str(exc)
    return text[:1].upper() + text[1:]


def counted(n: int, done: str) -> str:
    return f"{n} job{'' if n == 1 else 's'} {done}" if n else f"No job {done}"


@router.post("/jobs/{job_id}/retry")
@session.with_admin
def retry_one(job_id: JobId, admin: session.CheckedDep, ctx: Ctx, next: Next = "/ui/"):
    """Queue a failed, cancelled or held job again, with fresh attempts."""
    return act(job_id, retry, ctx, admin, next)


@router.post("/jobs/{job_id}/cancel")
@session.with_admin
def cancel_one(job_id: JobId, admin: session.CheckedDep, ctx: Ctx, next: Next = "/ui/"):
    """Cancel a queued job at once, or ask a running one to stop."""
    return act(job_id, cancel, ctx, admin, next)


def act(job_id: int, action, ctx: Context, admin: session.Admin, next: str):
    try:
        flash = f"Job {job_id} {action(job_id, ctx, admin.actor)}"
    except (StateError, NotFound) as exc:
        flash = refusal(exc)
    return redirect(session.safe_next(next), flash=flash)


@router.post("/jobs/{job_id}/resolve")
@session.with_admin
def resolve_one(job_id: JobId, admin: session.CheckedDep, ctx: Ctx, next: Next = "/ui/",
                outcome: Annotated[str, Form(max_length=20)] = "", note: Annotated[str, Form()] = ""):
    """End a needs_attention job as the panel shows it (succeeded or failed); audited with the
    admin's token name as the actor."""
    if outcome not in ("succeeded", "failed"):
        return redirect(session.safe_next(next), flash="Outcome: choose succeeded or failed; nothing was done.")
    try:
        outcomes.resolve(job_id, outcome == "succeeded", actor=admin.actor, note=note.strip() or None,
                         settings=ctx.settings, vault=ctx.vault)
        flash = f"Job {job_id} resolved as {outcome}"
    except (StateError, NotFound) as exc:
        flash = refusal(exc)
    except ValidationError as exc:
        flash = f"{exc.field.capitalize()}: {exc.message}; nothing was done."
    return redirect(session.safe_next(next), flash=flash)


@router.post("/jobs/bulk")
@session.with_admin
def bulk(admin: session.CheckedDep, ctx: Ctx, next: Next = "/ui/",
         job: Annotated[list[str], Form()] = [], do: Annotated[str, Form(max_length=20)] = "",
         outcome: Annotated[str, Form(max_length=20)] = "", note: Annotated[str, Form()] = ""):
    """Retry, cancel or resolve (as ``outcome``, with one ``note`` for all) each ticked job on
    its own; the message counts what was done and names each job refused, with why."""
    back = session.safe_next(next)
    if do not in ACTIONS:
        return redirect(back, flash="Do: choose retry, cancel or resolve; nothing was done.")
    if do == "resolve" and outcome not in OUTCOMES:
        return redirect(back, flash="Outcome: choose succeeded or failed; nothing was done.")
    ids, problem = job_ids(job)
    if problem:
        return redirect(back, flash=problem)
    make, verb = ACTIONS[do]
    action = make(outcome, note.strip() or None)
    done, refused = [], []
    for job_id in ids:
        try:
            done.append(action(job_id, ctx, admin.actor))
        except (StateError, NotFound) as exc:
            refused.append(str(exc).split(";")[0])
        except ValidationError as exc:
            return redirect(back, flash=f"{exc.field.capitalize()}: {exc.message}; nothing more was done.")
    return redirect(back, flash=bulk_message(do, done, refused, verb))


def job_ids(values: list[str]) -> tuple[list[int], str]:
    """The ticked jobs' ids, each once and in order; or a message naming the bad value."""
    if not values:
        return [], "No job was ticked; nothing was done."
    if len(values) > BULK_MOST:
        return [], f"Job: at most {BULK_MOST} jobs at once; nothing was done."
    ids: list[int] = []
    for value in values:
        if not value.isdigit() or not 1 <= int(value) <= 2**31 - 1:
            return [], f"Job: {value[:20]!r} is not a job number; nothing was done."
        if int(value) not in ids:
            ids.append(int(value))
    return ids, ""


def bulk_message(do: str, done: list[str], refused: list[str], verb: str) -> str:
    """'3 jobs queued again; not retried: job 9 is running'."""
    if do == "retry":
        parts = [counted(len(done), "queued again")]
    elif do == "resolve":
        parts = [counted(len(done), done[0] if done else "resolved")]
    else:
        stopping = sum(1 for d in done if d != "cancelled")
        parts = [counted(len(done) - stopping, "cancelled")]
        if stopping:
            parts.append(f"{counted(stopping, 'asked to stop')} (running)")
    if refused:
        shown = ", ".join(refused[:REFUSALS_SHOWN])
        more = len(refused) - REFUSALS_SHOWN
        parts.append(f"not {verb}: {shown}" + (f" and {more} more" if more > 0 else ""))
    return "; ".join(parts)

