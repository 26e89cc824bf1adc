"""`provisiond usage collect` and `provisiond service usage`: what each account uses on its panel."""

from __future__ import annotations

import dataclasses

from provisiond import lifecycle, usage
from provisiond.cli.base import Runtime, command, fields, positive, table

LIMITS = ("disk_limit_mb", "bandwidth_limit_mb", "inodes_limit")
COLUMNS = ["collected_at", "disk_used_mb", "disk_limit_mb", "bandwidth_used_mb", "bandwidth_limit_mb",
           "inodes_used", "inodes_limit", "mailboxes", "databases"]


@command("usage collect")
def cmd_usage_collect(rt: Runtime, args) -> int:
    rt.open_db()
    results = usage.collect_all(rt.settings, rt.vault, rt.registry(), args.server)

    def text(rows):
        if not rows:
            return "no enabled server's panel reports usage"
        return "\n".join(
            f"{r['server']}: not collected: {r['error']}" if r["error"] else
            f"{r['server']}: {r['stored']} services stored, {r['unknown']} accounts not known to provisiond, "
            f"{r['alerts']} alerts" for r in rows)
    rt.out([dataclasses.asdict(r) for r in results], text)
    return 0 if all(r.ok for r in results) else 1


@command("service usage")
def cmd_service_usage(rt: Runtime, args) -> int:
    rt.open_db()
    service = lifecycle.get_service(args.service)
    rows = [usage.view(r, service.ref) for r in usage.history(service, args.limit)]
    shown = {"service": service.ref, "latest": rows[0] if rows else None, "history": rows}

    def text(v):
        if v["latest"] is None:
            return f"service {v['service']}: no usage collected yet"
        latest = {k: "unlimited" if val is None and k in LIMITS else val for k, val in v["latest"].items()}
        return fields(latest) + "\n\n" + table(v["history"], COLUMNS)
    rt.out(shown, text)
    return 0


def add_parsers(sub, group, top) -> None:
    ug = group("usage", "disk, bandwidth and more, as the panels report it")
    p = sub(ug, "collect", "read every account's usage from each server now (the daemon does it daily)")
    p.add_argument("--server", metavar="NAME", help="only this server")


def add_service_parser(sub, service_group) -> None:
    """`service usage REF`, added to the service group by cli/service.py."""
    from provisiond.cli.base import SERVICE_KEY_HELP
    p = sub(service_group, "usage", "the service's latest usage and a short history, newest first")
    p.add_argument("service", help=SERVICE_KEY_HELP)
    p.add_argument("--limit", type=positive, default=10, help="collections shown at most (default 10)")
