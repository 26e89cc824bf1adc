"""``server add --test`` / ``POST /v1/servers?test=1``: test a server's settings before saving them.

The settings are checked as ``server add`` checks them, then the panel's test_connection runs
against the unsaved server (``worker.run_test_connection``, as ``server test`` runs it). When it
fails nothing is written (no server row, no pinned host key) and ``TestFailed`` carries the
panel's answer (from a run whose secrets are redacted, never the credentials themselves). When
it passes the server is saved with its health ``ok``; for an SSH panel the host key fetched for
the test is the one pinned.
"""

from __future__ import annotations

from typing import Any

from provisiond import catalog, ssh
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import ProvisiondError, ValidationError
from provisiond.models import Server, utcnow
from provisiond.panels import Registry
from provisiond.worker import run_test_connection


class TestFailed(ValidationError):
    """The settings did not pass the panel's test_connection; nothing was saved. ``field`` is
    ``test``; ``outcome`` is the run's outcome (message, failed task, duration)."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str, outcome: dict):
        why = outcome.get("message") or "no answer"
        task = f" at task {outcome['failed_task']!r}" if outcome.get("failed_task") else ""
        super().__init__("test", f"test_connection of server {name} failed{task}: {why}; nothing was saved")
        self.outcome = outcome


def add_tested(settings: Settings, registry: Registry, vault: Vault, **fields: Any) -> tuple[Server, dict]:
    """Check the fields of ``catalog.check_server``, run test_connection with them, and save the
    server only when it passed: (the server, the test's outcome); else TestFailed."""
    new = catalog.check_server(registry, **fields)
    new.panel.require("test_connection")
    host_key = None
    if new.panel.connection == "ssh":
        try:
            host_key = ssh.fetch_host_key(new.host, new.port or new.panel.default_port or 22)
        except ProvisiondError as exc:
            raise TestFailed(new.name, {"message": str(exc)}) from None
    unsaved = Server(name=new.name, panel=new.panel.id, host=new.host, port=new.port, host_key=host_key)
    outcome = run_test_connection(settings, new.panel, unsaved, new.credentials)
    if outcome["health"] != "ok":
        raise TestFailed(new.name, outcome)
    server = catalog.save_server(new, vault, host_key=host_key, health="ok", health_message=None,
                                 health_checked_at=utcnow())
    return server, outcome
