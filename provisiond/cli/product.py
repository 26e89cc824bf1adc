"""`provisiond product`: what orders name, bound to a panel, a group and a package."""

from __future__ import annotations

import sys

from provisiond import catalog
from provisiond.cli.base import Runtime, command, kv


@command("product add")
def cmd_product_add(rt: Runtime, args) -> int:
    rt.open_db()
    product = catalog.add_product(rt.registry(), name=args.name, panel=args.panel, group_name=args.group,
                                  package=args.package, config=kv(args.config, "config"),
                                  suspend_after_days=args.suspend_after_days,
                                  terminate_after_days=args.terminate_after_days, steps=args.step or (),
                                  role_dirs=rt.settings.role_dirs(), welcome_password=args.welcome_password,
                                  backup_before_terminate=args.backup_before_terminate)
    warning = catalog.panel_gap(product)
    if warning:
        print(f"provisiond: warning: {warning}", file=sys.stderr)
    rt.out({"id": product.id, "name": product.name, "panel": product.panel, "package": product.package,
            "config": product.config, "steps": product.extra_roles, "warnings": [warning] if warning else []},
           f"product {product.name} added ({product.panel}, {product.package})")
    return 0


def add_parsers(sub, group, top) -> None:
    prg = group("product", "products")
    p = sub(prg, "add", "add a product")
    p.add_argument("name", help="the product's name, as orders name it")
    p.add_argument("--panel", required=True, help="panel id; the product is placed only on its servers")
    p.add_argument("--group", required=True, help="the server group its services are placed in")
    p.add_argument("--package", required=True, help="the panel's package or plan name")
    p.add_argument("--config", action="append", metavar="KEY=VALUE",
                   help="a package setting the panel declares (e.g. quota=2048); repeat")
    p.add_argument("--suspend-after-days", type=int, metavar="DAYS",
                   help="days overdue before suspension, 0-3650 (default: suspend_after_days)")
    p.add_argument("--terminate-after-days", type=int, metavar="DAYS",
                   help="days overdue before termination, 0-3650 (default: terminate_after_days)")
    p.add_argument("--step", action="append", metavar="ROLE",
                   help="an extra step run after create (a role; repeat, in order)")
    p.add_argument("--welcome-password", action="store_true", help="put the password in the welcome mail")
    p.add_argument("--backup-before-terminate", action="store_true",
                   help="take a final backup before the account is removed")
