"""A service's account password as an admin may see it: once per change, audited.

A billing system that chose the password (an order's or a change's ``password``) knows it, and
provisiond never gives it out. One that provisiond generated can be revealed once by an admin
(``service credentials REF --reveal``, ``GET /v1/services/{ref}/credentials``); every reveal is
in the audit trail, and a second reveal of the same password is refused: change the password
to reveal a new one. ``Service.password_state`` says which: generated, revealed or given.
"""

from __future__ import annotations

from provisiond import audit
from provisiond.crypto import Vault
from provisiond.errors import StateError
from provisiond.models import Service, database

GENERATED, REVEALED, GIVEN = "generated", "revealed", "given"


def describe(service: Service) -> dict:
    """What may be said about a service's password without showing it."""
    return {"ref": service.ref, "username": service.username,
            "server": service.server.name if service.server_id else None,
            "password_state": service.password_state,
            "revealable": service.password_state == GENERATED and bool(service.password)}


def reveal(service: Service, vault: Vault, actor: str) -> dict:
    """The generated password of ``service``, once: recorded in the audit trail as shown by
    ``actor``; a StateError (409, exit 2) says why when it cannot be shown."""
    with database.atomic():
        # The conditional update is the one decision: two reveals at once show it once.
        shown = (Service.update(password_state=REVEALED)
                 .where((Service.id == service.id) & (Service.password_state == GENERATED)
                        & Service.password.is_null(False)).execute())
        current = Service.get_by_id(service.id)
        if not shown:
            raise StateError(_why_not(current))
        # Decrypted before the commit: a key that cannot open it leaves the reveal unspent.
        password = vault.decrypt(current.password, f"password of service {current.ref}")
        audit.record(actor, "service.reveal_password", f"service:{current.ref}",
                     username=current.username)
    return describe(current) | {"password": password}


def _why_not(service: Service) -> str:
    if service.password_state == GIVEN:
        return (f"the password of service {service.ref} was chosen by the billing system; "
                "provisiond does not reveal it")
    if service.password_state == REVEALED:
        return (f"the password of service {service.ref} was revealed already (once per change); "
                "change the password to reveal a new one")
    return f"service {service.ref} has no password"
