"""`provisiond group` and `provisiond server`: where accounts are placed."""

from __future__ import annotations

from provisiond import audit, catalog, fleet
from provisiond.cli import sync
from provisiond.cli.base import (Runtime, command, edited_text, fields, kv, positive, read_credentials, server_view,
                                 table, warn)
from provisiond.models import Server
from provisiond.views import group_view
from provisiond.policies import Strategy


@command("group add")
def cmd_group_add(rt: Runtime, args) -> int:
    rt.open_db()
    group = catalog.add_group(args.name, args.strategy)
    rt.out({"id": group.id, "name": group.name, "strategy": group.strategy},
           f"group {group.name} added ({group.strategy})")
    return 0


@command("group list")
def cmd_group_list(rt: Runtime, args) -> int:
    rt.open_db()
    rows = [group_view(g) for g in fleet.list_groups()]
    rt.out(rows, lambda r: table(r, ["id", "name", "strategy", "servers", "products"]))
    return 0


@command("group edit")
def cmd_group_edit(rt: Runtime, args) -> int:
    rt.open_db()
    changes = {"strategy": args.strategy} if args.strategy is not None else {}
    edited = fleet.edit_group(args.name, changes, audit.cli_actor())
    rt.out(group_view(edited.row) | {"changed": edited.changed},
           edited_text("group", edited.row.name, edited.changed))
    return 0


@command("group remove")
def cmd_group_remove(rt: Runtime, args) -> int:
    rt.open_db()
    rt.out(fleet.remove_group(args.name, audit.cli_actor()), f"group {args.name} removed")
    return 0


@command("server add")
def cmd_server_add(rt: Runtime, args) -> int:
    rt.open_db()
    fields = dict(name=args.name, panel=args.panel, host=args.host, port=args.port, group_name=args.group,
                  max_accounts=args.max_accounts, max_concurrency=args.max_concurrency,
                  credentials=read_credentials(args.credential))
    if not args.test:
        server = catalog.add_server(rt.registry(), rt.vault, **fields)
        rt.out(server_view(server), f"server {server.name} added ({server.panel} at {server.host})")
        return 0
    from provisiond import servertest
    server, outcome = servertest.add_tested(rt.settings, rt.registry(), rt.vault, **fields)
    rt.out(server_view(server) | {"test": outcome}, f"server {server.name} added ({server.panel} at "
           f"{server.host}): test_connection passed" + "".join(f"; {k} {v}" for k, v in outcome["reported"].items()))
    return 0


@command("server list")
def cmd_server_list(rt: Runtime, args) -> int:
    rt.open_db()
    rows = [server_view(s) for s in Server.select().order_by(Server.name)]
    rt.out(rows, lambda r: table(r, ["id", "name", "panel", "host", "port", "group", "placed", "max_accounts",
                                     "max_concurrency", "enabled", "health"]))
    return 0


@command("server show")
def cmd_server_show(rt: Runtime, args) -> int:
    rt.open_db()
    rt.out(server_view(fleet.server_named(args.name)), fields)
    return 0


@command("server edit")
def cmd_server_edit(rt: Runtime, args) -> int:
    rt.open_db()
    changes = {k: getattr(args, k) for k in ("host", "port", "group", "max_accounts", "max_concurrency") if getattr(args, k) is not None}
    if args.credential:
        changes["credentials"] = read_credentials(args.credential)
    edited = fleet.edit_server(rt.registry(), rt.vault, args.name, changes, audit.cli_actor())
    warn(edited.warnings)
    rt.out(server_view(edited.row) | {"changed": edited.changed, "warnings": edited.warnings},
           edited_text("server", edited.row.name, edited.changed))
    return 0


@command("server disable")
def cmd_server_disable(rt: Runtime, args) -> int:
    rt.open_db()
    server = fleet.set_enabled(args.name, False, audit.cli_actor())
    rt.out(server_view(server), f"server {server.name} disabled: it takes no new order; "
           "its queued jobs still run")
    return 0


@command("server enable")
def cmd_server_enable(rt: Runtime, args) -> int:
    rt.open_db()
    server = fleet.set_enabled(args.name, True, audit.cli_actor())
    rt.out(server_view(server), f"server {server.name} enabled: new orders may be placed on it")
    return 0


@command("server remove")
def cmd_server_remove(rt: Runtime, args) -> int:
    rt.open_db()
    removed = fleet.remove_server(args.name, audit.cli_actor())
    rt.out(removed, f"server {removed['name']} removed ({removed['services_detached']} ended services "
           "keep their records)")
    return 0


