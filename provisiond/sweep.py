"""The overdue sweep: suspend services overdue by ``suspend_after_days``, terminate those
overdue by ``terminate_after_days`` (per-product overrides, hold dates, never-terminate).

The rules are ``policies.sweep`` (a pure function, tested with tables); here they are the same
rules as a few indexed queries, one pair per distinct (suspend, terminate) days of the
products, so a sweep over 100,000 services never loops over rows in Python. Decisions are
enqueued in bulk, each with an idempotency key of the day, so a sweep run twice on a day
enqueues nothing new. Services that already have an open job are left for the next sweep.
One sweep a day runs across a cluster: ``claim_day`` is a compare-and-set on a shared row.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import defaultdict

import peewee as pw

from provisiond import queue
from provisiond.models import (OPEN_JOB_STATUSES, Job, Product, Service, Setting, database,
                               utcnow)
from provisiond.policies import Decision

LAST_SWEEP = "last_sweep_day"


@dataclasses.dataclass(frozen=True)
class SweepResult:
    day: datetime.date
    decisions: list[Decision]
    enqueued: int
    dry_run: bool


def _day_groups(default_suspend: int, default_terminate: int) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for product in Product.select(Product.id, Product.suspend_after_days, Product.terminate_after_days):
        days = (product.suspend_after_days if product.suspend_after_days is not None else default_suspend,
                product.terminate_after_days if product.terminate_after_days is not None else default_terminate)
        groups[days].append(product.id)
    return groups


def _no_open_job():
    open_jobs = Job.select(Job.id).where((Job.service == Service.id) & Job.status.in_(OPEN_JOB_STATUSES))
    return ~pw.fn.EXISTS(open_jobs)


def decide(today: datetime.date, default_suspend: int = 10, default_terminate: int = 45) -> list[Decision]:
    """What the sweep would do today; the same answers as ``policies.sweep``."""
    not_held = Service.hold_until.is_null() | (Service.hold_until < today)
    decisions: list[Decision] = []
    for (suspend_days, terminate_days), product_ids in _day_groups(default_suspend, default_terminate).items():
        terminate_cutoff = today - datetime.timedelta(days=terminate_days)
        suspend_cutoff = today - datetime.timedelta(days=suspend_days)
        base = (Service.product.in_(product_ids) & Service.paid_until.is_null(False) & not_held
                & _no_open_job())
        terminate = (Service.select(Service.id, Service.paid_until)
                     .where(base & Service.status.in_(("active", "suspended"))
                            & (Service.paid_until <= terminate_cutoff) & (Service.never_terminate == False))  # noqa: E712
                     .order_by(Service.id))
        decisions += [Decision(sid, "terminate", f"overdue {(today - paid).days} days")
                      for sid, paid in terminate.tuples()]
        terminating = (Service.paid_until <= terminate_cutoff) & (Service.never_terminate == False)  # noqa: E712
        suspend = (Service.select(Service.id)
                   .where(base & (Service.status == "active") & (Service.paid_until <= suspend_cutoff)
                          & ~terminating)
                   .order_by(Service.id))
        decisions += [Decision(sid, "suspend", "overdue") for (sid,) in suspend.tuples()]
    return sorted(decisions, key=lambda d: d.service_id)


def claim_day(day: datetime.date) -> bool:
    """True for the one caller that gets to sweep ``day`` (compare-and-set on a shared row)."""
    value = day.isoformat()
    Setting.insert(key=LAST_SWEEP, value="").on_conflict_ignore().execute()
    updated = Setting.update(value=value).where((Setting.key == LAST_SWEEP) & (Setting.value < value)).execute()
    return updated == 1


def last_day() -> datetime.date | None:
    row = Setting.get_or_none(Setting.key == LAST_SWEEP)
    return datetime.date.fromisoformat(row.value) if row and row.value else None


def run(today: datetime.date, *, dry_run: bool = False, default_suspend: int = 10,
        default_terminate: int = 45, max_attempts: dict[str, int] | None = None) -> SweepResult:
    """Decide and (unless dry_run) enqueue one sweep's jobs in one transaction."""
    decisions = decide(today, default_suspend, default_terminate)
    if dry_run or not decisions:
        return SweepResult(today, decisions, 0, dry_run)
    attempts = max_attempts or {}
    servers = dict(Service.select(Service.id, Service.server).where(
        Service.id.in_([d.service_id for d in decisions])).tuples())
    rows = [{"action": d.action, "service": d.service_id, "server": servers[d.service_id],
             "params": {"reason": "overdue"} if d.action == "suspend" else {},
             "idempotency_key": f"sweep:{today.isoformat()}:{d.action}:{d.service_id}",
             "max_attempts": attempts.get(d.action, 6)} for d in decisions if servers.get(d.service_id)]
    with database.atomic():
        enqueued = queue.enqueue_many(rows, utcnow())
    return SweepResult(today, decisions, enqueued, dry_run)
