"""Changing and retiring what admins set up: servers, server groups and products.

Adding lives in ``catalog``; this module edits, disables and removes, with the same checks, and
is the one implementation the CLI and the HTTP API call. Every change is written in one
transaction with its audit entry (field names; never a secret's value), and an operation that
refuses writes nothing.

Removing keeps history whole:

- a server is removed only when every service that was on it is terminated or closed and no
  job of it is queued or running; those services and their jobs keep their records and logs,
  detached from the server (``server`` becomes null; each log keeps its panel, and the audit
  entry of the removal names the server, its panel and host);
- a group is removed only when no server and no product uses it;
- a product is removed only when no service, in any state, names it: a terminated service
  keeps its product, so a product with history stays (edit it instead, orders then get the
  new settings).

An edited product changes new orders only: existing services keep their package unless a
``change-package`` is queued for them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from peewee import fn

from provisiond import audit, catalog, checkout as checkouts, inputs, ssh, stepneeds
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import NotFound, ProvisiondError, StateError, ValidationError
from provisiond.models import (OPEN_JOB_STATUSES, Job, Product, ProvisioningLog, Server, ServerGroup, Service,
                               ServiceStatus, database)
from provisiond.panels import Panel, Registry
from provisiond.policies import Strategy

OCCUPYING = (ServiceStatus.PENDING.value, ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value)
ENDED = (ServiceStatus.TERMINATED.value, ServiceStatus.CLOSED.value)
SERVER_FIELDS = ("host", "port", "group", "max_accounts", "max_concurrency", "credentials")
PRODUCT_FIELDS = ("package", "config", "suspend_after_days", "terminate_after_days", "steps",
                  "welcome_password", "backup_before_terminate", "checkout")
PACKAGE_SERVERS_TRIED = 3  # servers asked for their packages before giving up with a warning


@dataclasses.dataclass
class Edited:
    """What an edit did: the row, the names of the fields that changed, and warnings to show."""

    row: Any
    changed: list[str]
    warnings: list[str]


# -- lookups ---------------------------------------------------------------------------------

def server_named(name: str) -> Server:
    """The server called ``name`` (or with that id); NotFound (404, exit 2) if none."""
    return catalog.server(name)


def group_named(name: str) -> ServerGroup:
    found = ServerGroup.get_or_none(ServerGroup.name == name) if inputs.REF.match(name or "") else None
    if found is None:
        raise NotFound(f"group {name} does not exist")
    return found


def product_named(name: str) -> Product:
    found = Product.get_or_none(Product.name == name) if inputs.REF.match(name or "") else None
    if found is None:
        raise NotFound(f"product {name} does not exist")
    return found


def placed(server: Server) -> int:
    """Accounts that count against the server's ``max_accounts`` (pending, active, suspended)."""
    return Service.select().where((Service.server == server) & Service.status.in_(OCCUPYING)).count()


def placed_by_server() -> dict[int, int]:
    """``placed`` of every server at once (server id -> accounts; a server holding none is
    absent), in one grouped query, for pages listing the whole fleet."""
    return dict(Service.select(Service.server, fn.COUNT(Service.id))
                .where(Service.status.in_(OCCUPYING) & Service.server.is_null(False))
                .group_by(Service.server).tuples())


def _unknown(changes: Mapping[str, Any], known: Sequence[str]) -> None:
    for key in changes:
        if key not in known:
            raise ValidationError(key, f"cannot be changed (fields: {', '.join(known)})")


# -- servers ---------------------------------------------------------------------------------

