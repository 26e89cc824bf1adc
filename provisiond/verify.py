"""``provisiond panels verify PANEL --server NAME --domain DOMAIN``: the lifecycle on a real panel.

How a hosting company checks the playbooks on its own panel version, before going live and after
every panel upgrade: a throwaway account on DOMAIN goes through the conformance lifecycle on a
server registered with ``server add`` — test_connection, create, create again, suspend twice,
unsuspend twice, change_package and change_password (where the panel has them), terminate twice —
each step through the real worker, reported with the panel's answers. Exit 0 only when every step
passed.

Where things live: the real database is only read (the server, its services, the domain). The
verify's own rows (group, server, product, service, jobs) go to a throwaway home and SQLite
database, so nothing is left in the admin's lists and no billing event or mail is sent. The
server's credentials are decrypted in memory and sealed again with the throwaway home's own vault
key, never written in clear. Every job gets one attempt: a verify reports the first failure, it
does not wait out the retry schedule.

Packages: the account is created with ``--package`` and changed to ``--other-package``. Either,
when not given, is taken from the server's own package list (a ``list_packages`` step, on panels
that declare it); a panel without that list needs them given. With ``--keep`` the account stays
on the panel (no terminate steps). When a step fails, the rest is skipped and the account is
terminated (unless ``--keep``) by a cleanup step, which does not count as a verify step. The
account's username is random (``v`` and hex digits), so an account the panel already has is never
taken over by the idempotent create and then terminated.
"""

from __future__ import annotations

import secrets
from typing import Callable

from provisiond import actions, audit, catalog, checkout, inputs, lifecycle, panels, queue, tryout, worker
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import PanelError, ProvisiondError, ValidationError
from provisiond.models import Server, Service
from provisiond.panels import Panel

# The lifecycle after test_connection and create; "again" repeats the step before it as is.
LIFECYCLE = ("create", "create again", "suspend", "suspend again", "unsuspend", "unsuspend again",
             "change_package", "change_password", "terminate", "terminate again")
NAME = "verify"


def run_verify(base: Settings, vault: Vault, panel_id: str, *, server: str, domain: str,
               package: str | None = None, other_package: str | None = None, keep: bool = False,
               i_know: bool = False, on_step: Callable[[dict], None] = lambda step: None,
               actor: str = "system") -> dict:
    """Check the request against the real database, then run the lifecycle in a throwaway home.

    ``on_step`` sees each step as it ends. The verify is audited (by ``actor``) on the server.
    Returns the panel, server, domain, ``ok`` and the steps."""
    registry = panels.discover(base.panel_dirs())
    panel = registry.get(panel_id)
    domain = inputs.domain(domain)  # as services store it (IDNA, ASCII)
    target = _target(panel, server, domain, i_know)
    if package is not None:
        inputs.package(package)
    if other_package is not None:
        try:
            inputs.package(other_package)
        except ValidationError as exc:
            raise ValidationError("other_package", exc.message) from None
    _require_packages(panel, package, other_package)
    logins = catalog.open_credentials(target.credentials, vault, target.name)  # in memory only
    copy = {"name": target.name, "host": target.host, "port": target.port, "host_key": target.host_key}
    overrides = {"retry_max_attempts": 1, "retry_terminate_attempts": 1, "timeout_create": base.timeout_create,
                 "timeout_terminate": base.timeout_terminate, "timeout_default": base.timeout_default}
    with tryout.throwaway_home(base, NAME, **overrides) as (settings, throwaway_vault):
        run = _Run(settings, throwaway_vault, registry, panel, on_step)
        run.server = Server.create(panel=panel.id, group=catalog.add_group(NAME), max_accounts=1,
                                   credentials=catalog.seal_credentials(panel, logins, throwaway_vault), **copy)
        run.lifecycle(domain, package, other_package, keep)
    ok = run.finished and all(_passed(s) for s in run.steps if not s.get("cleanup"))
    # In the real database: a throwaway account was made (and maybe kept) on this server.
    audit.record(actor, "panels.verify", f"server:{target.name}", panel=panel.id, domain=domain, ok=ok,
                 kept=keep, i_know=i_know)
    return {"panel": panel.id, "server": target.name, "domain": domain, "folder": str(panel.path),
            "keep": keep, "ok": ok, "steps": run.steps}


def _target(panel: Panel, name: str, domain: str, i_know: bool) -> Server:
    """The registered server to verify on, refused when the verify could touch a customer."""
    found = Server.get_or_none(Server.name == name) if inputs.REF.match(name or "") else None
    if found is None:
        raise ValidationError("server", f"unknown server {name!r} (register it with `server add`)")
    if found.panel != panel.id:
        raise ValidationError("panel", f"server {found.name} is a {found.panel} server, not {panel.id}")
    live = Service.status.not_in([s.value for s in lifecycle.TERMINAL])
    if Service.select().where((Service.domain == domain) & live).exists():
        raise ValidationError("domain", f"{domain} belongs to a service already; give a domain "
                              "no customer uses")
    customers = Service.select().where((Service.server == found) & live).count()
    if customers and not i_know:
        raise ValidationError("server", f"server {found.name} has {customers} service(s); verify on a "
                              "staging server, or give --i-know to run on this one anyway")
    return found


