"""What admins set up before orders come: server groups, servers and products.

Server credentials are checked against the panel's manifest; secret fields are stored
encrypted (``enc:`` + Fernet token) and shown masked.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import peewee as pw

from provisiond import checkout as checkouts, inputs, ssh, step_secrets
from provisiond.crypto import MASK, Vault
from provisiond.errors import NotFound, ProvisiondError, ValidationError
from provisiond.models import Product, Server, ServerGroup, database
from provisiond.panels import Panel, Registry
from provisiond.policies import MAX_DAYS, Strategy

ENCRYPTED = "enc:"
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_INT = 2**31 - 1  # an integer column on PostgreSQL


def add_group(name: str, strategy: str = Strategy.LEAST_LOADED.value) -> ServerGroup:
    if not name or not inputs.REF.match(name):
        raise ValidationError("name", f"{name!r} must be 1-100 letters, digits, '.', '_', ':' or '-'")
    if strategy not in {s.value for s in Strategy}:
        raise ValidationError("strategy", f"must be one of {', '.join(s.value for s in Strategy)}")
    try:
        return ServerGroup.create(name=name, strategy=strategy)
    except pw.IntegrityError:
        raise ValidationError("name", f"a group named {name!r} exists already") from None


def group(name: str) -> ServerGroup:
    found = ServerGroup.get_or_none(ServerGroup.name == name) if inputs.REF.match(name or "") else None
    if found is None:
        raise ValidationError("group", f"unknown group {name!r}")
    return found


def seal_credentials(panel: Panel, values: Mapping[str, Any], vault: Vault) -> dict:
    return {k: (ENCRYPTED + vault.encrypt(str(v)) if k in panel.secret_fields else v)
            for k, v in values.items()}


def open_credentials(stored: Mapping[str, Any], vault: Vault, server_name: str) -> dict:
    return {k: (vault.decrypt(v[len(ENCRYPTED):], f"credential {k} of server {server_name}")
                if isinstance(v, str) and v.startswith(ENCRYPTED) else v)
            for k, v in stored.items()}


def masked_credentials(stored: Mapping[str, Any]) -> dict:
    return {k: (MASK if isinstance(v, str) and v.startswith(ENCRYPTED) else v) for k, v in stored.items()}


@dataclasses.dataclass(frozen=True)
class NewServer:
    """A server's settings checked and not stored yet (``server add``; ``--test`` runs its
    test_connection on them first): ``credentials`` are in clear, for that run only."""
    name: str
    panel: Panel
    host: str
    port: int | None
    group: ServerGroup
    max_accounts: int
    max_concurrency: int
    credentials: dict


def check_server(registry: Registry, *, name: str, panel: str, host: str, group_name: str,
                 port: int | None = None, max_accounts: int = 500,
                 credentials: Mapping[str, Any] | None = None, max_concurrency: int = 2) -> NewServer:
    """A new server's settings, each checked (ValidationError naming the field); nothing written."""
    if not name or not inputs.REF.match(name):
        raise ValidationError("name", f"{name!r} must be 1-100 letters, digits, '.', '_', ':' or '-'")
    found = registry.get(panel)
    inputs.host(host)
    if port is not None and not 0 < int(port) < 65536:
        raise ValidationError("port", "must be between 1 and 65535")
    if not 0 <= int(max_accounts) <= MAX_INT:
        raise ValidationError("max_accounts", f"must be between 0 and {MAX_INT}")
    max_concurrency = concurrency(max_concurrency)
    checked = found.check_credentials(credentials or {})
    if found.connection == "ssh":
        ssh.check_private_key(str(checked.get("private_key", "")))
    target = group(group_name)
    if Server.select().where(Server.name == name).exists():
        raise ValidationError("name", f"a server named {name!r} exists already")
    return NewServer(name, found, host, port, target, int(max_accounts), max_concurrency, checked)


def save_server(new: NewServer, vault: Vault, *, host_key: str | None = None, **health: Any) -> Server:
    """Store a checked server; an SSH panel's host key is ``host_key`` (the one a test used),
    else fetched now (when the host cannot be reached, the first `server test` pins it)."""
    with database.atomic():
        if Server.select().where(Server.name == new.name).exists():
            raise ValidationError("name", f"a server named {new.name!r} exists already")
        created = Server.create(name=new.name, panel=new.panel.id, host=new.host, port=new.port, group=new.group,
                                max_accounts=new.max_accounts, max_concurrency=new.max_concurrency,
                                credentials=seal_credentials(new.panel, new.credentials, vault),
                                host_key=host_key, **health)
    if new.panel.connection == "ssh" and not host_key:
        try:
            pin_host_key(new.panel, created)
        except ProvisiondError as exc:  # unreachable now: pinned by the first `server test`
            created.health_message = str(exc)
            created.save()
    return created


def add_server(registry: Registry, vault: Vault, **fields: Any) -> Server:
    """Check and store a server (the fields of ``check_server``)."""
    return save_server(check_server(registry, **fields), vault)


MAX_CONCURRENCY = 64


