"""Admin and client actions beyond the lifecycle, declared per panel in panel.yaml.

They run at once (like ``server test``), never through the queue: a login link or a package
list is wanted now, and changes nothing provisiond tracks. A service action needs an active
service; an admin may also run it on a suspended one (to look at the account before lifting the
suspension), a client never: a suspended customer does not get into the panel through a login
link. What the playbook reports (``set_stats``) is the answer; the run keeps no artifacts,
because an answer such as a one-time login link must not be stored.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Mapping

from provisiond import catalog, execute, render
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import PanelError, StateError, ValidationError
from provisiond.models import Server, Service, utcnow
from provisiond.panels import Registry
from provisiond.worker import connection_vars

log = logging.getLogger("provisiond.actions")


def _check_state(service: Service, action: str, audience: str) -> None:
    """A client acts on an active service only; an admin on an active or a suspended one."""
    if service.status == "active" or (service.status == "suspended" and audience == "admin"):
        return
    if service.status == "suspended":
        raise StateError(f"service {service.ref} is suspended; {action} is refused to clients "
                         "while it is (an admin may still ask)")
    wanted = "active or suspended" if audience == "admin" else "active"
    raise StateError(f"service {service.ref} is {service.status}; {action} needs it {wanted}")


def run(settings: Settings, vault: Vault, registry: Registry, *, action: str, audience: str = "admin",
        service: Service | None = None, server: Server | None = None,
        params: Mapping[str, Any] | None = None) -> dict:
    """Run one declared action for a service (or a server) and return what it reported."""
    if audience not in ("admin", "client"):
        raise ValidationError("audience", "must be admin or client")
    target_server = server or (service.server if service is not None else None)
    if target_server is None:
        raise StateError("the service is not placed on a server yet")
    panel = registry.get(target_server.panel)
    declared = panel.admin_action(action)
    if audience not in declared.audience:
        raise ValidationError("action", f"{action} is not offered to {audience}s")
    if declared.scope == "service":
        if service is None:
            raise ValidationError("service", f"{action} acts on a service; name one")
        _check_state(service, action, audience)
    checked = declared.check_params(params or {})
    credentials = catalog.open_credentials(target_server.credentials, vault, target_server.name)
    values: dict[str, Any] = {"params": checked, "action": action}
    if service is not None:
        values.update(service_id=service.id, ref=service.ref, domain=service.domain,
                      username=service.username, remote_id=service.remote_id, package=service.package,
                      fields=service.fields or {})  # the order's checkout fields, as lifecycle jobs get them
    host = "action"
    spec = render.build(panel, action, connection_vars(panel, target_server, credentials), credentials,
                        [render.Account(host, values, {})], timeout=settings.timeout_default, forks=1,
                        ident=f"{utcnow():%Y%m%dT%H%M%S}-{target_server.name}-{action}-{uuid.uuid4().hex[:6]}",
                        role_dirs=tuple(settings.role_dirs()), runs_dir=settings.runs_dir)
    result = execute.run(spec).host(host)
    log.info("%s action %s on %s%s: %s", audience, action, target_server.name,
             f" for service {service.ref}" if service is not None else "", "ok" if result.ok else "failed")
    if not result.ok:
        raise PanelError(f"{action} failed at {result.failed_task or 'the run'}: {result.message}")
    return result.stats
