"""`provisiond server sync` and `provisiond service recreate`: a server's drift and its fixes
(provisiond.sync, provisiond.reconcile)."""

from __future__ import annotations

import sys

from provisiond import audit, lifecycle, reconcile, sync
from provisiond.cli.base import SERVICE_KEY_HELP, Runtime, command, job_view, table
from provisiond.errors import ValidationError

KIND_COLUMNS = {
    "orphans": ["username", "domain", "package", "suspended"],
    "missing": ["ref", "username", "domain", "status"],
    "state_drift": ["ref", "username", "provisiond", "panel"],
    "package_drift": ["ref", "username", "provisiond", "panel"],
    "identity_drift": ["ref", "username", "provisiond", "panel"],
}
FIX_COLUMNS = {
    "adopted": ["ref", "username", "domain", "package", "status", "email", "paid_until"],
    "reapplied": ["ref", "username", "action", "job", "skipped"],
    "accepted": ["ref", "username", "field", "provisiond", "panel", "skipped"],
}


def _read_map(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError("map", f"cannot read {path!r} ({type(exc).__name__})") from None


def report_text(report: dict) -> str:
    """Counts first, then a table per kind of drift that has any."""
    counts = sync.counts(report)
    lines = [f"server {report['server']} checked {report['checked_at']}: {report['panel_accounts']} "
             f"account(s) on the panel, {report['services']} service(s) holding one",
             ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())]
    for kind, columns in KIND_COLUMNS.items():
        if report[kind]:
            lines += ["", f"{kind.replace('_', ' ')}:", table(report[kind], columns)]
    return "\n".join(lines)


def _text(result: dict, dry_run: bool) -> str:
    parts = [report_text(result["report"])]
    verb = "would be" if dry_run else "were"
    for fix, columns in FIX_COLUMNS.items():
        if fix in result:
            parts += ["", f"{fix} ({len(result[fix])} {verb} {fix}):" if dry_run else f"{fix}:",
                      table(result[fix], columns)]
    if dry_run and len(result) > 2:
        parts += ["", "dry run: nothing was written"]
    return "\n".join(parts)


@command("server sync")
def cmd_server_sync(rt: Runtime, args) -> int:
    rt.open_db()
    if sys.stderr.isatty() and not rt.json:  # the panel's run takes a while on a big server
        print(f"reading the accounts of server {args.name} (list_accounts)...", file=sys.stderr, flush=True)
    result = reconcile.sync_server(rt.settings, rt.vault, rt.registry(), args.name, actor=audit.cli_actor(),
                                   policy=rt.policy, dry_run=args.dry_run, adopt_product=args.adopt,
                                   map_text=_read_map(args.map), reapply_drift=args.reapply,
                                   accept=args.accept_panel)
    fixes = {k: v for k, v in result.items() if k in FIX_COLUMNS}
    # Without a fix, --json prints exactly the drift report; with one, the report and the fixes.
    rt.out(result["report"] if not fixes else {"report": result["report"], **fixes},
           lambda _: _text(result, args.dry_run))
    return 0


@command("service recreate")
def cmd_service_recreate(rt: Runtime, args) -> int:
    rt.open_db()
    service = lifecycle.get_service(args.service)
    jobs = reconcile.recreate(service, rt.vault, rt.registry(), actor=audit.cli_actor(), policy=rt.policy)
    rt.out([job_view(j) for j in jobs],
           lambda views: f"service {service.ref}: " + ", ".join(f"{v['action']} job {v['id']}" for v in views)
           + " queued")
    return 0


def add_server_sync(sub, servers) -> None:
    p = sub(servers, "sync", "compare a server's accounts with provisiond's services; show the drift "
                             "and, when asked, fix it (nothing on the panel is ever deleted)")
    p.add_argument("name", help="the server's name")
    p.add_argument("--dry-run", action="store_true",
                   help="show the drift and what the fixes would do; write nothing")
    p.add_argument("--adopt", metavar="PRODUCT",
                   help="record the orphans as services of PRODUCT with the panel's state (no create call)")
    p.add_argument("--map", metavar="FILE.csv",
                   help="with --adopt: username,ref[,paid_until][,email] per line (else ref <server>:<username>)")
    fix = p.add_mutually_exclusive_group()
    fix.add_argument("--reapply", action="store_true",
                     help="queue the jobs that bring the panel back to provisiond's state "
                          "(suspend, unsuspend, change_package)")
    fix.add_argument("--accept-panel", action="store_true",
                     help="record the panel's state, package and domain in provisiond instead (audited)")


def add_service_recreate(sub, services) -> None:
    p = sub(services, "recreate", "queue a create for a service whose account the last sync found "
                                  "missing on its server (refused otherwise)")
    p.add_argument("service", help=SERVICE_KEY_HELP)
