"""How services, servers, groups and products look to the CLI and the API: the same fields,
never a secret (server credentials are masked)."""

from __future__ import annotations

from provisiond import catalog, checkout, fleet, ssh
from provisiond.models import Product, ProductVariant, Server, ServerGroup, Service
from provisiond.panels import Registry


def service_view(service: Service) -> dict:
    """A service as both faces show it (no password, no server credentials)."""
    return {"id": service.id, "ref": service.ref, "product": service.product.name,
            "server": service.server.name if service.server_id else None, "domain": service.domain,
            "email": service.email, "name": service.name, "username": service.username,
            "remote_id": service.remote_id,
            "package": service.package, "variant": service.variant.name if service.variant_id else None,
            "status": service.status,
            "status_reason": service.status_reason, "pending_reason": service.pending_reason,
            "last_error": service.last_error, "paid_until": service.paid_until,
            "fields": service.fields or {},
            "created_at": service.created_at, "updated_at": service.updated_at}


def server_view(server: Server, placed: int | None = None) -> dict:
    """A server with its credentials masked and the accounts placed on it (``placed`` when
    the caller counted them for many servers at once, see ``fleet.placed_by_server``)."""
    return {"id": server.id, "name": server.name, "panel": server.panel, "host": server.host,
            "port": server.port, "group": server.group.name, "max_accounts": server.max_accounts,
            "max_concurrency": server.max_concurrency,
            "placed": fleet.placed(server) if placed is None else placed, "enabled": server.enabled, "health": server.health,
            "health_message": server.health_message,
            "host_key": ssh.fingerprint(server.host_key) if server.host_key else None,
            "credentials": catalog.masked_credentials(server.credentials)}


def group_view(group: ServerGroup) -> dict:
    return {"id": group.id, "name": group.name, "strategy": group.strategy,
            "servers": [s.name for s in group.servers.order_by(Server.name)],
            "products": [p.name for p in group.products.order_by(Product.name)]}


def product_view(product: Product, registry: Registry | None = None) -> dict:
    """A product's settings and how many of its services are in each status; with the panel
    ``registry`` (one product shown), its checkout schema (``checkout.json_schema``) and the
    names of its variants too."""
    view = {"id": product.id, "name": product.name, "panel": product.panel, "group": product.group.name,
            "package": product.package, "config": product.config or {},
            "suspend_after_days": product.suspend_after_days,
            "terminate_after_days": product.terminate_after_days, "steps": product.extra_roles or [],
            "welcome_password": product.welcome_password,
            "backup_before_terminate": product.backup_before_terminate,
            "services": fleet.service_counts(product)}
    if registry is not None:
        view["checkout"] = checkout.json_schema(registry.get(product.panel), product)
        view["variants"] = [v.name for v in product.variants.order_by(ProductVariant.name)]
    return view