@command("server test")
def cmd_server_test(rt: Runtime, args) -> int:
    from provisiond.worker import test_server
    rt.open_db()
    server = catalog.server(args.name)
    outcome = test_server(rt.settings, rt.vault, rt.registry(), server)
    rt.out(outcome, lambda o: f"server {server.name}: {o['health']}"
           + (f" ({o['message']})" if o.get("message") else ""))
    return 0 if outcome["health"] == "ok" else 1


@command("server action")
def cmd_server_action(rt: Runtime, args) -> int:
    from provisiond import actions
    rt.open_db()
    answer = actions.run(rt.settings, rt.vault, rt.registry(), action=args.action,
                         server=catalog.server(args.name), params=kv(args.param, "params"))
    rt.out(answer, fields if answer else "done")
    return 0


def add_parsers(sub, group, top) -> None:
    gg = group("group", "server groups")
    p = sub(gg, "add", "add a server group")
    p.add_argument("name", help="the group's name, e.g. web")
    p.add_argument("--strategy", default="least-loaded",
                   choices=[s.value for s in Strategy],
                   help="how orders are placed on the group's servers (default least-loaded)")
    sub(gg, "list", "list server groups, with their servers and products")
    p = sub(gg, "edit", "change a group's placement strategy (applies to new orders)")
    p.add_argument("name", help="the group's name")
    p.add_argument("--strategy", choices=["least-loaded", "fill-until-full", "round-robin"],
                   help="how orders are placed on the group's servers")
    p = sub(gg, "remove", "remove a group no server or product uses")
    p.add_argument("name", help="the group's name")

    sg = group("server", "servers")
    p = sub(sg, "add", "add a server")
    p.add_argument("name", help="the server's name in provisiond, e.g. whm1")
    p.add_argument("--panel", required=True, help="panel id, a folder of playbooks/ (see `panels list`)")
    p.add_argument("--host", required=True, metavar="HOSTNAME|IP", help="the panel's hostname or IP address")
    p.add_argument("--port", type=positive, help="the panel's port (default: the panel's own)")
    p.add_argument("--group", required=True, help="the server group it joins")
    p.add_argument("--max-accounts", type=int, default=500,
                   help="accounts placed on it at most (default 500)")
    p.add_argument("--max-concurrency", type=int, default=2, metavar="N",
                   help="panel calls made to it at once, at most, 1-64 (default 2): every run on it and "
                        "every fork of them counts; lower it to protect a busy panel")
    p.add_argument("--credential", action="append", metavar="KEY=VALUE",
                   help="a credential field, repeated for each; KEY=@FILE reads the value from a file, "
                        "KEY=- from stdin (keeps tokens and keys out of ps and shell history)")
    p.add_argument("--test", action="store_true",
                   help="run the panel's test_connection with these settings first; save nothing unless it "
                        "passes (exit 2 with the panel's answer)")
    sub(sg, "list", "list servers")
    p = sub(sg, "show", "show a server (credentials masked)")
    p.add_argument("name", help="the server's name")
    p = sub(sg, "edit", "change a server; fields not given are kept")
    p.add_argument("name", help="the server's name")
    p.add_argument("--host", metavar="HOSTNAME|IP", help="the panel's hostname or IP address (an SSH panel's "
                   "host key is then pinned again by `server test`)")
    p.add_argument("--port", type=positive, help="the panel's port")
    p.add_argument("--group", help="the server group it moves to (its accounts stay on it)")
    p.add_argument("--max-accounts", type=int, help="accounts placed on it at most")
    p.add_argument("--max-concurrency", type=int, metavar="N",
                   help="panel calls made to it at once, at most, 1-64 (from its next run on)")
    p.add_argument("--credential", action="append", metavar="KEY=VALUE",
                   help="a credential field to change, repeated for each; a secret given blank (KEY=) is "
                        "kept; KEY=@FILE reads a file, KEY=- stdin")
    for name, text in (("disable", "take no new orders on a server (its queued jobs still run)"),
                       ("enable", "place new orders on a disabled server again"),
                       ("remove", "remove a server whose services are all terminated or closed")):
        sub(sg, name, text).add_argument("name", help="the server's name")
    p = sub(sg, "test", "check that provisiond can talk to a server")
    p.add_argument("name", help="the server's name")
    p = sub(sg, "action", "run an action the server's panel declares (e.g. list_packages)")
    p.add_argument("name", help="the server's name")
    p.add_argument("action", help="an action of the panel's admin_actions")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter of the action; repeat")
    sync.add_server_sync(sub, sg)
