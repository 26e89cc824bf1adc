"""The fixes of a sync's drift: explicit, audited, and never deleting anything on a panel.

- ``adopt``: orphans become services of a product, with the panel's state (active or
  suspended), package, domain and email; no create call. Refs come from a map (CSV
  ``username,ref[,paid_until][,email]``, an optional header line), else ``<server>:<username>``.
  The email is the map's (the billing system's word), else the panel's; an orphan with
  neither is refused, naming it. Any refused row refuses the whole adoption: nothing is
  written. Their passwords are unknown to provisiond (``password_state`` given: never revealed).
- ``reapply``: queue the jobs that bring the panel back to provisiond's state (suspend,
  unsuspend, change_package). Identity drift has no lifecycle job; it is left to a person.
- ``accept_panel``: record the panel's state, package and domain in provisiond instead.
- ``recreate``: queue a create for a service the server's last sync found missing.

A service with an open job is left out of reapply and accept-panel (that job moves it first);
the next sync shows what remains. Each fix returns what it did (or, with ``dry_run``, would
do) as plain dicts, and writes one audit entry per service.
"""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any, Iterable

from provisiond import accounts, audit, credentials, inputs, notify, queue, sync
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import StateError, ValidationError
from provisiond.models import (OPEN_JOB_STATUSES, Job, Product, Server, ServerSync, Service, database,
                               utcnow)
from provisiond.panels import Registry
from provisiond.policies import RetryPolicy

HOLDING = sync.HOLDING

MAP_COLUMNS = ("username", "ref", "paid_until", "email")


def sync_server(settings: Settings, vault: Vault, registry: Registry, name: str, *, actor: str,
                policy: RetryPolicy = RetryPolicy(), dry_run: bool = False, adopt_product: str | None = None,
                map_text: str | None = None, reapply_drift: bool = False,
                accept: bool = False) -> dict:
    """``server sync``: read the panel, compare, and apply the fixes asked for.

    Every fix is checked before anything is written; then the report is recorded (unless
    ``dry_run``) and the fixes applied. Returns {"report", "changed"} and, per fix asked,
    "adopted", "reapplied" or "accepted" (what was, or with ``dry_run`` would be, done)."""
    if reapply_drift and accept:
        raise ValidationError("accept_panel", "--reapply and --accept-panel fix the same drift two "
                              "opposite ways; give one")
    if map_text is not None and adopt_product is None:
        raise ValidationError("map", "a map names the refs of adopted orphans; give --adopt PRODUCT")
    mapping = read_map(map_text) if map_text is not None else None
    server = sync.server_named(name)
    report, listed, changed = sync.check(settings, vault, registry, server, dry_run=True)
    planned = (plan_adoption(server, adopt_product, report, listed, mapping)
               if adopt_product is not None else None)
    if not dry_run:
        changed = sync.record(settings, server, report)
    result: dict[str, Any] = {"report": report, "changed": changed}
    if planned is not None:
        if not dry_run:
            adopt(server, planned, adopt_product, actor=actor)
        result["adopted"] = planned
    if reapply_drift:
        result["reapplied"] = reapply(report, actor=actor, registry=registry, policy=policy, dry_run=dry_run)
    if accept:
        result["accepted"] = accept_panel(report, actor=actor, settings=settings, dry_run=dry_run)
    return result


# -- adopt ---------------------------------------------------------------------------------

def read_map(text: str) -> dict[str, dict[str, Any]]:
    """The rows of an adoption map by username; ValidationError naming the line otherwise."""
    rows: dict[str, dict[str, Any]] = {}
    refs: dict[str, int] = {}
    for number, cells in enumerate(csv.reader(io.StringIO(text)), 1):
        cells = [c.strip() for c in cells]
        if not any(cells) or (number == 1 and cells[0].lower() == "username"):
            continue
        if not 2 <= len(cells) <= 4 or not cells[0] or not cells[1]:
            raise ValidationError("map", f"line {number}: expected username,ref[,paid_until][,email]")
        row = dict(zip(MAP_COLUMNS, cells + [""] * (4 - len(cells))))
        try:
            inputs.ref(row["ref"])
            row["paid_until"] = datetime.date.fromisoformat(row["paid_until"]) if row["paid_until"] else None
            row["email"] = inputs.email(row["email"]) if row["email"] else None
        except ValueError:
            raise ValidationError("map", f"line {number}: paid_until {row['paid_until']!r} is not "
                                  "a date (YYYY-MM-DD)") from None
        except ValidationError as exc:
            raise ValidationError("map", f"line {number}: {exc}") from None
        if row["username"] in rows:
            raise ValidationError("map", f"line {number}: username {row['username']} is listed twice")
        if row["ref"] in refs:
            raise ValidationError("map", f"line {number}: ref {row['ref']} is also on line {refs[row['ref']]}")
        refs[row["ref"]] = number
        rows[row["username"]] = row
    return rows


