"""`provisiond job` and `provisiond log`: the queue's jobs and each attempt's record."""

from __future__ import annotations

import json

from provisiond import audit, lifecycle, outcomes, queue
from provisiond.cli.base import Runtime, command, fields, job_view, log_view, positive, table
from provisiond.models import Job, JobStatus, ProvisioningLog


@command("job list")
def cmd_job_list(rt: Runtime, args) -> int:
    rt.open_db()
    query = Job.select().order_by(Job.id.desc()).limit(args.limit)
    if args.status:
        query = query.where(Job.status == args.status)
    rows = [job_view(j) for j in query]
    rt.out(rows, lambda r: table(r, ["id", "action", "status", "service", "server", "attempts", "last_error"]))
    return 0


@command("job show")
def cmd_job_show(rt: Runtime, args) -> int:
    rt.open_db()
    job = queue.get(args.job)
    rt.out(job_view(job), fields)
    return 0


@command("job retry")
def cmd_job_retry(rt: Runtime, args) -> int:
    rt.open_db()
    job = lifecycle.retry_job(args.job, rt.settings.retry_max_attempts, actor=audit.cli_actor())
    rt.out(job_view(job), lambda v: f"job {v['id']} queued again")
    return 0


@command("job cancel")
def cmd_job_cancel(rt: Runtime, args) -> int:
    rt.open_db()
    job = outcomes.cancel(args.job, rt.settings)
    rt.out(job_view(job), lambda v: f"job {v['id']} " + (
        "cancelled" if v["status"] == "cancelled" else "asked to stop (it is running)"))
    return 0


@command("job resolve")
def cmd_job_resolve(rt: Runtime, args) -> int:
    rt.open_db()
    job = outcomes.resolve(args.job, args.succeeded, actor=audit.cli_actor(), note=args.note,
                           settings=rt.settings, vault=rt.vault)
    rt.out(job_view(job), lambda v: f"job {v['id']} resolved as {v['status']}")
    return 0


def _compact(answer) -> str:
    return answer if isinstance(answer, str) else json.dumps(answer)


@command("log show")
def cmd_log_show(rt: Runtime, args) -> int:
    rt.open_db()
    job = queue.get(args.job)
    rows = [log_view(r) for r in job.logs.order_by(ProvisioningLog.attempt, ProvisioningLog.id)]

    def text(rows):
        if not rows:
            return f"job {job.id} has no attempts yet ({job.status})"
        parts = []
        for r in rows:
            head = (f"attempt {r['attempt']}: {r['status']} ({r['action']} on {r['panel']}, rc {r['rc']}, "
                    f"{r['duration']}s, {r['started_at']:%Y-%m-%d %H:%M:%S} UTC)")
            body = [f"  failed task:  {r['failed_task']}" if r["failed_task"] else None,
                    f"  playbooks:    {r['playbook_folder']}" if r["playbook_folder"] else None,
                    f"  message:      {r['message']}" if r["message"] else None,
                    (f"  panel answer: {_compact(r['panel_answer'])}"
                     if r["panel_answer"] and r["status"] != "succeeded" else None),
                    f"  artifacts:    {r['artifacts']}" if r["artifacts"] else None]
            if r["stdout_excerpt"] and r["status"] != "succeeded":
                body.append("  stdout:\n" + "\n".join("    " + line for line in r["stdout_excerpt"].splitlines()[-25:]))
            parts.append("\n".join([head, *[b for b in body if b]]))
        return "\n\n".join(parts)
    rt.out(rows, text)
    return 0


def add_parsers(sub, group, top) -> None:
    jg = group("job", "jobs")
    p = sub(jg, "list", "list jobs, newest first")
    p.add_argument("--status", choices=[s.value for s in JobStatus], help="only jobs in this state")
    p.add_argument("--limit", type=positive, default=50, help="jobs shown at most (default 50)")
    for name, help_text in (("show", "show a job"), ("retry", "queue a failed job again"),
                            ("cancel", "cancel a queued job or stop a running one")):
        sub(jg, name, help_text).add_argument("job", type=int, help="the job's id")
    p = sub(jg, "resolve", "end a needs_attention job as you found it on the panel; the service "
                           "moves on as that outcome would")
    p.add_argument("job", type=int, help="the job's id")
    outcome = p.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--succeeded", action="store_true", help="the panel shows the action done")
    outcome.add_argument("--failed", dest="succeeded", action="store_false",
                         help="the panel shows the action not done")
    p.add_argument("--note", metavar="TEXT", help="what you found (kept in the audit trail)")

    lg = group("log", "provisioning log")
    p = sub(lg, "show", "attempt history of a job")
    p.add_argument("job", type=int, help="the job's id")
