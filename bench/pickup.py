"""Pickup latency: how long a single order waits before its playbook starts.

    python bench/pickup.py [--orders 100] [--db sqlite --db postgres] [--baseline-tick 4]
                           [--baseline-orders 20]

A real daemon (``python -m provisiond.cli run``, default settings: tick every 120 s, woken on
enqueue) runs against one WHM simulator. Orders are placed one at a time, each after the
previous one finished plus a random pause, so every order meets an idle daemon. For each order:

- pickup = enqueue (the job's created_at, taken inside the enqueueing transaction) -> the run's
  start (the provisioning log's started_at: execute.run about to start ansible-runner);
- first call = enqueue -> the simulator's first request for the account (includes
  ansible-playbook's own start-up, about 0.7 s here).

Baseline: the same daemon without the wake-up, i.e. the seeds' pure poll. Analytically, with an
order arriving at a random moment of a 120 s tick, the wait is uniform on [0, 120 s]: p50 60 s,
p95 114 s, max 120 s. It is also measured: a daemon ticking every --baseline-tick seconds,
enqueuers that do not announce work (db.announce_work disabled in this process), and the
measured waits scaled by 120 / tick.
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

from provisiond import db as dbmod  # noqa: E402
from provisiond.models import ProvisioningLog  # noqa: E402
from provisiond.sandbox.cpanel import WhmSimulator  # noqa: E402

POLL_TICK = 120.0


class TimedWhm(WhmSimulator):
    """A WHM simulator that remembers when it first heard of each account."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first_seen: dict[str, float] = {}

    def _dispatch(self, request):
        params = request.form()
        user = params.get("user") or params.get("username")
        if user:
            with self.lock:
                self.first_seen.setdefault(user, time.time())
        return super()._dispatch(request)


def epoch(naive_utc: datetime.datetime) -> float:
    return naive_utc.replace(tzinfo=datetime.timezone.utc).timestamp()


def measure(database_url: str, orders: int, overrides: dict, announce: bool, gap: float,
            prefix: str) -> dict:
    sim = TimedWhm(token=c.TOKEN).start()
    home = c.Home(database_url=database_url, settings=overrides)
    saved = dbmod.announce_work
    try:
        c.add_whm_servers(home, [sim])
        if not announce:
            dbmod.announce_work = lambda: None
        with c.DaemonProcess(home).start(settle=1.0) as daemon:
            pickups, first_calls = [], []
            for i in range(orders):
                time.sleep(random.uniform(0, gap))
                job = c.order_one(home, i, prefix=prefix)
                c.wait_jobs([job.id], timeout=POLL_TICK * 2 + 60, poll=0.05)
                log = ProvisioningLog.select().where(ProvisioningLog.job == job.id).order_by(
                    ProvisioningLog.id).first()
                enqueued = epoch(job.created_at)
                pickups.append(epoch(log.started_at) - enqueued)
                first_calls.append(sim.first_seen[f"{prefix}{i:05d}"] - enqueued)
            cpu = c.cpu_seconds(daemon.pid)
        return {"orders": orders, "pickup": pickups, "first_call": first_calls, "daemon_cpu": cpu}
    finally:
        dbmod.announce_work = saved
        home.close()
        sim.stop()


def stats(values: list[float]) -> dict:
    return {"p50": c.percentile(values, 50), "p95": c.percentile(values, 95), "max": max(values)}


def fmt(s: dict, scale: float = 1.0) -> str:
    return f"p50 {s['p50'] * scale:7.3f} s  p95 {s['p95'] * scale:7.3f} s  max {s['max'] * scale:7.3f} s"


def run_db(kind: str, url: str, args) -> dict:
    prefix = "pk" if kind == "sqlite" else "pg"
    woken = measure(url, args.orders, {}, announce=True, gap=0.6, prefix=prefix)
    out = {"db": kind, "woken": {"pickup": stats(woken["pickup"]), "first_call": stats(woken["first_call"])}}
    print(f"\n== {kind}: {args.orders} orders one at a time, daemon with default settings (woken on enqueue) ==")
    print(f"  enqueue -> run start       {fmt(out['woken']['pickup'])}")
    print(f"  enqueue -> first WHM call  {fmt(out['woken']['first_call'])}")
    analytic = {"p50": POLL_TICK * 0.50, "p95": POLL_TICK * 0.95, "max": POLL_TICK}
    out["baseline_analytic"] = analytic
    print(f"baseline, pure {POLL_TICK:.0f} s poll (no wake-up), analytic: {fmt(analytic)}")
    if args.baseline_orders:
        tick = args.baseline_tick
        polled = measure(url, args.baseline_orders, {"tick_seconds": tick}, announce=False, gap=tick,
                         prefix=prefix + "b")
        scale = POLL_TICK / tick
        measured = stats(polled["pickup"])
        out["baseline_measured"] = {k: v * scale for k, v in measured.items()}
        print(f"baseline measured: {args.baseline_orders} orders, no wake-up, tick {tick:g} s: {fmt(measured)}")
        print(f"  scaled x{scale:g} to a {POLL_TICK:.0f} s tick:              {fmt(measured, scale)}")
    base = out.get("baseline_measured", analytic)
    p95 = out["woken"]["pickup"]["p95"]
    print(f"ratio: pickup p95 {base['p95'] / p95:,.0f}x shorter than the poll's p95 "
          f"({'measured' if 'baseline_measured' in out else 'analytic'} baseline); "
          f"target p95 < 1 s: {'met' if p95 < 1 else 'NOT met'} ({p95:.3f} s)")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--baseline-tick", type=float, default=4.0)
    parser.add_argument("--baseline-orders", type=int, default=20,
                        help="orders for the measured poll baseline (0: analytic only)")
    args = parser.parse_args(argv)
    c.print_machine()
    for kind in args.db or ["sqlite", "postgres"]:
        if kind == "sqlite":
            run_db(kind, None, args)
            continue
        problem = c.pg_available()
        if problem:
            print(f"\n== postgres: skipped, not reachable ({problem}) ==")
            continue
        with c.throwaway_pg() as url:
            run_db(kind, url, args)
    print(f"\n# load average at the end: {c.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