def plan_adoption(server: Server, product_name: str, report: dict, panel_accounts: Iterable[dict],
                  mapping: dict[str, dict[str, Any]] | None = None) -> list[dict]:
    """The services ``adopt`` would record, or ValidationError listing every refused orphan."""
    product = Product.get_or_none(Product.name == product_name)
    if product is None:
        raise ValidationError("product", f"unknown product {product_name!r}")
    if product.panel != server.panel:
        raise ValidationError("product", f"product {product.name} is for {product.panel} servers; "
                              f"server {server.name} runs {server.panel}")
    mapping = mapping or {}
    emails = {a["username"]: a.get("email") for a in panel_accounts}
    orphans = {o["username"]: o for o in report["orphans"]}
    problems = [f"map: {u} is not an orphan on server {server.name}" for u in mapping if u not in orphans]
    taken = {u for (u,) in Service.select(Service.username).where(
        (Service.server == server) & Service.username.in_(list(orphans))).tuples()} if orphans else set()
    planned, refs = [], set()
    for username, orphan in orphans.items():
        row = mapping.get(username, {})
        ref = row.get("ref") or f"{server.name}:{username}"
        email = row.get("email") or emails.get(username)
        problem = _refusal(username, ref, email, username in taken, ref in refs)
        try:
            domain = inputs.domain(orphan["domain"])
        except ValidationError as exc:
            problem = problem or f"{username}: the panel's domain is refused ({exc.message})"
        if problem:
            problems.append(problem)
            continue
        refs.add(ref)
        planned.append({"ref": ref, "username": username, "domain": domain,
                        "package": orphan["package"], "email": email,
                        "status": "suspended" if orphan["suspended"] else "active",
                        "paid_until": row.get("paid_until"), "product": product.name})
    known = {r for (r,) in Service.select(Service.ref).where(Service.ref.in_(list(refs))).tuples()} if refs else set()
    problems += [f"{p['username']}: ref {p['ref']} is already a service's" for p in planned if p["ref"] in known]
    if problems:
        raise ValidationError("adopt", "nothing adopted: " + "; ".join(problems))
    return planned


def _refusal(username: str, ref: str, email: str | None, ended: bool, repeated: bool) -> str:
    if ended:
        return (f"{username}: the username belongs to an ended service on this server (terminated "
                "or closed); remove that account by hand or leave it")
    if repeated:
        return f"{username}: ref {ref} is given twice"
    try:
        inputs.ref(ref)
    except ValidationError as exc:
        return f"{username}: {exc}"
    if not email:
        return f"{username}: no email on the panel or in the map"
    try:
        inputs.email(email)
    except ValidationError:
        return f"{username}: the panel's email {email!r} is not valid; give one in the map"
    return ""


def adopt(server: Server, planned: list[dict], product_name: str, *, actor: str) -> list[Service]:
    """Record the planned orphans as services (one transaction, audited); no panel call."""
    product = Product.get(Product.name == product_name)
    made = []
    with database.atomic():
        for item in planned:
            service = Service.create(
                ref=item["ref"], product=product, server=server, domain=item["domain"], email=item["email"],
                username=item["username"], remote_id=item["username"], package=item["package"],
                password=None, password_state=credentials.GIVEN, status=item["status"],
                status_reason="panel" if item["status"] == "suspended" else None,
                paid_until=item["paid_until"])
            audit.record(actor, "service.adopt", f"service:{service.ref}", server=server.name,
                         username=item["username"], status=item["status"], package=item["package"])
            made.append(service)
    return made


# -- reapply and accept-panel --------------------------------------------------------------

def _services(report: dict, kinds: Iterable[str]) -> dict[str, Service]:
    refs = {item["ref"] for kind in kinds for item in report[kind]}
    return {s.ref: s for s in Service.select().where(Service.ref.in_(list(refs)))} if refs else {}


def _busy(services: Iterable[Service]) -> dict[int, int]:
    """service id -> its open job's id, for the services that have one."""
    ids = [s.id for s in services]
    if not ids:
        return {}
    rows = Job.select(Job.service, Job.id).where(Job.service.in_(ids) & Job.status.in_(OPEN_JOB_STATUSES))
    return {service_id: job_id for service_id, job_id in rows.tuples()}


