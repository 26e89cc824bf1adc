"""`provisiond product`: what orders name, bound to a panel, a group and a package."""

from __future__ import annotations

import argparse

import yaml

from provisiond import audit, fleet
from provisiond.cli import variant
from provisiond.cli.base import Runtime, command, edited_text, fields, kv, table, warn
from provisiond.errors import ValidationError
from provisiond.views import product_view


@command("product add")
def cmd_product_add(rt: Runtime, args) -> int:
    rt.open_db()
    added = fleet.add_product(rt.settings, rt.vault, rt.registry(), name=args.name, panel=args.panel,
                              group_name=args.group, package=args.package, config=kv(args.config, "config"),
                              suspend_after_days=args.suspend_after_days,
                              terminate_after_days=args.terminate_after_days, steps=args.step or (),
                              welcome_password=args.welcome_password,
                              backup_before_terminate=args.backup_before_terminate,
                              checkout=read_checkout(args.checkout))
    product = added.row
    warn(added.warnings)
    rt.out({"id": product.id, "name": product.name, "panel": product.panel, "package": product.package,
            "config": product.config, "steps": product.extra_roles,
            "checkout": product_view(product, rt.registry())["checkout"], "warnings": added.warnings},
           f"product {product.name} added ({product.panel}, {product.package})")
    return 0


@command("product list")
def cmd_product_list(rt: Runtime, args) -> int:
    rt.open_db()
    rows = [product_view(p) for p in fleet.list_products()]
    rt.out(rows, lambda r: table(r, ["id", "name", "panel", "group", "package", "services"]))
    return 0


@command("product show")
def cmd_product_show(rt: Runtime, args) -> int:
    rt.open_db()
    rt.out(product_view(fleet.product_named(args.name), rt.registry()),
           lambda v: fields(v | {"checkout": checkout_text(v["checkout"]),
                                 "variants": ", ".join(v["variants"]) or "-"}))
    return 0


@command("product edit")
def cmd_product_edit(rt: Runtime, args) -> int:
    rt.open_db()
    changes = {k: getattr(args, k) for k in ("package", "suspend_after_days", "terminate_after_days",
                                             "welcome_password", "backup_before_terminate")
               if getattr(args, k) is not None}
    for key in ("suspend_after_days", "terminate_after_days"):
        if changes.get(key) == DEFAULT:
            changes[key] = None
    if args.config:
        changes["config"] = kv(args.config, "config")
    if args.step or args.no_steps:
        changes["steps"] = args.step or []
    if args.checkout or args.no_checkout:
        changes["checkout"] = read_checkout(args.checkout) if args.checkout else {}
    edited = fleet.edit_product(rt.settings, rt.vault, rt.registry(), args.name, changes, audit.cli_actor())
    warn(edited.warnings)
    text = edited_text("product", edited.row.name, edited.changed)
    if edited.changed:
        text += "\n(new orders get it; existing services keep their package unless a change-package is queued)"
    rt.out(product_view(edited.row, rt.registry()) | {"changed": edited.changed, "warnings": edited.warnings}, text)
    return 0


@command("product remove")
def cmd_product_remove(rt: Runtime, args) -> int:
    rt.open_db()
    rt.out(fleet.remove_product(args.name, audit.cli_actor()), f"product {args.name} removed")
    return 0


def checkout_text(schema: dict) -> str:
    """A product's checkout fields on one line: ``mailbox (string, required, pattern ...); ...``."""
    shown = []
    for name, prop in schema["properties"].items():
        bits = [prop["type"], *(["required"] if name in schema["required"] else [])]
        bits += [f"{word} {prop[key]}" for key, word in (("pattern", "pattern"), ("minimum", "at least"),
                                                          ("maximum", "at most"), ("default", "default"))
                 if key in prop]
        if "enum" in prop:
            bits.append("one of " + ", ".join(map(str, prop["enum"])))
        shown.append(f"{name} ({', '.join(bits)}; the {prop['x-declared-by']}'s)")
    return "; ".join(shown) or "none"


def read_checkout(path: str | None) -> dict | None:
    """A product's own checkout fields from a YAML file: the mapping panel.yaml's ``checkout:``
    holds ({name: {type, label, pattern, choices, required, default}})."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle.read(CHECKOUT_FILE_LIMIT))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValidationError("checkout", f"{path} cannot be read as YAML ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise ValidationError("checkout", f"{path} must hold a mapping of field name to its definition")
    return raw


CHECKOUT_FILE_LIMIT = 256 * 1024
DEFAULT = "default"


def days(value: str) -> int | str:
    """A number of days, or ``default`` (the daemon's setting)."""
    if value == DEFAULT:
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days or 'default'") from None


def add_parsers(sub, group, top) -> None:
    prg = group("product", "products")
    p = sub(prg, "add", "add a product")
    p.add_argument("name", help="the product's name, as orders name it")
    p.add_argument("--panel", required=True, help="panel id; the product is placed only on its servers")
    p.add_argument("--group", required=True, help="the server group its services are placed in")
    p.add_argument("--package", required=True, help="the panel's package or plan name (checked against the "
                   "panel's list_packages where it has one)")
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
    p.add_argument("--checkout", metavar="FILE.yaml", help="the product's own checkout fields, beside its "
                   "panel's: a YAML mapping as panel.yaml's checkout: ({name: {type, label, pattern, choices, "
                   "required, default}})")

    sub(prg, "list", "list products, with their services by status")
    sub(prg, "show", "show a product").add_argument("name", help="the product's name")
    p = sub(prg, "edit", "change a product for new orders; fields not given are kept")
    p.add_argument("name", help="the product's name")
    p.add_argument("--package", help="the panel's package or plan name (existing services keep theirs)")
    p.add_argument("--config", action="append", metavar="KEY=VALUE",
                   help="a package setting to change; KEY= removes it (the plan's own applies); repeat")
    p.add_argument("--suspend-after-days", type=days, metavar="DAYS|default",
                   help="days overdue before suspension, 0-3650, or 'default'")
    p.add_argument("--terminate-after-days", type=days, metavar="DAYS|default",
                   help="days overdue before termination, 0-3650, or 'default'")
    p.add_argument("--step", action="append", metavar="ROLE",
                   help="the extra steps run after create, replacing the current ones (repeat, in order)")
    p.add_argument("--no-steps", action="store_true", help="run no extra step after create")
    p.add_argument("--welcome-password", action=argparse.BooleanOptionalAction, default=None,
                   help="put the password in the welcome mail (or not)")
    p.add_argument("--backup-before-terminate", action=argparse.BooleanOptionalAction, default=None,
                   help="take a final backup before the account is removed (or not)")
    p.add_argument("--checkout", metavar="FILE.yaml",
                   help="the product's own checkout fields, replacing the current ones (a YAML mapping)")
    p.add_argument("--no-checkout", action="store_true", help="no checkout field of the product's own")
    sub(prg, "remove", "remove a product no service uses").add_argument("name", help="the product's name")
    variant.add_parsers(sub, prg)