def edit_server(registry: Registry, vault: Vault, name: str, changes: Mapping[str, Any], actor: str) -> Edited:
    """Change some of a server's ``host``, ``port``, ``group``, ``max_accounts``,
    ``max_concurrency`` (from the next run on it) and ``credentials``; what is not given is kept, and a blank or masked secret keeps the stored one.

    A changed host or port of an SSH panel drops the pinned host key: `server test` pins the new
    one, and no job runs on the server until then. A changed connection makes the health unknown.
    """
    _unknown(changes, SERVER_FIELDS)
    with database.atomic():
        server = server_named(name)
        panel = registry.get(server.panel)
        new = _checked_server_fields(panel, vault, server, changes)
        changed = [k for k in ("host", "port", "max_accounts", "max_concurrency") if k in new and new[k] != getattr(server, k)]
        if "group" in new and new["group"].id != server.group_id:
            changed.append("group")
        old_credentials = catalog.open_credentials(server.credentials, vault, server.name)
        new_credentials = new.get("credentials", old_credentials)
        changed_credentials = sorted(k for k in set(old_credentials) | set(new_credentials)
                                     if new_credentials.get(k) != old_credentials.get(k))
        warnings = _server_warnings(server, panel, new, changed)
        if not changed and not changed_credentials:
            return Edited(server, [], warnings)
        detail = {k: [_plain(getattr(server, k)), _plain(new[k])] for k in changed}
        for key in changed:
            setattr(server, key, new[key])
        if changed_credentials:
            server.credentials = catalog.seal_credentials(panel, new["credentials"], vault)
        if panel.connection == "ssh" and ({"host", "port"} & set(changed)) and server.host_key:
            server.host_key = None
            warnings.append(f"the pinned SSH host key of {server.name} was dropped (host or port changed); "
                            f"run `provisiond server test {server.name}` to pin the new one: no job runs "
                            "on it until then")
        saved = [getattr(Server, k) for k in changed] + [Server.credentials, Server.host_key]
        if {"host", "port"} & set(changed) or changed_credentials:
            server.health, server.health_message = "unknown", "connection changed; not tested since"
            saved += [Server.health, Server.health_message]
        server.save(only=saved)  # only what the edit sets: the daemon may record a health check meanwhile
        names = changed + [f"credentials.{k}" for k in changed_credentials]
        # Credential names only: a secret's value (or a hint of it) never reaches the trail.
        audit.record(actor, "server.edit", f"server:{server.name}", fields=names, **detail)
    return Edited(server, names, warnings)


def _plain(value: Any) -> Any:
    return value.name if isinstance(value, ServerGroup) else value