def reapply(report: dict, *, actor: str, registry: Registry, policy: RetryPolicy = RetryPolicy(),
            dry_run: bool = False) -> list[dict]:
    """Queue the jobs that bring the panel back to provisiond's state; returns one entry per
    drift: {ref, username, action, job} or {ref, username, skipped: why}."""
    services = _services(report, ("state_drift", "package_drift", "identity_drift"))
    busy = _busy(services.values())
    wanted = []
    for item in report["state_drift"]:
        action = "suspend" if item["provisiond"] == "suspended" else "unsuspend"
        wanted.append((item, action, {"reason": services[item["ref"]].status_reason or "admin"}
                       if action == "suspend" else {}))
    for item in report["package_drift"]:
        wanted.append((item, "change_package", {"package": item["provisiond"]}))
    done = []
    with database.atomic():
        for item, action, params in wanted:
            service = services.get(item["ref"])
            entry = {"ref": item["ref"], "username": item["username"], "action": action}
            why = _skip(service, busy, item)
            if why:
                done.append(entry | {"skipped": why})
                continue
            if not registry.get(service.server.panel).supports(action):
                done.append(entry | {"skipped": f"the {service.server.panel} panel has no {action}"})
                continue
            if not dry_run:
                job, _ = queue.enqueue(action, service=service, server=service.server, params=params,
                                       max_attempts=policy.attempts_for(action))
                audit.record(actor, "sync.reapply", f"service:{service.ref}", job_action=action, job=job.id,
                             provisiond=item["provisiond"], panel=item["panel"])
                entry["job"] = job.id
            done.append(entry)
        for item in report["identity_drift"]:
            done.append({"ref": item["ref"], "username": item["username"], "action": None,
                         "skipped": "identity drift has no job that fixes it; check the panel, or "
                                    "--accept-panel records the panel's domain"})
    return done


def _skip(service: Service | None, busy: dict[int, int], item: dict) -> str:
    if service is None:
        return "the service is gone since the sync"
    if service.status not in HOLDING:
        return f"the service is {service.status} since the sync"
    if service.id in busy:
        return f"job {busy[service.id]} of the service is open; it runs first (sync again after)"
    return ""


ACCEPTED = {"state_drift": "status", "package_drift": "package", "identity_drift": "domain"}


def accept_panel(report: dict, *, actor: str, settings: Settings | None = None,
                 dry_run: bool = False) -> list[dict]:
    """Record the panel's state, package and domain in provisiond; one entry per drift:
    {ref, username, field, provisiond, panel} (or with ``skipped``)."""
    services = _services(report, ACCEPTED)
    busy = _busy(services.values())
    done = []
    with database.atomic():
        for kind, field in ACCEPTED.items():
            for item in report[kind]:
                entry = {"ref": item["ref"], "username": item["username"], "field": field,
                         "provisiond": item["provisiond"], "panel": item["panel"]}
                service = services.get(item["ref"])
                why = _skip(service, busy, item)
                if why:
                    done.append(entry | {"skipped": why})
                    continue
                if not dry_run:
                    _accept(service, field, item, actor, settings)
                done.append(entry)
    return done


def _accept(service: Service, field: str, item: dict, actor: str, settings: Settings | None) -> None:
    changes: dict[str, Any] = {field: item["panel"], "updated_at": utcnow()}
    if field == "status":
        changes["status_reason"] = "panel" if item["panel"] == "suspended" else None
    Service.update(**changes).where(Service.id == service.id).execute()
    entry = audit.record(actor, "sync.accept_panel", f"service:{service.ref}", field=field,
                         previous=item["provisiond"], now=item["panel"])
    if field == "status" and settings is not None:
        event = "service.suspended" if item["panel"] == "suspended" else "service.unsuspended"
        notify.billing_event(settings, Service.get_by_id(service.id), event, item["provisiond"],
                             change_id=f"audit{entry.id}")


# -- recreate ------------------------------------------------------------------------------

def recreate(service: Service, vault: Vault, registry: Registry, *, actor: str,
             policy: RetryPolicy = RetryPolicy()) -> list[Job]:
    """Queue a create for ``service``, whose account its server's last sync found missing
    (a suspended one is suspended again after). Refused otherwise, saying why."""
    if service.status not in HOLDING or service.server is None:
        raise StateError(f"service {service.ref} is {service.status}; recreate needs it active or "
                         "suspended on a server")
    server = service.server
    last = ServerSync.get_or_none(ServerSync.server == server)
    if last is None or service.ref not in {m["ref"] for m in last.report["missing"]}:
        raise StateError(f"the last sync of server {server.name} does not find service {service.ref}'s "
                         f"account missing; run `provisiond server sync {server.name}` first")
    panel = registry.get(server.panel)
    panel.require("create")
    with database.atomic():
        again = (Job.select().where((Job.service == service) & (Job.action == "create")
                                    & (Job.created_at > last.checked_at)).first())
        open_job = queue.open_job(service)
        if again is not None or open_job is not None:
            job = again or open_job
            raise StateError(f"service {service.ref} has job {job.id} ({job.action}, {job.status}) since "
                             f"the last sync; wait for it and sync again")
        if not service.password:  # adopted: its password was never provisiond's
            Service.update(password=vault.encrypt(accounts.generate_password(panel.password)),
                           password_state=credentials.GENERATED).where(Service.id == service.id).execute()
        jobs = [queue.enqueue("create", service=service, server=server,
                              max_attempts=policy.attempts_for("create"))[0]]
        if service.status == "suspended":
            jobs.append(queue.enqueue("suspend", service=service, server=server,
                                      params={"reason": service.status_reason or "admin"},
                                      max_attempts=policy.attempts_for("suspend"))[0])
        audit.record(actor, "service.recreate", f"service:{service.ref}", server=server.name,
                     username=service.username, jobs=[j.id for j in jobs])
    return jobs
