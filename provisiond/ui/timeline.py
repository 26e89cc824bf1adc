"""One service's timeline for its console page: everything that happened to it, newest first.

It has no table of its own; it reads what provisiond keeps anyway:

- ``job``: the service's jobs (created, finished, status), the newest ``JOBS`` of them;
- ``attempt``: their runs (``ProvisioningLog`` rows, product steps included);
- ``state``: provisiond records no state change as such, so they are derived here from what
  moves a service (``lifecycle.apply_success`` / ``apply_failure``, ``outcomes.resolve``): a
  succeeded create, suspend, unsuspend or terminate job gives active, suspended, active,
  terminated at its finish; a create that failed for good gives failed. Audit entries add the
  changes made by hand: ``service.close`` (closed), ``sync.accept_panel`` of the status (the
  panel's state taken over) and ``job.retry`` of a failed create, which tells both when the
  create had failed (the retry cleared the job's finish) and that the service is pending again;
- ``notification``: the alerts, client mails and billing webhooks about it (``Notification``
  rows, found by the dedup keys ``notify`` and its callers give them, see ``notification_keys``),
  with their delivery status;
- ``payment``: ``lifecycle.record_payment``'s audit entries (``payment``, ``payment.correct``);
- ``renew``: ``renew.renew``'s audit entries (the new paid-until, the jobs it queued); a move to
  another variant is its ``change_package`` job, whose line names the package and variant;
- ``audit``: every other audit entry about the service or one of its jobs (``job.resolve``,
  ``service.close``, an admin's suspend from the console, ...).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from typing import Any

import peewee as pw

from provisiond import db as dbmod
from provisiond.lifecycle import RESULT_STATUS
from provisiond.models import AuditEntry, Job, JobStatus, Notification, ProvisioningLog, Service, database

JOBS = 100  # a service with more jobs shows its newest ones (the page says so)
CHANNELS = ("email", "webhook")
PAYMENTS = ("payment", "payment.correct")
RENEW = "renew"  # renew.renew's audit action
# Rank among entries of the same instant, the later in the story first once reversed: a job is
# created, runs, moves the service, notifies; an admin's action comes last.
RANK = {"job": 0, "attempt": 1, "state": 2, "notification": 3, "payment": 4, "renew": 4, "audit": 4}
STAMPED = re.compile(r"(\d{14}:)?(email|webhook)")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One line of the timeline: when, which kind (the li's ``data-kind``), the row it shows
    (a Job, ProvisioningLog, Notification or AuditEntry; None for a state change) and, for a
    state change or a notification, what the template needs besides."""
    at: datetime.datetime
    kind: str
    row: Any = None
    facts: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Timeline:
    entries: list[Entry]
    jobs_shown: int
    jobs_total: int


def build(service: Service) -> Timeline:
    """The service's timeline, newest first."""
    total = Job.select().where(Job.service == service).count()
    jobs = list(Job.select().where(Job.service == service).order_by(Job.id.desc()).limit(JOBS))
    attempts = list(ProvisioningLog.select().where(ProvisioningLog.job.in_([j.id for j in jobs]))
                    .order_by(ProvisioningLog.id)) if jobs else []
    trail = audit_trail(service, jobs)
    entries = [Entry(j.created_at, "job", j) for j in jobs]
    entries += [Entry(a.started_at, "attempt", a) for a in attempts]
    entries += states(jobs, trail)
    entries += [Entry(n.created_at, "notification", n, {"about": about(n)})
                for n in notifications(service, jobs)]
    entries += [Entry(e.at, kind_of(e), e) for e in trail]
    entries.sort(key=lambda e: (e.at, RANK[e.kind], getattr(e.row, "id", 0) or 0), reverse=True)
    return Timeline(entries, len(jobs), total)


def kind_of(entry: AuditEntry) -> str:
    """An audit entry's kind on the timeline: ``payment``, ``renew`` or ``audit``."""
    if entry.action in PAYMENTS:
        return "payment"
    return "renew" if entry.action == RENEW else "audit"


def audit_trail(service: Service, jobs: list[Job]) -> list[AuditEntry]:
    subjects = [f"service:{service.ref}"] + [f"job:{j.id}" for j in jobs]
    return list(AuditEntry.select().where(AuditEntry.subject.in_(subjects)).order_by(AuditEntry.id))


