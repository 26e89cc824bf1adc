"""`provisiond group` and `provisiond server`: where accounts are placed."""

from __future__ import annotations

from provisiond import catalog
from provisiond.cli.base import Runtime, command, fields, kv, positive, read_credentials, server_view, table
from provisiond.models import Server
from provisiond.policies import Strategy


@command("group add")
def cmd_group_add(rt: Runtime, args) -> int:
    rt.open_db()
    group = catalog.add_group(args.name, args.strategy)
    rt.out({"id": group.id, "name": group.name, "strategy": group.strategy},
           f"group {group.name} added ({group.strategy})")
    return 0


@command("server add")
def cmd_server_add(rt: Runtime, args) -> int:
    rt.open_db()
    server = catalog.add_server(rt.registry(), rt.vault, name=args.name, panel=args.panel, host=args.host,
                                port=args.port, group_name=args.group, max_accounts=args.max_accounts,
                                credentials=read_credentials(args.credential))
    rt.out(server_view(server), f"server {server.name} added ({server.panel} at {server.host})")
    return 0


@command("server list")
def cmd_server_list(rt: Runtime, args) -> int:
    rt.open_db()
    rows = [server_view(s) for s in Server.select().order_by(Server.name)]
    rt.out(rows, lambda r: table(r, ["id", "name", "panel", "host", "port", "group", "max_accounts", "health"]))
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

    sg = group("server", "servers")
    p = sub(sg, "add", "add a server")
    p.add_argument("name", help="the server's name in provisiond, e.g. whm1")
    p.add_argument("--panel", required=True, help="panel id, a folder of playbooks/ (see `panels list`)")
    p.add_argument("--host", required=True, metavar="HOSTNAME|IP", help="the panel's hostname or IP address")
    p.add_argument("--port", type=positive, help="the panel's port (default: the panel's own)")
    p.add_argument("--group", required=True, help="the server group it joins")
    p.add_argument("--max-accounts", type=int, default=500,
                   help="accounts placed on it at most (default 500)")
    p.add_argument("--credential", action="append", metavar="KEY=VALUE",
                   help="a credential field, repeated for each; KEY=@FILE reads the value from a file, "
                        "KEY=- from stdin (keeps tokens and keys out of ps and shell history)")
    sub(sg, "list", "list servers")
    p = sub(sg, "test", "check that provisiond can talk to a server")
    p.add_argument("name", help="the server's name")
    p = sub(sg, "action", "run an action the server's panel declares (e.g. list_packages)")
    p.add_argument("name", help="the server's name")
    p.add_argument("action", help="an action of the panel's admin_actions")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter of the action; repeat")
