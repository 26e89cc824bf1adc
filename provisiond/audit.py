"""The audit trail: what an admin did by hand (resolve a held job, close a service, correct a
payment date, reveal a password), by whom and when. Written in the caller's transaction."""

from __future__ import annotations

import getpass
import socket
from typing import Any

from provisiond.models import AuditEntry


def cli_actor() -> str:
    """The person at this terminal, as the audit trail names them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def record(actor: str, action: str, subject: str, **detail: Any) -> AuditEntry:
    return AuditEntry.create(actor=actor, action=action, subject=subject, detail=detail)


def entries(subject: str) -> list[AuditEntry]:
    return list(AuditEntry.select().where(AuditEntry.subject == subject).order_by(AuditEntry.id))