def concurrency(value: Any) -> int:
    """A server's ``max_concurrency``, checked: the panel calls made to it at once (1..64)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ValidationError("max_concurrency", f"must be a whole number between 1 and {MAX_CONCURRENCY}, "
                                                 f"got {value!r}")
    return value


def pin_host_key(panel: Panel, server: Server) -> str:
    """Fetch and store the SSH host key of a server that has none pinned yet."""
    server.host_key = ssh.fetch_host_key(server.host, server.port or panel.default_port or 22)
    Server.update(host_key=server.host_key).where(Server.id == server.id).execute()
    return server.host_key


def update_server_credentials(registry: Registry, vault: Vault, server: Server,
                              credentials: Mapping[str, Any]) -> Server:
    """Change some credentials; a blank or masked secret keeps the stored one."""
    found = registry.get(server.panel)
    stored = open_credentials(server.credentials, vault, server.name)
    checked = found.check_credentials(credentials, stored=stored)
    server.credentials = seal_credentials(found, checked, vault)
    server.save()
    return server


def server(name_or_id: str) -> Server:
    key = str(name_or_id)
    if "\x00" in key:
        raise NotFound("server name contains a NUL byte")
    query = Server.name == key
    if key.isascii() and key.isdigit() and len(key) < 16:
        query = query | (Server.id == int(key))
    found = Server.get_or_none(query)
    if found is None:
        raise NotFound(f"server {name_or_id} does not exist")
    return found


def add_product(registry: Registry, *, name: str, panel: str, group_name: str, package: str,
                config: Mapping[str, Any] | None = None, suspend_after_days: int | None = None,
                terminate_after_days: int | None = None, steps: Sequence[str] = (),
                role_dirs: Sequence[Path] = (), welcome_password: bool = False,
                backup_before_terminate: bool = False, checkout: Mapping[str, Any] | None = None,
                check_package: Callable[[Panel, ServerGroup, str], None] | None = None) -> Product:
    """Add a product; ``checkout`` is its own checkout fields ({name: definition}, beside its
    panel's; see provisiond.checkout); ``check_package`` (see ``fleet.check_package``) runs last of the checks,
    since it may ask a panel."""
    if not name or not inputs.REF.match(name):
        raise ValidationError("name", f"{name!r} must be 1-100 letters, digits, '.', '_', ':' or '-'")
    found = registry.get(panel)
    inputs.package(package)
    checked = found.check_package_config(config or {})
    own_fields = checkouts.product_spec(found, checkout or {})
    target = group(group_name)
    check_product_rules(found, suspend_after_days=suspend_after_days, terminate_after_days=terminate_after_days,
                        steps=steps, role_dirs=role_dirs, backup_before_terminate=backup_before_terminate)
    if Product.select().where(Product.name == name).exists():
        raise ValidationError("name", f"a product named {name!r} exists already")
    if check_package is not None:
        check_package(found, target, package)
    with database.atomic():
        if Product.select().where(Product.name == name).exists():
            raise ValidationError("name", f"a product named {name!r} exists already")
        return Product.create(name=name, panel=panel, group=target, package=package, config=checked,
                              suspend_after_days=suspend_after_days,
                              terminate_after_days=terminate_after_days, extra_roles=list(steps),
                              welcome_password=welcome_password,
                              backup_before_terminate=backup_before_terminate, checkout=own_fields)


def check_product_rules(panel: Panel, *, suspend_after_days: int | None, terminate_after_days: int | None,
                        steps: Sequence[str], role_dirs: Sequence[Path], backup_before_terminate: bool) -> None:
    """The checks a product's settings pass, when it is added and when it is edited."""
    for field, days in (("suspend_after_days", suspend_after_days), ("terminate_after_days", terminate_after_days)):
        if days is not None and not 0 <= int(days) <= MAX_DAYS:
            raise ValidationError(field, f"must be between 0 and {MAX_DAYS} days")
    if suspend_after_days is not None and terminate_after_days is not None \
            and int(terminate_after_days) < int(suspend_after_days):
        raise ValidationError("terminate_after_days", "must not come before suspend_after_days")
    if backup_before_terminate and not panel.final_backup:
        raise ValidationError("backup_before_terminate", f"panel {panel.id} cannot take a final backup "
                              "(its manifest does not say final_backup: true)")
    for step in steps:
        if not ROLE_NAME.match(step) or step_secrets.role_folder(step, role_dirs) is None:
            raise ValidationError("step", f"no role named {step!r} in {', '.join(map(str, role_dirs))}")
        step_secrets.declared(step, role_dirs)  # a broken meta/provisiond.yml is refused here


def panel_gap(product: Product) -> str | None:
    """A warning when the product's group has no server of the product's panel yet: its
    orders would wait (placement only uses servers of the product's panel)."""
    if Server.select().where((Server.group == product.group) & (Server.panel == product.panel)).exists():
        return None
    return (f"group {product.group.name} has no {product.panel} server yet; orders of product "
            f"{product.name} wait until one is added")


def product(name: str) -> Product:
    found = Product.get_or_none(Product.name == name) if inputs.REF.match(name or "") else None
    if found is None:
        raise ValidationError("product", f"unknown product {name!r}")
    return found
