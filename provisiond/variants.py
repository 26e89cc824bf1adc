"""Product variants: package settings (and optionally another package) over a product's own.

A variant "pro-12m" of product "starter" overrides some of the product's package settings
(``product.config``, checked by the panel manifest's ``package:`` block like a product's),
and may name another package. An order may name a variant; a change-package may move a
service to another one. What the panel gets is always the merge: the product's settings with
the variant's on top (``settings_for``), and the variant's package if it names one.

A variant is removed only while no service names it (a terminated service keeps its variant,
like its product); a product removed (no service names it) takes its variants with it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import peewee as pw

from provisiond import audit, catalog, inputs
from provisiond.errors import StateError, ValidationError
from provisiond.models import OPEN_JOB_STATUSES, Job, Product, ProductVariant, Service, database
from provisiond.panels import Panel, Registry


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the panel gets for a service: its package and the package settings."""
    package: str
    config: dict


def variant_of(product: Product, name: str) -> ProductVariant:
    """The product's variant ``name``; a ValidationError naming ``variant`` (and the product's
    variants) when it has none of that name."""
    found = (ProductVariant.get_or_none((ProductVariant.product == product) & (ProductVariant.name == name))
             if isinstance(name, str) and inputs.REF.match(name) else None)
    if found is None:
        known = [v.name for v in product.variants.order_by(ProductVariant.name)]
        raise ValidationError("variant", f"product {product.name} has no variant {name!r} "
                              f"(its variants: {', '.join(known) or 'none'})")
    return found


def settings_for(product: Product, variant: ProductVariant | None) -> Settings:
    """The product's package and settings with ``variant``'s over them."""
    if variant is None:
        return Settings(product.package, dict(product.config or {}))
    return Settings(variant.package or product.package, {**(product.config or {}), **(variant.config or {})})


def checked_config(panel: Panel, given: Mapping[str, Any]) -> dict:
    """A variant's settings checked by the panel's ``package:`` block; only the keys given are
    kept (a default the variant did not set must not hide the product's own value)."""
    if not isinstance(given, Mapping):
        raise ValidationError("config", "must be an object of field: value")
    checked = panel.check_package_config(given)
    return {k: v for k, v in checked.items() if k in given}


def add(registry: Registry, product_name: str, name: str, config: Mapping[str, Any] | None = None,
        package: str | None = None, *, actor: str,
        check_package: Callable[[Panel, Product, str], list[str]] | None = None) -> tuple[ProductVariant, list[str]]:
    """Add variant ``name`` of a product; returns it and warnings (a package not checked).

    ``check_package`` (see ``fleet.check_package``) asks a panel, so it runs after the other
    checks and outside the write."""
    product = catalog.product(product_name)
    if not name or not inputs.REF.match(name):
        raise ValidationError("name", f"{name!r} must be 1-100 letters, digits, '.', '_', ':' or '-'")
    panel = registry.get(product.panel)
    checked = checked_config(panel, config or {})
    if package is not None:
        inputs.package(package)
    if not checked and package is None:
        raise ValidationError("config", "a variant sets at least one package setting or a package")
    _refuse_taken(product, name)
    warnings = check_package(panel, product, package) if check_package and package else []
    try:
        with database.atomic():
            _refuse_taken(product, name)
            variant = ProductVariant.create(product=product, name=name, package=package, config=checked)
            audit.record(actor, "variant.add", f"product:{product.name}", variant=name, package=package,
                         config=checked)
    except pw.IntegrityError:
        raise ValidationError("name", f"product {product.name} has a variant {name!r} already") from None
    return variant, warnings


def _refuse_taken(product: Product, name: str) -> None:
    if ProductVariant.select().where((ProductVariant.product == product) & (ProductVariant.name == name)).exists():
        raise ValidationError("name", f"product {product.name} has a variant {name!r} already")


def listed(product_name: str) -> list[ProductVariant]:
    return list(catalog.product(product_name).variants.order_by(ProductVariant.name))


def remove(product_name: str, name: str, *, actor: str) -> dict:
    """Remove a variant no service names (in any state); a StateError says how many do."""
    with database.atomic():
        variant = variant_of(catalog.product(product_name), name)
        using = Service.select().where(Service.variant == variant).count()
        if using:
            raise StateError(f"variant {name} of product {product_name} is named by {using} services; "
                             "move them to another variant first (terminated services keep theirs)")
        moving = [job.id for job in Job.select().join(Service).where(
            (Job.action == "change_package") & Job.status.in_(OPEN_JOB_STATUSES)
            & (Service.product == variant.product_id)) if job.params.get("variant") == name]
        if moving:
            raise StateError(f"variant {name} of product {product_name} is the goal of queued change-package "
                             f"jobs {', '.join(map(str, moving))}; wait for them or cancel them first")
        audit.record(actor, "variant.remove", f"product:{product_name}", variant=name)
        variant.delete_instance()
    return {"product": product_name, "name": name, "removed": True}


def view(variant: ProductVariant) -> dict:
    """A variant as the CLI and the API show it, with what the panel gets."""
    merged = settings_for(variant.product, variant)
    return {"name": variant.name, "product": variant.product.name, "package": variant.package,
            "config": variant.config or {}, "panel_package": merged.package, "panel_config": merged.config,
            "services": Service.select().where(Service.variant == variant).count()}


def change_params(product: Product, package: str | None, variant: str | None) -> dict:
    """A change_package job's parameters: ``package`` (the variant's, or the product's, unless
    given) and ``variant`` when one is named."""
    if variant is None:
        if not package:
            raise ValidationError("package", "is required (or a variant of the product)")
        return {"package": inputs.package(package)}
    chosen = variant_of(product, variant)
    return {"package": inputs.package(package) if package else settings_for(product, chosen).package,
            "variant": chosen.name}


def moved_to(service: Service, params: Mapping[str, Any]) -> dict:
    """The service's new variant once its change_package succeeded (nothing without one)."""
    if "variant" not in params:
        return {}
    found = ProductVariant.get_or_none((ProductVariant.product == service.product_id)
                                       & (ProductVariant.name == params["variant"]))
    return {"variant": found.id} if found is not None else {}


def package_config(service: Service, params: Mapping[str, Any]) -> dict:
    """The package settings a run for ``service`` sends: the product's, with those of the variant
    the job moves it to (``params["variant"]``) or else of the service's own variant over them."""
    variant = service.variant if service.variant_id else None
    if "variant" in params:
        variant = ProductVariant.get_or_none((ProductVariant.product == service.product_id)
                                             & (ProductVariant.name == params["variant"])) or variant
    return settings_for(service.product, variant).config


def package_checker(settings, vault, registry: Registry) -> Callable[[Panel, Product, str], list[str]]:
    """``add``'s ``check_package``: the package asked of a server of the product's group, as a
    product's is (``fleet.check_package``)."""
    from provisiond import fleet

    def check(panel: Panel, product: Product, package: str) -> list[str]:
        return fleet.check_package(settings, vault, registry, panel, product.group, package)
    return check
