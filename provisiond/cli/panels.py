"""`provisiond panels`: the panel folders found in playbooks/, checked, tried and verified."""

from __future__ import annotations

import dataclasses

from provisiond import audit
from provisiond.cli.base import Runtime, command, kv, table
from provisiond.errors import ValidationError


@command("panels list")
def cmd_panels_list(rt: Runtime, args) -> int:
    registry = rt.registry()
    rows = [{"id": p.id, "name": p.name, "connection": p.connection, "actions": ",".join(p.actions),
             "path": str(p.path)} for p in registry.panels.values()]
    rows += [{"id": pid, "name": "BROKEN", "connection": "", "actions": "", "path": problem}
             for pid, problem in registry.problems.items()]
    rt.out(rows, lambda r: table(r, ["id", "name", "connection", "actions", "path"]))
    return 0


@command("panels check")
def cmd_panels_check(rt: Runtime, args) -> int:
    from provisiond import panelcheck
    reports = panelcheck.check(rt.registry(), args.panel, rt.settings.role_dirs())
    if args.panel and not reports:
        raise ValidationError("panel", f"unknown panel {args.panel!r}")
    rt.out([dataclasses.asdict(r) for r in reports], lambda rows: "\n".join(
        (f"{r['panel']}: ok" if r["ok"] else f"{r['panel']}: BROKEN\n  " + "\n  ".join(r["problems"]))
        + "".join(f"\n  warning: {w}" for w in r["warnings"]) for r in rows))
    return 0 if all(r.ok for r in reports) else 1


@command("panels try")
def cmd_panels_try(rt: Runtime, args) -> int:
    from provisiond import tryout
    if not args.sandbox:
        raise ValidationError("sandbox", "panels try runs against the bundled simulator only; give --sandbox")
    result = tryout.run_try(rt.settings, args.panel, args.action, kv(args.param, "params"))
    rt.out(result, tryout.text)
    return 0 if result["ok"] else 1


@command("panels verify")
def cmd_panels_verify(rt: Runtime, args) -> int:
    from provisiond import tryout, verify
    rt.open_db()
    shown = (lambda step: None) if rt.json else (lambda step: print("\n".join(tryout.step_lines(step)), flush=True))
    result = verify.run_verify(rt.settings, rt.vault, args.panel, server=args.server, domain=args.domain,
                               package=args.package, other_package=args.other_package, keep=args.keep,
                               i_know=args.i_know, on_step=shown, actor=audit.cli_actor())
    rt.out(result, verify.text)
    return 0 if result["ok"] else 1


def add_parsers(sub, group, top) -> None:
    pg = group("panels", "panels found in playbooks/")
    sub(pg, "list", "list panels and where they were found")
    p = sub(pg, "check", "validate manifests, render and syntax-check every action's playbook")
    p.add_argument("panel", nargs="?", help="one panel id (default: every panel)")
    p = sub(pg, "try", "run one action's playbook against the panel's simulator with a throwaway account")
    p.add_argument("panel", help="panel id with a bundled simulator (cpanel, directadmin, hestia, plesk, ...)")
    p.add_argument("action", help="create, suspend, ..., test_connection or an admin action")
    p.add_argument("--sandbox", action="store_true", help="against the bundled simulator, in a throwaway home")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a parameter of an admin action (e.g. user_ip=IP for plesk login_link); repeat")
    p = sub(pg, "verify", "run the whole lifecycle with a throwaway account on a registered (staging) server")
    p.add_argument("panel", help="the server's panel id")
    p.add_argument("--server", required=True, help="a server added with `server add`")
    p.add_argument("--domain", required=True, help="the throwaway account's domain (no service may use it)")
    p.add_argument("--package", help="package to create with (default: the server's first, from list_packages)")
    p.add_argument("--other-package", help="package for change_package (default: another from list_packages)")
    p.add_argument("--keep", action="store_true", help="leave the account on the panel (no terminate steps)")
    p.add_argument("--i-know", action="store_true", help="run even though the server has services")
