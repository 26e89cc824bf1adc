"""`provisiond product variant`: a product's variants, package settings over the product's."""

from __future__ import annotations

from provisiond import audit, variants
from provisiond.cli.base import Runtime, command, kv, table, warn


@command("product variant")
def cmd_product_variant(rt: Runtime, args) -> int:
    rt.open_db()
    return {"add": _add, "list": _list, "remove": _remove}[args.variant_action](rt, args)


def _add(rt: Runtime, args) -> int:
    registry = rt.registry()
    added, warnings = variants.add(registry, args.product, args.name, kv(args.config, "config"), args.package,
                                   actor=audit.cli_actor(),
                                   check_package=variants.package_checker(rt.settings, rt.vault, registry))
    warn(warnings)
    view = variants.view(added)
    settings = view["panel_config"] or "(the package's own)"
    rt.out(view | {"warnings": warnings}, f"variant {view['name']} of product {view['product']} added: "
           f"package {view['panel_package']}, settings {settings}")
    return 0


def _list(rt: Runtime, args) -> int:
    rows = [variants.view(v) for v in variants.listed(args.product)]
    rt.out(rows, lambda r: table(r, ["name", "package", "config", "panel_package", "panel_config", "services"]))
    return 0


def _remove(rt: Runtime, args) -> int:
    rt.out(variants.remove(args.product, args.name, actor=audit.cli_actor()),
           f"variant {args.name} of product {args.product} removed")
    return 0


def add_parsers(sub, product_group) -> None:
    """``product variant add|list|remove``, under the ``product`` command group."""
    p = sub(product_group, "variant", "a product's variants: package settings over the product's")
    actions = p.add_subparsers(dest="variant_action", required=True, metavar="ACTION")
    a = sub(actions, "add", "add a variant; orders and change-package name it")
    a.add_argument("product", help="the product's name")
    a.add_argument("name", help="the variant's name, as orders name it (e.g. pro-12m)")
    a.add_argument("--config", action="append", metavar="KEY=VALUE",
                   help="a package setting over the product's (the panel's package: fields); repeat")
    a.add_argument("--package", help="another package of the panel (default: the product's)")
    sub(actions, "list", "list a product's variants").add_argument("product", help="the product's name")
    r = sub(actions, "remove", "remove a variant no service names")
    r.add_argument("product", help="the product's name")
    r.add_argument("name", help="the variant's name")
