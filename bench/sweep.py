"""Overdue sweep at scale: provisiond.sweep.run (indexed queries + bulk enqueue) vs a Python loop.

    python bench/sweep.py [--sizes 10000,100000] [--db sqlite --db postgres] [--baseline-max 100000]

For each database and size a fresh schema is filled with insert_many: services spread over three
products (one with its own suspend/terminate days) with realistic statuses and dates: most paid
ahead, about 8 % overdue by 1-120 days, a few on hold or never-terminate, 1 % with an open job.

- provisiond: ``sweep.run(today)`` as the daemon calls it: decide with a few indexed queries,
  then enqueue every decision in one bulk insert, in one transaction.
- baseline: the seeds' model: read every service row, apply ``policies.decide`` to each in
  Python (open jobs read once into a set, in its favour), then one ``queue.enqueue`` per decision.

Both must reach the same decisions; the jobs the first one enqueued are removed before the
baseline runs. Timings are wall-clock seconds in this process (the database server's own time
included for PostgreSQL).
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

from provisiond import catalog, queue, sweep  # noqa: E402
from provisiond.models import OPEN_JOB_STATUSES, Job, Product, Service, database, utcnow  # noqa: E402
from provisiond.policies import OverdueFacts, decide, resolve_days  # noqa: E402

SUSPEND, TERMINATE = 10, 45
ATTEMPTS = {"suspend": 6, "terminate": 3}


def fill(home: c.Home, size: int, seed: int = 7) -> tuple[datetime.date, float]:
    """Groups, a server, three products and ``size`` services; returns (today, seconds taken)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    today = datetime.date(2026, 11, 22)
    catalog.add_group("web")
    server = catalog.add_server(home.registry, home.vault, name="whm1", panel="cpanel", host="127.0.0.1",
                                port=2087, group_name="web", max_accounts=10_000_000,
                                credentials={"api_token": c.TOKEN, "scheme": "http"})
    products = [catalog.add_product(home.registry, name=f"p{i}", panel="cpanel", group_name="web",
                                    package="basic") for i in range(3)]
    Product.update(suspend_after_days=5, terminate_after_days=30).where(Product.id == products[2].id).execute()
    now = utcnow()
    rows = []
    for i in range(size):
        overdue = rng.random() < 0.08
        paid = today - datetime.timedelta(days=rng.randint(1, 120)) if overdue else \
            today + datetime.timedelta(days=rng.randint(0, 365))
        roll = rng.random()
        status = ("pending" if roll < 0.02 else "terminated" if roll < 0.07 else "failed" if roll < 0.08
                  else "suspended" if (overdue and roll < 0.5) or roll < 0.10 else "active")
        rows.append({"ref": f"S{i}", "product": products[i % 3].id, "server": server.id,
                     "domain": f"d{i}.example.com", "email": f"o@d{i}.example.com", "username": f"u{i}",
                     "package": "basic", "status": status,
                     "status_reason": "overdue" if status == "suspended" else None,
                     "paid_until": None if rng.random() < 0.01 else paid,
                     "hold_until": today + datetime.timedelta(days=3) if rng.random() < 0.01 else None,
                     "never_terminate": rng.random() < 0.01, "created_at": now, "updated_at": now})
    with database.atomic():
        for start in range(0, size, 1000):
            Service.insert_many(rows[start:start + 1000]).execute()
    # 1 % of the services have an open job (the sweep leaves them for the next day).
    ids = [sid for (sid,) in Service.select(Service.id).order_by(Service.id).tuples()]
    busy = rng.sample(ids, size // 100)
    with database.atomic():
        queue.enqueue_many([{"action": "change_password", "service": sid, "server": server.id, "params": {},
                             "idempotency_key": f"bench:{sid}", "max_attempts": 6} for sid in busy], now)
    return today, time.perf_counter() - started


def provisiond_sweep(today: datetime.date) -> tuple[float, list, int]:
    started = time.perf_counter()
    result = sweep.run(today, default_suspend=SUSPEND, default_terminate=TERMINATE, max_attempts=ATTEMPTS)
    return time.perf_counter() - started, result.decisions, result.enqueued


def baseline_sweep(today: datetime.date) -> tuple[float, list, int]:
    started = time.perf_counter()
    days = {p.id: resolve_days(p.suspend_after_days, p.terminate_after_days, SUSPEND, TERMINATE)
            for p in Product.select()}
    busy = {sid for (sid,) in Job.select(Job.service).where(Job.status.in_(OPEN_JOB_STATUSES)).tuples()}
    decisions = []
    for row in Service.select(Service.id, Service.product, Service.server, Service.status,
                              Service.status_reason, Service.paid_until, Service.hold_until,
                              Service.never_terminate).tuples():
        sid, product, server, status, reason, paid, hold, never = row
        if sid in busy:
            continue
        suspend_days, terminate_days = days[product]
        verdict = decide(OverdueFacts(sid, status, reason, paid, hold, bool(never), suspend_days,
                                      terminate_days), today)
        if verdict is not None:
            decisions.append((verdict, server))
    enqueued = 0
    for verdict, server in decisions:
        _job, created = queue.enqueue(verdict.action, service=verdict.service_id, server=server,
                                      params={"reason": "overdue"} if verdict.action == "suspend" else {},
                                      idempotency_key=f"sweep:{today.isoformat()}:{verdict.action}:{verdict.service_id}",
                                      max_attempts=ATTEMPTS[verdict.action])
        enqueued += created
    return time.perf_counter() - started, [v for v, _ in decisions], enqueued


def run_case(kind: str, url: str | None, size: int, baseline_max: int) -> dict:
    home = c.Home(database_url=url)
    try:
        today, filled = fill(home, size)
        if kind == "postgres":
            database.obj.execute_sql("ANALYZE")
        took, decisions, enqueued = provisiond_sweep(today)
        out = {"db": kind, "size": size, "fill_s": filled, "sweep_s": took, "decisions": len(decisions),
               "enqueued": enqueued}
        print(f"\n== {kind}, {size:,} services (filled in {filled:.1f} s) ==")
        print(f"provisiond sweep.run: {took:.3f} s  ({len(decisions):,} decisions, {enqueued:,} jobs enqueued)"
              f"  target < 2 s at 100k: {'met' if took < 2 else 'NOT met'}" if size >= 100_000 else
              f"provisiond sweep.run: {took:.3f} s  ({len(decisions):,} decisions, {enqueued:,} jobs enqueued)")
        if size <= baseline_max:
            Job.delete().where(Job.idempotency_key.startswith("sweep:")).execute()
            b_took, b_decisions, b_enqueued = baseline_sweep(today)
            same = sorted((d.service_id, d.action) for d in decisions) == \
                sorted((d.service_id, d.action) for d in b_decisions)
            out.update(baseline_s=b_took, baseline_decisions=len(b_decisions), same=same)
            print(f"baseline (Python loop + one enqueue per decision): {b_took:.3f} s  "
                  f"({len(b_decisions):,} decisions, {b_enqueued:,} enqueued; same decisions: {same})")
            print(f"ratio: x{b_took / took:.1f} faster than the baseline")
        return out
    finally:
        home.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--baseline-max", type=int, default=100_000,
                        help="run the baseline only up to this many services")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    c.print_machine()
    for kind in args.db or ["sqlite", "postgres"]:
        for size in sizes:
            if kind == "sqlite":
                run_case(kind, None, size, args.baseline_max)
                continue
            problem = c.pg_available()
            if problem:
                print(f"\n== postgres: skipped, not reachable ({problem}) ==")
                break
            with c.throwaway_pg() as url:
                run_case(kind, url, size, args.baseline_max)
    print(f"\n# load average at the end: {c.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
