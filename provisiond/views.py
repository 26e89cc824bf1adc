"""How a service looks to the CLI and the API: the same fields, never a secret."""

from __future__ import annotations

from provisiond.models import Service


def service_view(service: Service) -> dict:
    """A service as both faces show it (no password, no server credentials)."""
    return {"id": service.id, "ref": service.ref, "product": service.product.name,
            "server": service.server.name if service.server_id else None, "domain": service.domain,
            "email": service.email, "username": service.username, "remote_id": service.remote_id,
            "package": service.package, "status": service.status,
            "status_reason": service.status_reason, "pending_reason": service.pending_reason,
            "last_error": service.last_error, "paid_until": service.paid_until,
            "created_at": service.created_at, "updated_at": service.updated_at}