def states(jobs: list[Job], trail: list[AuditEntry]) -> list[Entry]:
    """The service's state changes, derived from its jobs' outcomes and the audit trail (see
    the module's docstring); each with ``from``, ``to`` and what moved it: ``job`` (a Job) or
    ``audit`` (an AuditEntry)."""
    moves: list[tuple[datetime.datetime, str, Any]] = []
    for job in jobs:
        if job.finished_at is None:
            continue
        if job.status == JobStatus.SUCCEEDED.value and job.action in RESULT_STATUS:
            moves.append((job.finished_at, RESULT_STATUS[job.action].value, job))
        elif job.status == JobStatus.FAILED.value and job.action == "create":
            moves.append((job.finished_at, "failed", job))
    by_id = {job.id: job for job in jobs}
    for entry in trail:
        if entry.action == "job.retry" and entry.detail.get("service_from") == "failed":
            job = by_id.get(int(entry.subject.split(":", 1)[1]))
            failed_at = entry.detail.get("failed_at")
            if failed_at and job is not None:
                moves.append((datetime.datetime.fromisoformat(failed_at), "failed", job))
            moves.append((entry.at, "pending", entry))
        elif entry.action == "service.close":
            moves.append((entry.at, "closed", entry))
        elif entry.action == "sync.accept_panel" and entry.detail.get("field") == "status":
            moves.append((entry.at, str(entry.detail.get("now")), entry))
    moves.sort(key=lambda move: move[0])
    found, before = [], "pending"
    for at, status, cause in moves:
        if status != before:
            by = "job" if isinstance(cause, Job) else "audit"
            found.append(Entry(at, "state", None, {"from": before, "to": status, "job": None, "audit": None,
                                                   by: cause}))
            before = status
    return found


def notification_keys(service: Service, jobs: list[Job]) -> tuple[list[str], list[str]]:
    """(exact dedup keys, key prefixes) of the notifications about ``service``, as they are made:
    ``welcome:{id}`` (notify.welcome), ``billing:{id}:...`` (notify.billing_event), and admin
    alerts, each with a ``:email`` and a ``:webhook`` row (notify.alert): ``job:{job}:failed``
    (lifecycle), ``job:{job}:needs_attention:{attempts}`` (outcomes), ``capacity:{group}:{id}``,
    ``username:{id}``, ``service:{id}:closed-unknown`` (lifecycle), ``usage:{id}:...`` (usage),
    ``sync:missing:{ref}:{stamp}`` (sync)."""
    alerts = [f"capacity:{service.product.group.name}:{service.id}", f"username:{service.id}",
              f"service:{service.id}:closed-unknown"]
    for job in jobs:
        alerts.append(f"job:{job.id}:failed")
        alerts += [f"job:{job.id}:needs_attention:{n}" for n in range(1, job.attempts + 1)]
    exact = [f"welcome:{service.id}"] + [f"{key}:{channel}"[:255] for key in alerts for channel in CHANNELS]
    return exact, [f"billing:{service.id}:", f"usage:{service.id}:", f"sync:missing:{service.ref}:"]


def notifications(service: Service, jobs: list[Job]) -> list[Notification]:
    exact, prefixes = notification_keys(service, jobs)
    # One query per condition: SQLite scans the table for their OR.
    found = {row.id: row for condition in [Notification.dedup_key.in_(exact)]
             + [starts_with(Notification.dedup_key, prefix) for prefix in prefixes]
             for row in Notification.select().where(condition)}
    rows = [found[key] for key in sorted(found)]
    missing = f"sync:missing:{service.ref}:"
    # A ref may hold ':', so another ref's missing-account alert can share the prefix: only
    # ``{stamp}:{channel}`` or ``{channel}`` may follow this ref's.
    return [row for row in rows if not row.dedup_key.startswith(missing)
            or STAMPED.fullmatch(row.dedup_key[len(missing):])]


def starts_with(field: pw.Field, prefix: str) -> pw.Expression:
    """``field`` starts with ``prefix``, compared exactly (no LIKE: no wildcard, no case folding).

    Where text sorts byte by byte (SQLite; PostgreSQL with the C collation) it is a range of
    the field's index, else a scan; an outbox of 200,000 rows takes ~200 ms to scan."""
    if bytewise_order():
        return (field >= prefix) & (field < prefix[:-1] + chr(ord(prefix[-1]) + 1))
    return pw.fn.SUBSTR(field, 1, len(prefix)) == prefix


_BYTEWISE: dict[int, bool] = {}


def bytewise_order() -> bool:
    """Whether the database sorts text by its bytes (code points): SQLite's default, and
    PostgreSQL's when the database's collation is C or POSIX (asked once per database)."""
    db = database.obj
    if not dbmod.is_postgres(db):
        return True
    if id(db) not in _BYTEWISE:
        (collation,) = db.execute_sql(
            "SELECT datcollate FROM pg_database WHERE datname = current_database()").fetchone()
        _BYTEWISE[id(db)] = collation in ("C", "POSIX") or collation.startswith("C.")
    return _BYTEWISE[id(db)]


def about(row: Notification) -> str:
    """What a notification says, in a few words: a webhook's event, an alert's subject, or
    'welcome mail'. Payloads hold nothing secret (notify.py)."""
    payload = row.payload or {}
    if row.kind == "welcome_email":
        return "welcome mail to the client"
    if row.kind == "billing_webhook":
        previous = payload.get("previous_status")
        return f"{payload.get('event', '')}" + (f" (was {previous})" if previous else "")
    return str(payload.get("subject", ""))
