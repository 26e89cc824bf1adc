"""Sync of a big server: the controller's time beyond the panel's answer, vs a naive check.

    python bench/sync.py [--accounts 10000] [--db sqlite --db postgres]

For each database a fresh schema gets one WHM server (the simulator) with ``--accounts``
accounts, and provisiond's services on it, bulk-inserted: 90 % of the accounts are known to
provisiond, 1 % of those are suspended on one side only, 1 % on another package, 0.5 % serve
another domain, and 500 more services have no account (missing); the other 10 % are orphans.

- panel: ``sync.panel_accounts`` (one real list_accounts run through ansible-runner: WHM
  listaccts and the playbook's normalisation). Reported, not part of the controller's time.
- provisiond: ``sync.services_of`` (one query) and ``sync.compare`` (dict lookups), wall and
  CPU seconds in this process. The issue's bound: under 5 s.
- naive: one query per panel account (``Service`` by server and username), compared in Python,
  plus one query for the services holding an account, as a per-account check would do it.

Both must find the same drift.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

from provisiond import catalog, sync  # noqa: E402
from provisiond.models import Server, Service, database, utcnow  # noqa: E402
from provisiond.sandbox.cpanel import Account, WhmSimulator  # noqa: E402


def fill(home: c.Home, sim: WhmSimulator, size: int) -> Server:
    catalog.add_group("web")
    server = catalog.add_server(home.registry, home.vault, name="whm1", panel="cpanel", host=sim.host,
                                port=sim.port, group_name="web", max_accounts=10_000_000,
                                credentials={"api_token": c.TOKEN, "scheme": "http"})
    product = catalog.add_product(home.registry, name="starter", panel="cpanel", group_name="web",
                                  package="basic")
    now, rows = utcnow(), []
    for i in range(size):
        user, domain = f"u{i:06d}", f"d{i:06d}.example.com"
        sim.accounts[user] = Account(user, domain, "pro" if i % 100 == 1 else "basic", f"o@{domain}", "x",
                                     suspended=i % 100 == 2)
        if i % 10 == 9:
            continue  # an orphan
        if i % 200 == 3:
            sim.accounts[user].domain = f"other{i}.example.net"
        rows.append(_row(product, server, i, user, domain, now))
    for i in range(size, size + 500):  # missing: provisiond's, gone from the panel
        rows.append(_row(product, server, i, f"u{i:06d}", f"d{i:06d}.example.com", now))
    with database.atomic():
        for start in range(0, len(rows), 1000):
            Service.insert_many(rows[start:start + 1000]).execute()
    return server


def _row(product, server, i: int, user: str, domain: str, now) -> dict:
    return {"ref": f"R{i}", "product": product.id, "server": server.id, "domain": domain,
            "email": f"o@{domain}", "username": user, "package": "basic", "status": "active",
            "created_at": now, "updated_at": now}


def naive(server: Server, accounts: list[dict]) -> dict[str, int]:
    """One query per panel account, as a per-account check does it; the drift counts."""
    found = {kind: 0 for kind in sync.DRIFT_KINDS}
    seen = set()
    for account in accounts:
        service = Service.get_or_none((Service.server == server) & (Service.username == account["username"]))
        if service is None or service.status not in sync.KNOWN:
            found["orphans"] += 1
            continue
        seen.add(service.username)
        if service.status not in sync.HOLDING:
            continue
        found["state_drift"] += service.status != ("suspended" if account["suspended"] else "active")
        found["package_drift"] += service.package != account["package"]
        found["identity_drift"] += service.domain.lower() != account["domain"].lower()
    holding = Service.select(Service.username).where((Service.server == server)
                                                     & Service.status.in_(sync.HOLDING))
    found["missing"] = sum(1 for s in holding if s.username not in seen)
    return found


def run_case(kind: str, url: str | None, size: int) -> dict:
    home = c.Home(database_url=url)
    try:
        with WhmSimulator(token=c.TOKEN) as sim:
            server = fill(home, sim, size)
            if kind == "postgres":
                database.obj.execute_sql("ANALYZE")
            started = time.perf_counter()
            accounts = sync.panel_accounts(home.settings, home.vault, home.registry, server)
            panel_s = time.perf_counter() - started

            wall, cpu = time.perf_counter(), time.process_time()
            report = sync.compare(server.name, accounts, sync.services_of(server), utcnow())
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

            naive_s = time.perf_counter()
            naive_counts = naive(server, accounts)
            naive_s = time.perf_counter() - naive_s
        same = naive_counts == sync.counts(report)
        print(f"\n== {kind}, {size:,} accounts on the panel, {report['services']:,} services ==")
        print(f"panel's answer (list_accounts run): {panel_s:.2f} s")
        print(f"provisiond (services_of + compare): {wall:.3f} s wall, {cpu:.3f} s CPU  "
              f"target < 5 s: {'met' if wall < 5 else 'NOT met'}")
        print(f"drift: {sync.counts(report)}")
        print(f"naive (one query per account): {naive_s:.3f} s; same drift: {same}")
        print(f"ratio: x{naive_s / wall:.1f} faster than the naive check")
        return {"db": kind, "panel_s": panel_s, "wall": wall, "cpu": cpu, "naive_s": naive_s, "same": same}
    finally:
        home.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    args = parser.parse_args(argv)
    c.print_machine()
    for kind in args.db or ["sqlite", "postgres"]:
        if kind == "sqlite":
            run_case(kind, None, args.accounts)
            continue
        problem = c.pg_available()
        if problem:
            print(f"\n== postgres: skipped, not reachable ({problem}) ==")
            continue
        with c.throwaway_pg() as url:
            run_case(kind, url, args.accounts)
    print(f"\n# load average at the end: {c.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