def _require_packages(panel: Panel, package: str | None, other_package: str | None) -> None:
    listed = panel.declares("list_packages")
    if package is None and not listed:
        raise ValidationError("package", f"{panel.id} cannot list its packages; give --package")
    if other_package is None and panel.supports("change_package") and not listed:
        raise ValidationError("other_package", f"{panel.id} cannot list its packages; give "
                              "--other-package for the change_package step")


def _failed(action: str, message: str) -> dict:
    return {"action": action, "status": "failed", "message": message, "calls": [], "answers": [], "reported": {}}


def _passed(step: dict) -> bool:
    return step["status"] in ("succeeded", "skipped")


class _Run:
    """One verify's steps in the throwaway home, each through the real worker."""

    def __init__(self, settings: Settings, vault: Vault, registry, panel: Panel, on_step):
        self.settings, self.vault, self.registry, self.panel = settings, vault, registry, panel
        self.on_step, self.steps, self.server, self.finished = on_step, [], None, False

    def add(self, step: dict, **extra) -> bool:
        step.update(extra)
        self.steps.append(step)
        self.on_step(step)
        return _passed(step)

    def lifecycle(self, domain: str, package: str | None, other: str | None, keep: bool) -> None:
        if not self.add(tryout.server_step(self.settings, self.vault, self.registry, self.server)):
            return
        if package is None or (other is None and self.panel.supports("change_package")):
            package, other = self._packages(package, other)
            if package is None:
                return
        catalog.add_product(self.registry, name=NAME, panel=self.panel.id, group_name=NAME, package=package)
        runner = worker.Worker(self.settings, self.vault, owner="panels-verify")
        try:
            service, job = lifecycle.order(self.registry, self.vault, product=NAME, email=f"verify@{domain}",
                                           domain=domain, ref="VERIFY-1", username=self._username(),
                                           fields=checkout.sample(self.panel),
                                           policy=worker.retry_policy(self.settings))
            if job is None:  # not placed: the server is disabled, unhealthy or full
                self.add(_failed("create", f"not placed: {service.pending_reason}"))
                return
            self.finished = self._actions(runner, service, job, other, keep)
            if self.finished or keep:
                return
            cleanup = queue.enqueue("terminate", service=service, server=service.server, max_attempts=1)[0]
            self.add(tryout.lifecycle_step(runner, cleanup), action="terminate (cleanup)", cleanup=True)
        finally:
            runner.shutdown()

    def _username(self) -> str:
        """A fresh random name: never one of an account the panel has (create would take it over)."""
        limit = min(8, self.panel.username.max_length, int(self.server.credentials.get("username_max_length") or 8))
        return ("v" + secrets.token_hex(4))[:limit]

    def _actions(self, runner, service: Service, job, other: str | None, keep: bool) -> bool:
        """Run the lifecycle steps in order; False at the first one that failed."""
        previous = job
        for name in LIFECYCLE:
            action = name.split()[0]
            if keep and action == "terminate":
                break
            if not self.panel.supports(action):
                self.add({**_failed(name, f"{self.panel.id} has no {action}"), "status": "skipped"})
                continue
            try:
                job = self._job(name, service, previous, other) if name != "create" else job
            except ProvisiondError as exc:  # refused before any run: the step failed all the same
                self.add(_failed(name, str(exc)))
                return False
            previous = job
            if not self.add(tryout.lifecycle_step(runner, job), action=name):
                return False
        return True

    def _job(self, name: str, service: Service, previous, other: str | None):
        action = name.split()[0]
        if name.endswith("again"):  # the same request once more, whatever the state machine says
            return queue.enqueue(action, service=service, server=service.server, params=previous.params,
                                 max_attempts=1)[0]
        return lifecycle.request(self.registry, self.vault, service.id, action, reason=NAME,
                                 package=other if action == "change_package" else None,
                                 policy=worker.retry_policy(self.settings))

    def _packages(self, package: str | None, other: str | None) -> tuple[str | None, str | None]:
        """Fill in the packages not given from the server's list; (None, None) when it fails."""
        step = {"action": "list_packages", "status": "succeeded", "message": None, "calls": [], "answers": []}
        try:
            step["reported"] = actions.run(self.settings, self.vault, self.registry, action="list_packages",
                                           server=self.server)
        except PanelError as exc:
            self.add({**step, "status": "failed", "message": str(exc), "reported": {}})
            return None, None
        offered = [str(p) for p in step["reported"].get("packages") or []]
        package = package or (offered[0] if offered else None)
        other = other or next((p for p in offered if p != package), None)
        if package is None or (other is None and self.panel.supports("change_package")):
            step.update(status="failed", message=f"the server offers {offered or 'no packages'}; the verify "
                        "needs two (give --package and --other-package)")
        if not self.add(step):
            return None, None
        return package, other


def text(result: dict) -> str:
    """The verify's outcome line (the steps were printed as they ended)."""
    failed = [s for s in result["steps"] if not _passed(s) and not s.get("cleanup")]
    if result["ok"]:
        return (f"outcome: every step passed on {result['server']} ({result['panel']}, "
                f"playbooks from {result['folder']})")
    where = f" at {failed[0]['action']}" if failed else ""
    return f"outcome: verify FAILED{where} on {result['server']} ({result['panel']}, playbooks from {result['folder']})"

