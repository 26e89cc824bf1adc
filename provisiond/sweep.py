"""The overdue sweep: suspend services overdue by ``suspend_after_days``, terminate those
overdue by ``terminate_after_days`` (per-product overrides, hold dates, never-terminate).

The rules are ``policies.sweep`` (a pure function, tested with tables); here they are the same
rules as a few indexed queries, one pair per distinct (suspend, terminate) days of the
products, so a sweep over 100,000 services never loops over rows in Python. Decisions are
enqueued in bulk, each with an idempotency key of the day, so a sweep run twice on a day
enqueues nothing new. Services that already have an open job are left for the next sweep.
One sweep a day runs across a cluster: the daemon's sweep holds a shared row for its
transaction and marks the day done in it, only when it decided for every product.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections import defaultdict

import peewee as pw

from provisiond import daily, db as dbmod, notify, queue
from provisiond.config import Settings
from provisiond.models import (OPEN_JOB_STATUSES, Job, Product, Service, Setting, database,
                               utcnow)
from provisiond.policies import Decision, resolve_days

LAST_SWEEP = "last_sweep_day"
log = logging.getLogger("provisiond.sweep")


@dataclasses.dataclass(frozen=True)
class SweepResult:
    day: datetime.date
    decisions: list[Decision]
    enqueued: int
    dry_run: bool
    failed: dict[str, str] = dataclasses.field(default_factory=dict)  # product name → why
    claimed: bool = False


def _day_groups(default_suspend: int, default_terminate: int,
                failed: dict[str, str]) -> dict[tuple[int, int], list[Product]]:
    """Products by their resolved (suspend, terminate) days; a product whose days make no
    sense (stored before the door checked them) goes to ``failed`` instead."""
    groups: dict[tuple[int, int], list[Product]] = defaultdict(list)
    for product in Product.select(Product.id, Product.name, Product.suspend_after_days,
                                  Product.terminate_after_days):
        try:
            days = resolve_days(product.suspend_after_days, product.terminate_after_days,
                                default_suspend, default_terminate)
        except ValueError as exc:
            failed[product.name] = str(exc)
            continue
        groups[days].append(product)
    return groups


def _no_open_job():
    open_jobs = Job.select(Job.id).where((Job.service == Service.id) & Job.status.in_(OPEN_JOB_STATUSES))
    return ~pw.fn.EXISTS(open_jobs)


def _decide_group(today: datetime.date, suspend_days: int, terminate_days: int,
                  product_ids: list[int]) -> list[Decision]:
    """``policies.decide`` as two queries, for the products sharing these day counts."""
    not_held = Service.hold_until.is_null() | (Service.hold_until < today)
    terminate_cutoff = today - datetime.timedelta(days=terminate_days)
    suspend_cutoff = today - datetime.timedelta(days=suspend_days)
    base = (Service.product.in_(product_ids) & Service.paid_until.is_null(False) & not_held
            & _no_open_job())
    # Only a service suspended for non-payment is terminated; an active one is suspended first.
    terminate = (Service.select(Service.id, Service.paid_until)
                 .where(base & (Service.status == "suspended") & (Service.status_reason == "overdue")
                        & (Service.paid_until <= terminate_cutoff) & (Service.never_terminate == False))  # noqa: E712
                 .order_by(Service.id))
    suspend = (Service.select(Service.id)
               .where(base & (Service.status == "active") & (Service.paid_until <= suspend_cutoff))
               .order_by(Service.id))
    return ([Decision(sid, "terminate", f"overdue {(today - paid).days} days") for sid, paid in terminate.tuples()]
            + [Decision(sid, "suspend", "overdue") for (sid,) in suspend.tuples()])


def decide(today: datetime.date, default_suspend: int = 10, default_terminate: int = 45,
           failed: dict[str, str] | None = None) -> list[Decision]:
    """What the sweep would do today; the same answers as ``policies.sweep``.

    Each group of products is decided on its own: one that fails (its days overflow a date,
    a query fails) is named in ``failed`` with the reason, and the others are still decided.
    """
    failed = {} if failed is None else failed
    decisions: list[Decision] = []
    for (suspend_days, terminate_days), products in _day_groups(default_suspend, default_terminate,
                                                                failed).items():
        try:
            with database.atomic():  # a savepoint: a failed query does not poison the rest
                decisions += _decide_group(today, suspend_days, terminate_days, [p.id for p in products])
        except Exception as exc:  # noqa: BLE001 - whatever one product does, the others are swept
            failed.update({p.name: f"{type(exc).__name__}: {exc}" for p in products})
    return sorted(decisions, key=lambda d: d.service_id)


def claim_day(day: datetime.date) -> bool:
    """True for the one caller that gets to sweep ``day`` (compare-and-set on a shared row)."""
    return daily.claim(LAST_SWEEP, day)


def last_day() -> datetime.date | None:
    return daily.last_day(LAST_SWEEP)


def run(today: datetime.date, *, dry_run: bool = False, default_suspend: int = 10,
        default_terminate: int = 45, max_attempts: dict[str, int] | None = None,
        claim: bool = False, settings: Settings | None = None) -> SweepResult:
    """Decide and (unless dry_run) enqueue one sweep's jobs in one transaction.

    With ``claim`` (the daemon's daily sweep) that transaction first holds the day's row, so
    one daemon sweeps while the others wait and then find the day done; the day is marked
    done only when every product was swept. A sweep that fails rolls back and one that had to
    leave a product out leaves the day open: the next attempt sweeps it again (the day's
    idempotency keys keep jobs from doubling). With ``settings``, each product that could not
    be swept alerts an admin once a day.
    """
    failed: dict[str, str] = {}
    if dry_run:
        decisions = decide(today, default_suspend, default_terminate, failed)
        _report_failures(today, failed, settings)
        return SweepResult(today, decisions, 0, dry_run, failed)
    with database.atomic():
        if claim and not _hold_day(today):
            return SweepResult(today, [], 0, dry_run)  # another daemon swept today
        decisions = decide(today, default_suspend, default_terminate, failed)
        enqueued = queue.enqueue_many(_job_rows(today, decisions, max_attempts or {}), utcnow())
        claimed = claim and not failed and claim_day(today)
    _report_failures(today, failed, settings)
    return SweepResult(today, decisions, enqueued, dry_run, failed, claimed)


def _hold_day(day: datetime.date) -> bool:
    """In a transaction: lock the last-sweep row (PostgreSQL; SQLite's write lock is held
    already) and say whether ``day`` is still to be swept."""
    Setting.insert(key=LAST_SWEEP, value="").on_conflict_ignore().execute()
    query = Setting.select().where(Setting.key == LAST_SWEEP)
    row = (query.for_update() if dbmod.is_postgres() else query).get()
    return row.value < day.isoformat()


def _job_rows(today: datetime.date, decisions: list[Decision], attempts: dict[str, int]) -> list[dict]:
    servers = dict(Service.select(Service.id, Service.server).where(
        Service.id.in_([d.service_id for d in decisions])).tuples()) if decisions else {}
    return [{"action": d.action, "service": d.service_id, "server": servers[d.service_id],
             "params": {"reason": "overdue"} if d.action == "suspend" else {},
             "idempotency_key": f"sweep:{today.isoformat()}:{d.action}:{d.service_id}",
             "max_attempts": attempts.get(d.action, 6)} for d in decisions if servers.get(d.service_id)]


def _report_failures(today: datetime.date, failed: dict[str, str], settings: Settings | None) -> None:
    for name, why in failed.items():
        log.error("overdue sweep %s: product %s was not swept: %s", today, name, why)
        if settings is not None:
            notify.alert(settings, f"overdue sweep skipped product {name}",
                         f"The overdue sweep of {today} could not decide for the services of product "
                         f"{name}: {why}\n\nThe other products were swept. Fix the product's "
                         "suspend/terminate days; the day stays open, so a daemon that starts sweeps "
                         "it again (and `provisiond sweep` shows what it would do).",
                         f"sweep:{today.isoformat()}:{name}")