def _checked_server_fields(panel: Panel, vault: Vault, server: Server, changes: Mapping[str, Any]) -> dict:
    """The given fields, checked as `server add` checks them; nothing is written here."""
    new: dict[str, Any] = {}
    if "host" in changes:
        new["host"] = inputs.host(changes["host"])
    if "port" in changes:
        port = changes["port"]
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise ValidationError("port", "must be between 1 and 65535")
        new["port"] = port
    if "max_accounts" in changes:
        value = changes["max_accounts"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= catalog.MAX_INT:
            raise ValidationError("max_accounts", f"must be between 0 and {catalog.MAX_INT}")
        new["max_accounts"] = value
    if "max_concurrency" in changes:
        new["max_concurrency"] = catalog.concurrency(changes["max_concurrency"])
    if "group" in changes:
        new["group"] = catalog.group(changes["group"])
    if "credentials" in changes:
        given = changes["credentials"] or {}
        if not isinstance(given, Mapping):
            raise ValidationError("credentials", "must be an object of field: value")
        stored = catalog.open_credentials(server.credentials, vault, server.name)
        new["credentials"] = panel.check_credentials(given, stored=stored)
        if panel.connection == "ssh" and "private_key" in given:
            ssh.check_private_key(str(new["credentials"].get("private_key", "")))
    return new


def _server_warnings(server: Server, panel: Panel, new: Mapping[str, Any], changed: list[str]) -> list[str]:
    warnings = []
    if "max_accounts" in changed:
        count = placed(server)
        if new["max_accounts"] < count:
            warnings.append(f"server {server.name} holds {count} accounts, more than the new max_accounts "
                            f"{new['max_accounts']}: it takes no new order until it holds fewer")
    if "group" in changed:
        staying = Service.select().where((Service.server == server) & Service.status.in_(OCCUPYING)).count()
        if staying:
            warnings.append(f"the {staying} accounts on {server.name} stay on it; only new orders of group "
                            f"{new['group'].name} are placed there")
    return warnings


def set_enabled(name: str, enabled: bool, actor: str) -> Server:
    """Disable a server (it takes no new order; its queued jobs still run) or enable it again."""
    with database.atomic():
        server = server_named(name)
        if server.enabled != enabled:
            Server.update(enabled=enabled).where(Server.id == server.id).execute()
            server.enabled = enabled
            audit.record(actor, "server.enable" if enabled else "server.disable", f"server:{server.name}")
    return server


def remove_server(name: str, actor: str) -> dict:
    """Remove a server whose services are all terminated or closed and that has no open job.

    Those services, their jobs and logs keep their records, detached from the server (see the
    module docstring). A StateError (409, exit 2) names what still holds it.
    """
    with database.atomic():
        server = server_named(name)
        held = (Service.select().where((Service.server == server) & Service.status.not_in(ENDED)).count())
        if held:
            raise StateError(f"server {server.name} holds {held} services that are not terminated or closed; "
                             "terminate or move them first (or `server disable` it to take no new order)")
        running = Job.select().where((Job.server == server) & Job.status.in_(OPEN_JOB_STATUSES)).count()
        if running:
            raise StateError(f"server {server.name} has {running} queued or running jobs; wait for them or "
                             "cancel them first")
        detached = Service.update(server=None).where(Service.server == server).execute()
        jobs = Job.update(server=None).where(Job.server == server).execute()
        ProvisioningLog.update(server=None).where(ProvisioningLog.server == server).execute()
        audit.record(actor, "server.remove", f"server:{server.name}", panel=server.panel, host=server.host,
                     group=server.group.name, services_detached=detached, jobs_detached=jobs)
        server.delete_instance()
    return {"name": server.name, "removed": True, "services_detached": detached, "jobs_detached": jobs}


# -- groups ----------------------------------------------------------------------------------

def list_groups() -> list[ServerGroup]:
    return list(ServerGroup.select().order_by(ServerGroup.name))


def edit_group(name: str, changes: Mapping[str, Any], actor: str) -> Edited:
    """Change a group's placement ``strategy``; it applies from the next order on."""
    _unknown(changes, ("strategy",))
    with database.atomic():
        found = group_named(name)
        strategy = changes.get("strategy", found.strategy)
        if strategy not in {s.value for s in Strategy}:
            raise ValidationError("strategy", f"must be one of {', '.join(s.value for s in Strategy)}")
        if strategy == found.strategy:
            return Edited(found, [], [])
        audit.record(actor, "group.edit", f"group:{found.name}", fields=["strategy"],
                     strategy=[found.strategy, strategy])
        found.strategy = strategy
        found.save()
    return Edited(found, ["strategy"], [])


def remove_group(name: str, actor: str) -> dict:
    """Remove a group that no server and no product uses; a StateError names those that do."""
    with database.atomic():
        found = group_named(name)
        servers = [s.name for s in Server.select(Server.name).where(Server.group == found).order_by(Server.name)]
        products = [p.name for p in Product.select(Product.name).where(Product.group == found).order_by(Product.name)]
        if servers or products:
            users = ([f"servers {', '.join(servers)}"] if servers else []) + \
                    ([f"products {', '.join(products)}"] if products else [])
            raise StateError(f"group {found.name} is used by {' and '.join(users)}; move or remove them first")
        audit.record(actor, "group.remove", f"group:{found.name}", strategy=found.strategy)
        found.delete_instance()
    return {"name": found.name, "removed": True}


# -- products --------------------------------------------------------------------------------

def list_products() -> list[Product]:
    return list(Product.select().order_by(Product.name))


def service_counts(product: Product) -> dict[str, int]:
    """How many services of the product are in each status."""
    rows = (Service.select(Service.status, fn.COUNT(Service.id).alias("n")).where(Service.product == product)
            .group_by(Service.status))
    return {row.status: row.n for row in rows}


def add_product(settings: Settings, vault: Vault, registry: Registry, **fields: Any) -> Edited:
    """`catalog.add_product`, with the package checked against the panel's own list."""
    warnings: list[str] = []

    def packages(panel: Panel, group: ServerGroup, package: str) -> None:
        warnings.extend(check_package(settings, vault, registry, panel, group, package))

    product = catalog.add_product(registry, role_dirs=settings.role_dirs(), check_package=packages, **fields)
    gap = catalog.panel_gap(product)
    warnings += step_warnings(settings, registry, product, product.extra_roles)
    return Edited(product, [], ([gap] if gap else []) + warnings)


def step_warnings(settings: Settings, registry: Registry, product: Product, steps: Sequence[str]) -> list[str]:
    """``stepneeds.product_warnings`` for ``steps`` of ``product``: a step of another panel, and
    each server of its group and panel whose stated key cannot run one."""
    return stepneeds.product_warnings(registry.get(product.panel), steps, Server.select().where(
        (Server.group == product.group) & (Server.panel == product.panel)), settings.role_dirs())


def edit_product(settings: Settings, vault: Vault, registry: Registry, name: str, changes: Mapping[str, Any],
                 actor: str) -> Edited:
    """Change some of a product's settings (``PRODUCT_FIELDS``); new orders get them, existing
    services keep their package unless a change-package is queued for them.

    ``config`` is merged into the current one; a key given blank (or null) is removed, so the
    plan's own value applies again. ``suspend_after_days``/``terminate_after_days`` null means
    the daemon's default.
    """
    _unknown(changes, PRODUCT_FIELDS)
    product = product_named(name)
    panel = registry.get(product.panel)
    new = _checked_product_fields(panel, settings, product, changes)
    warnings = []
    if new["package"] != product.package:
        warnings += check_package(settings, vault, registry, panel, product.group, new["package"])
    with database.atomic():
        product = product_named(name)
        current = {"package": product.package, "config": product.config,
                   "suspend_after_days": product.suspend_after_days,
                   "terminate_after_days": product.terminate_after_days, "steps": product.extra_roles,
                   "welcome_password": product.welcome_password,
                   "backup_before_terminate": product.backup_before_terminate, "checkout": product.checkout}
        changed = [k for k in PRODUCT_FIELDS if new[k] != current[k]]
        if not changed:
            return Edited(product, [], warnings)
        for key in changed:
            setattr(product, "extra_roles" if key == "steps" else key, new[key])
        product.save(only=[getattr(Product, "extra_roles" if k == "steps" else k) for k in changed])
        audit.record(actor, "product.edit", f"product:{product.name}", fields=changed,
                     **{k: [current[k], new[k]] for k in changed})
    if "package" in changed:
        keeping = (Service.select().where((Service.product == product) & Service.status.in_(OCCUPYING)
                                          & (Service.package != product.package)).count())
        if keeping:
            warnings.append(f"{keeping} existing services of {product.name} keep their package; queue "
                            "`service change-package` for those that should move to "
                            f"{product.package}")
    if "steps" in changed:  # the steps it adds, warned about as product add warns
        warnings += step_warnings(settings, registry, product,
                                  [step for step in new["steps"] if step not in (current["steps"] or [])])
    return Edited(product, changed, warnings)


def _checked_product_fields(panel: Panel, settings: Settings, product: Product,
                            changes: Mapping[str, Any]) -> dict:
    """The product's settings after ``changes``, all checked; nothing is written here."""
    new = {"package": product.package, "config": dict(product.config or {}),
           "suspend_after_days": product.suspend_after_days,
           "terminate_after_days": product.terminate_after_days, "steps": list(product.extra_roles or []),
           "welcome_password": product.welcome_password,
           "backup_before_terminate": product.backup_before_terminate, "checkout": list(product.checkout or [])}
    if "package" in changes:
        new["package"] = inputs.package(changes["package"])
    if "config" in changes:
        given = changes["config"] or {}
        if not isinstance(given, Mapping):
            raise ValidationError("config", "must be an object of field: value")
        merged = {**new["config"], **given}
        new["config"] = panel.check_package_config({k: v for k, v in merged.items() if v not in (None, "")})
    for key in ("suspend_after_days", "terminate_after_days"):
        if key in changes:
            value = changes[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValidationError(key, "must be a whole number of days, or null for the default")
            new[key] = value
    if "steps" in changes:
        steps = changes["steps"] or []
        if not isinstance(steps, (list, tuple)) or not all(isinstance(s, str) for s in steps):
            raise ValidationError("steps", "must be a list of role names")
        new["steps"] = list(steps)
    if "checkout" in changes:  # the product's own fields, all of them (none: {})
        new["checkout"] = checkouts.product_spec(panel, changes["checkout"] or {})
    for key in ("welcome_password", "backup_before_terminate"):
        if key in changes:
            if not isinstance(changes[key], bool):
                raise ValidationError(key, "must be true or false")
            new[key] = changes[key]
    catalog.check_product_rules(panel, suspend_after_days=new["suspend_after_days"],
                                terminate_after_days=new["terminate_after_days"], steps=new["steps"],
                                role_dirs=settings.role_dirs(),
                                backup_before_terminate=new["backup_before_terminate"])
    return new


def remove_product(name: str, actor: str) -> dict:
    """Remove a product no service names; a StateError says how many do, and in which states."""
    with database.atomic():
        product = product_named(name)
        counts = service_counts(product)
        if counts:
            states = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            raise StateError(f"product {product.name} is used by {sum(counts.values())} services ({states}); "
                             "terminated and closed services keep their product, so it stays (edit it "
                             "to change what new orders get)")
        audit.record(actor, "product.remove", f"product:{product.name}", panel=product.panel,
                     package=product.package)
        product.delete_instance()
    return {"name": product.name, "removed": True}


# -- packages --------------------------------------------------------------------------------

def check_package(settings: Settings, vault: Vault, registry: Registry, panel: Panel, group: ServerGroup,
                  package: str) -> list[str]:
    """Check ``package`` against what a server of ``group`` on ``panel`` offers (its panel's
    ``list_packages`` action), asking up to three servers, enabled ones first.

    An unknown package is a ValidationError naming the packages offered; when no server can be
    asked or none answers, the answer is a warning, because the package may well exist.
    """
    if not panel.declares("list_packages"):
        return []
    servers = list(Server.select().where((Server.group == group) & (Server.panel == panel.id))
                   .order_by(Server.enabled.desc(), Server.id).limit(PACKAGE_SERVERS_TRIED))
    if not servers:
        return [f"package {package!r} is not checked: group {group.name} has no {panel.id} server to ask"]
    failures = []
    for server in servers:
        try:
            offered = actions_run(settings, vault, registry, server).get("packages")
        except ProvisiondError as exc:
            failures.append(f"{server.name}: {exc}")
            continue
        if not isinstance(offered, list):
            failures.append(f"{server.name}: list_packages reported no package list")
            continue
        if package not in offered:
            raise ValidationError("package", f"{package!r} is not a package of server {server.name} "
                                  f"(it offers: {', '.join(map(str, offered)) or 'none'})")
        return []
    return [f"package {package!r} is not checked: no server answered list_packages ({'; '.join(failures)})"]


def actions_run(settings: Settings, vault: Vault, registry: Registry, server: Server) -> dict:
    from provisiond import actions  # actions imports the worker; only this check needs it
    return actions.run(settings, vault, registry, action="list_packages", server=server)

