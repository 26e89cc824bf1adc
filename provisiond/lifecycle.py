"""The service state machine, and the requests that move a service along it.

    pending ──create ok──▶ active ──suspend ok──▶ suspended
     │  │                    ▲  ◀──unsuspend ok──┘  │
     │  │ create failed      │                      │
     │  ▼                    │ change_package, change_password keep the status
     │ failed ─(job retry)─▶ pending                │
     │  └──────── terminate ok ─▶ terminated ◀──────┘ (from active, suspended or failed)
     │  │
     └──┴─(service close: no open or held job)─▶ closed

``terminated`` and ``closed`` are terminal; every other state has a command that leaves it
(tests/integration/test_lifecycle_states.py walks them): pending waits for its create job
(``job cancel``, ``job resolve`` when it is held) or is closed; failed is retried, terminated
or closed. A held (needs_attention) job is resolved by an admin who checked the panel
(``job resolve N --succeeded|--failed``), which moves the service as that outcome of a run
would (provisiond.outcomes).

Requests enqueue jobs through queue.py; only the outcome of a job moves the service
(``apply_success`` / ``apply_failure``), so the service never claims a state the panel does
not have. Identical open requests are merged into the existing job.
"""

from __future__ import annotations

import dataclasses
import datetime
import hmac
import uuid
from typing import Any

import peewee as pw

from provisiond import accounts, audit, checkout, credentials, db as dbmod, inputs, notify, queue, variants
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import Conflict, NotFound, StateError, ValidationError
from provisiond.models import (OPEN_JOB_STATUSES, Job, JobStatus, Product, ProvisioningLog, Server,
                               ServerGroup, Service,
                               ServiceStatus, database, utcnow)
from provisiond.panels import Registry
from provisiond.policies import RetryPolicy, ServerLoad, Strategy, place

S = ServiceStatus
ALLOWED_FROM = {
    "suspend": (S.ACTIVE,),
    "unsuspend": (S.SUSPENDED,),
    "terminate": (S.ACTIVE, S.SUSPENDED, S.FAILED),
    "change_package": (S.ACTIVE, S.SUSPENDED),
    "change_password": (S.ACTIVE, S.SUSPENDED),
}
RESULT_STATUS = {"create": S.ACTIVE, "suspend": S.SUSPENDED, "unsuspend": S.ACTIVE,
                 "terminate": S.TERMINATED}
BILLING_EVENTS = {"create": "service.created", "suspend": "service.suspended",
                  "unsuspend": "service.unsuspended", "terminate": "service.terminated"}
OCCUPYING = (S.PENDING.value, S.ACTIVE.value, S.SUSPENDED.value)
TERMINAL = (S.TERMINATED, S.CLOSED)
CLOSABLE = (S.PENDING, S.FAILED)


MAX_ID = 2**31 - 1  # ids are PostgreSQL integers
ID_PREFIX = "id:"  # how a person writes a service id unambiguously (no ref starts with it)


def get_service(key: str | int) -> Service:
    """The service a person or a caller named.

    An int is an id (callers inside provisiond). A string is ``id:7`` for an id, else a billing
    reference; a bare number that is no service's reference is taken as an id. A number that
    is the reference of one service and the id of another is refused, naming both: a billing
    reference must never reach another service (WHMCS service ids are numbers)."""
    if isinstance(key, int):
        return _by_id(key)
    key = str(key)
    if "\x00" in key:
        raise NotFound("service reference contains a NUL byte")
    if key.startswith(ID_PREFIX):
        return _by_id(_id_number(key[len(ID_PREFIX):], key))
    by_ref = Service.get_or_none(Service.ref == key)
    by_id = Service.get_or_none(Service.id == int(key)) if _is_id(key) else None
    if by_ref is not None and by_id is not None and by_ref.id != by_id.id:
        raise ValidationError("service", f"{key!r} is ambiguous: it is the ref of service "
                              f"{ID_PREFIX}{by_ref.id} and the id of service {ID_PREFIX}{by_id.id} "
                              f"(ref {by_id.ref}); write {ID_PREFIX}{by_ref.id} or {ID_PREFIX}{by_id.id}")
    found = by_ref or by_id
    if found is None:
        raise NotFound(f"service {key} does not exist")
    return found


def get_service_by_ref(ref: str) -> Service:
    """The service with billing reference ``ref``, never one with that id (the API's rule)."""
    found = Service.get_or_none(Service.ref == ref) if "\x00" not in ref else None
    if found is None:
        raise NotFound(f"service {ref} does not exist")
    return found


def _is_id(key: str) -> bool:
    return key.isascii() and key.isdigit() and len(key) <= 10 and int(key) <= MAX_ID


def _id_number(digits: str, key: str) -> int:
    if not _is_id(digits):
        raise NotFound(f"service {key} does not exist")
    return int(digits)


def _by_id(service_id: int) -> Service:
    found = Service.get_or_none(Service.id == service_id)
    if found is None:
        raise NotFound(f"service {ID_PREFIX}{service_id} does not exist")
    return found


# -- ordering and placement ----------------------------------------------------------------

def _loads(group: ServerGroup) -> list[ServerLoad]:
    placed = (Service.select(Service.server, pw.fn.COUNT(Service.id).alias("n"))
              .where(Service.status.in_(OCCUPYING) & Service.server.is_null(False))
              .group_by(Service.server))
    counts = {row.server_id: row.n for row in placed}
    servers = list(Server.select().where(Server.group == group))
    disk: dict[int, float] = {}
    if group.strategy == Strategy.LEAST_DISK.value:  # read only when the strategy needs it
        from provisiond import usage
        disk = usage.disk_by_server([s.id for s in servers], OCCUPYING)
    return [ServerLoad(id=s.id, name=s.name, enabled=s.enabled, healthy=s.health != "failed",
                       max_accounts=s.max_accounts, placed=counts.get(s.id, 0), panel=s.panel,
                       disk_used_mb=disk.get(s.id))
            for s in servers]


def _lock_group(group: ServerGroup) -> None:
    """Serialise placements in one group, so two orders cannot overfill a server."""
    if dbmod.is_postgres():
        ServerGroup.select().where(ServerGroup.id == group.id).for_update().execute()


def _choose_server(product: Product) -> tuple[Server | None, str | None]:
    """A server of the product's group and panel with room, or None and why not."""
    group = product.group
    _lock_group(group)
    loads = _loads(group)
    chosen = place(loads, Strategy(group.strategy), group.last_server_id, panel=product.panel)
    if chosen is None:
        if not any(load.panel == product.panel for load in loads):
            return None, f"no {product.panel} server in group {group.name}"
        return None, f"no capacity in group {group.name}"
    ServerGroup.update(last_server_id=chosen.id).where(ServerGroup.id == group.id).execute()
    return Server.get_by_id(chosen.id), None


def _username_for(service: Service, server: Server, registry: Registry, wanted: str | None) -> str:
    rules = accounts.server_rules(registry.get(server.panel).username, server.credentials)
    taken = {u for (u,) in Service.select(Service.username).where(
        (Service.server == server) & Service.username.is_null(False)).tuples()}
    if wanted:
        accounts.validate_username(wanted, rules)  # again, now with this server's own limits
        if wanted in taken:
            raise ValidationError("username", f"{wanted!r} is already used on server {server.name}")
        return wanted
    return accounts.generate_username(service.domain, rules, taken)


@dataclasses.dataclass(frozen=True)
class Ordered:
    """What an order gave: the service, its open job, and whether this call created it (a
    replayed ref gives the existing service: ``created`` False)."""
    service: Service
    job: Job | None
    created: bool


def order(registry: Registry, vault: Vault, **kwargs) -> tuple[Service, Job | None]:
    """``place_order`` as a (service, job) pair."""
    ordered = place_order(registry, vault, **kwargs)
    return ordered.service, ordered.job


def place_order(registry: Registry, vault: Vault, *, product: str, domain: str, email: str,
                username: str | None = None, ref: str | None = None, name: str | None = None,
                paid_until: datetime.date | None = None, password: str | None = None,
                fields: dict[str, Any] | None = None, policy: RetryPolicy = RetryPolicy(),
                settings: Settings | None = None, variant: str | None = None) -> Ordered:
    """A paid order: a pending Service and its create job, or nothing at all on bad input.

    ``name`` is the customer's name, if the billing system knows it (panels that keep one
    use it; see ``inputs.customer_name``). ``password`` is one the billing system chose (checked against the panel's rules, stored
    encrypted, never revealed); without it provisiond generates one. A known ``ref`` with the
    same data gives that service back; with other data it is a ``Conflict`` naming the fields.
    Parallel orders of one ref give one service: the ref is looked up under the write lock,
    and the loser of a race on PostgreSQL (unique ``ref``) reads the winner's service.
    ``fields`` are the client's checkout values (``checkout.check_order``; the product's defaults
    fill the rest). With ``settings``, notifications (here: the "no capacity" alert) are queued.
    ``variant`` names one of the product's variants (provisiond.variants): its package and settings."""
    found = Product.get_or_none(Product.name == product) if inputs.REF.match(product or "") else None
    if found is None:
        raise ValidationError("product", f"unknown product {product!r}")
    panel = registry.get(found.panel)
    panel.require("create")
    chosen = variants.variant_of(found, variant) if variant is not None else None
    wanted = {"product": found.name, "domain": inputs.domain(domain), "email": inputs.email(email),
              "username": username, "name": inputs.customer_name(name) if name is not None else None,
              "variant": variant}
    if ref is not None:
        inputs.ref(ref)
    checked_fields = checkout.check_order(panel, found, fields)
    wanted["fields"] = checked_fields if fields is not None else None
    if username is not None:
        accounts.validate_username(username, panel.username)
    if password is not None:
        accounts.check_password(password, panel.password)
    try:
        with database.atomic():
            known = Service.get_or_none(Service.ref == ref) if ref is not None else None
            if known is not None:
                return _replayed(known, wanted, password, vault)
            service = Service.create(
                ref=ref or f"tmp-{uuid.uuid4().hex}", product=found, domain=wanted["domain"],
                email=wanted["email"], name=wanted["name"], package=variants.settings_for(found, chosen).package,
                variant=chosen, paid_until=paid_until, fields=checked_fields,
                password=vault.encrypt(password or accounts.generate_password(panel.password)),
                password_state=credentials.GIVEN if password is not None else credentials.GENERATED)
            if ref is None:
                service.ref = f"svc-{service.id}"
                service.save()
            job = _place_and_enqueue(service, registry, username, policy, settings)
    except pw.IntegrityError:
        known = Service.get_or_none(Service.ref == ref) if ref is not None else None
        if known is None:
            raise
        return _replayed(known, wanted, password, vault)
    return Ordered(service, job, True)


def _replayed(known: Service, wanted: dict, password: str | None, vault: Vault) -> Ordered:
    """The known service of a replayed order, or a Conflict naming the fields that differ.

    ``paid_until`` is not compared: payments move it after the order. A replay without a
    password or username matches either way (a retry that leaves it out asks for nothing new);
    a waiting order keeps the username it was given, and a replay is compared with it. Checkout
    fields given are compared with their defaults filled in. A name given must be the known one
    (a replay that adds a name to an order placed without one asks for something new)."""
    have = {"product": known.product.name, "domain": known.domain, "email": known.email,
            "username": known.username, "name": known.name,
            "variant": known.variant.name if known.variant_id else None, "fields": known.fields or {}}
    differing = [f for f, value in wanted.items()
                 if value is not None and (have[f] is not None or f in ("name", "variant")) and value != have[f]]
    if password is not None and not _same_password(known, password, vault):
        differing.append("password")
    if differing:
        raise Conflict(differing, f"order {known.ref} is known with another "
                       f"{', '.join(differing)}; replay it unchanged or use a new ref")
    return Ordered(known, queue.open_job(known), False)


def _same_password(service: Service, password: str, vault: Vault) -> bool:
    if service.password_state != credentials.GIVEN or not service.password:
        return False
    stored = vault.decrypt(service.password, f"password of service {service.ref}")
    return hmac.compare_digest(stored.encode(), password.encode())


def _place_and_enqueue(service: Service, registry: Registry, username: str | None,
                       policy: RetryPolicy, settings: Settings | None = None) -> Job | None:
    server, why_not = _choose_server(service.product)
    if server is None:
        group = service.product.group.name
        service.pending_reason = why_not
        service.username = username  # the billing system's choice waits with the service
        service.save()
        if settings is not None:
            # Once per waiting service: every tick tries again, the dedup key keeps it to one alert.
            notify.alert(settings, why_not,
                         f"Service {service.ref} ({service.domain}) is waiting: {why_not}. It is "
                         f"placed as soon as an enabled, healthy {service.product.panel} server "
                         f"of group {group} has room.",
                         f"capacity:{group}:{service.id}")
        return None
    service.server = server
    service.username = _username_for(service, server, registry, username)
    service.pending_reason = None
    service.updated_at = utcnow()
    service.save()
    job, _ = queue.enqueue("create", service=service, server=server,
                           idempotency_key=f"service:{service.id}:create",
                           max_attempts=policy.attempts_for("create"))
    return job


def place_waiting(registry: Registry, policy: RetryPolicy = RetryPolicy(),
                  settings: Settings | None = None) -> list[Service]:
    """Try again to place pending services that found no room; returns those now placed."""
    placed = []
    waiting = Service.select().where((Service.status == S.PENDING.value) & Service.server.is_null())
    for service in waiting:
        try:
            with database.atomic():
                if _place_and_enqueue(service, registry, service.username, policy, settings) is not None:
                    placed.append(service)
        except ValidationError as exc:
            _hold_for_username(service, exc, settings)
    return placed


def _hold_for_username(service: Service, exc: ValidationError, settings: Settings | None) -> None:
    """A waiting order's chosen username that the server it would go to refuses (taken there,
    or too long for it): the service keeps waiting, saying why, and an admin is told once."""
    why = f"username {service.username!r} cannot be used: {exc.message}"
    Service.update(pending_reason=why, updated_at=utcnow()).where(Service.id == service.id).execute()
    if settings is not None:
        notify.alert(settings, f"order {service.ref} waits: {why}",
                     f"Service {service.ref} ({service.domain}) waits for a server, and its chosen "
                     f"username cannot be used there: {exc.message}. Close it (`service close`) and "
                     f"order again with another username.", f"username:{service.id}")


# -- requests on existing services ---------------------------------------------------------

def request(registry: Registry, vault: Vault, ref_or_id: str | int, action: str, *,
            reason: str | None = None, package: str | None = None, password: str | None = None,
            policy: RetryPolicy = RetryPolicy(), variant: str | None = None) -> Job:
    """Ask for a lifecycle action; an identical open request returns its job.

    ``change_package`` takes a ``package``, a ``variant`` of the service's product (its package
    unless ``package`` is given too, and its settings: provisiond.variants), or both.
    ``change_password`` takes the ``password`` a billing system chose (else one is generated);
    a second chosen password while the first is still queued is refused, never merged away."""
    service = get_service(ref_or_id)
    if action not in ALLOWED_FROM:
        raise ValidationError("action", f"unknown action {action!r}")
    if service.server is None:
        raise StateError(f"service {service.ref} is not placed on a server yet")
    panel = registry.get(service.server.panel)
    panel.require(action)
    params: dict[str, Any] = {}
    secret = None
    if action == "suspend":
        params["reason"] = reason or "admin"
        if len(params["reason"]) > 64 or "\x00" in params["reason"]:
            raise ValidationError("reason", "must be at most 64 characters, without NUL bytes")
    if action == "change_package":
        params.update(variants.change_params(service.product, package, variant))
    elif variant is not None:
        raise ValidationError("variant", f"is only taken by change_package, not {action}")
    if password is not None:
        if action != "change_password":
            raise ValidationError("password", f"is only taken by change_password, not {action}")
        accounts.check_password(password, panel.password)
        params["password"] = "given"  # who chose it; the password itself is a secret parameter
    with database.atomic():
        open_job = queue.open_job(service)
        if password is not None:
            open_job = _newest_open_job(service)  # the job queue.enqueue would merge this into
        if open_job is not None and open_job.action == action and open_job.params == params:
            if password is None or hmac.compare_digest(_job_password(open_job, vault), password):
                return open_job
            raise StateError(f"service {service.ref} has another chosen password queued (job "
                             f"{open_job.id}); wait for it or cancel it first")
        if service.status not in {s.value for s in ALLOWED_FROM[action]}:
            raise StateError(f"service {service.ref} is {service.status}; {action} needs it "
                             f"{' or '.join(s.value for s in ALLOWED_FROM[action])}")
        if action == "change_password":
            secret = vault.encrypt_json({"password": password or accounts.generate_password(panel.password)})
        job, _ = queue.enqueue(action, service=service, server=service.server, params=params,
                               secret_params=secret, max_attempts=policy.attempts_for(action))
    return job


def _newest_open_job(service: Service) -> Job | None:
    return (Job.select().where((Job.service == service) & Job.status.in_(OPEN_JOB_STATUSES))
            .order_by(Job.id.desc()).first())


def _job_password(job: Job, vault: Vault) -> str:
    return vault.decrypt_json(job.secret_params, f"job {job.id} parameters")["password"]


def retry_job(job_id: int, extra_attempts: int, actor: str | None = None) -> Job:
    """Queue a failed, cancelled or held job again; a create's failed service is pending again.
    With ``actor``, audited as ``job.retry``; a service it moved is named with the move and
    when its job had failed (``service_from``, ``service_to``, ``failed_at``): the retry clears
    the job's finish, and the service's timeline tells the failure and the retry from these."""
    with database.atomic():
        failed_at = Job.select(Job.finished_at).where(Job.id == job_id).scalar()
        job = queue.retry(job_id, utcnow(), extra_attempts)
        moved = {}
        if job.action == "create" and job.service and job.service.status in (S.FAILED.value, S.PENDING.value):
            Service.update(status=S.PENDING.value, last_error=None, pending_reason=None,
                           updated_at=utcnow()).where(Service.id == job.service_id).execute()
            if job.service.status == S.FAILED.value:
                moved = {"service_from": S.FAILED.value, "service_to": S.PENDING.value,
                         "failed_at": failed_at.isoformat() if failed_at else None}
        if actor:
            audit.record(actor, "job.retry", f"job:{job_id}", job_action=job.action, **moved)
    return job


def close(ref_or_id: str | int, *, actor: str, settings: Settings | None = None) -> tuple[Service, bool]:
    """End a service that holds no account: pending (its create was cancelled, or it still
    waits for a server) or failed (its create failed for good). Audited.

    Refused while a job of the service is queued, running or held (cancel or resolve it
    first). Nothing on the panel is touched. Returns (service, account_may_exist): when the
    create's last attempt ended without a known outcome (interrupted, timed out, cancelled while
    running), the close goes on but an admin is alerted to check the panel.
    """
    with database.atomic():
        service = get_service(ref_or_id)
        if service.status not in {s.value for s in CLOSABLE}:
            raise StateError(f"service {service.ref} is {service.status}; close needs it "
                             f"{' or '.join(s.value for s in CLOSABLE)}")
        blocking = service.jobs.where(Job.status.in_(
            (JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.NEEDS_ATTENTION.value))).first()
        if blocking is not None:
            verb = "resolve" if blocking.status == JobStatus.NEEDS_ATTENTION.value else "cancel"
            raise StateError(f"service {service.ref} has job {blocking.id} ({blocking.action}) "
                             f"{blocking.status}; {verb} it first")
        may_exist = _create_outcome_unknown(service)
        Service.update(status=S.CLOSED.value, pending_reason=None, updated_at=utcnow()).where(
            Service.id == service.id).execute()
        audit.record(actor, "service.close", f"service:{service.ref}", previous_status=service.status,
                     account_may_exist=may_exist)
        closed = Service.get_by_id(service.id)
        if settings is not None:
            notify.billing_event(settings, closed, "service.closed", service.status, change_id="close")
            if may_exist:
                _alert_closed_with_unknown_create(settings, closed)
    return closed, may_exist


def _create_outcome_unknown(service: Service) -> bool:
    """Whether the last create attempt may have reached the panel without us knowing (an
    admin who resolved the create checked the panel: then it is known)."""
    create = service.jobs.where(Job.action == "create").order_by(Job.id.desc()).first()
    if create is None or create.attempts == 0:
        return False
    if any(entry.action == "job.resolve" for entry in audit.entries(f"job:{create.id}")):
        return False
    last = (ProvisioningLog.select().where((ProvisioningLog.job == create)
                                           & (ProvisioningLog.attempt == create.attempts)
                                           & (ProvisioningLog.action == "create"))
            .order_by(ProvisioningLog.id.desc()).first())
    return last is None or last.status != JobStatus.FAILED.value


def _alert_closed_with_unknown_create(settings: Settings, service: Service) -> None:
    server = service.server.name if service.server_id else "?"
    notify.alert(settings, f"service {service.ref} closed; check server {server}",
                 f"Service {service.ref} ({service.domain}) was closed, but the last attempt of its "
                 f"create ended without a known outcome: account {service.username} may exist on "
                 f"server {server}. Check the panel and remove it there if it does.",
                 f"service:{service.id}:closed-unknown")


# -- outcomes ------------------------------------------------------------------------------

def apply_success(job: Job, reported: dict, vault: Vault, settings: Settings | None = None) -> None:
    """Move the service after its job succeeded; ``reported`` is what the playbook set_stats'd.

    With ``settings``, a status change is posted to billing and a create sends the welcome mail."""
    if job.service_id is None:
        return
    service = Service.get_by_id(job.service_id)
    changes: dict[str, Any] = {"updated_at": utcnow(), "last_error": None}
    if job.action in RESULT_STATUS:
        changes["status"] = RESULT_STATUS[job.action].value
    if job.action == "create":
        changes["remote_id"] = str(reported.get("remote_id") or service.username)
        changes["status_reason"] = None
    if job.action == "suspend":
        changes["status_reason"] = job.params.get("reason", "admin")
    if job.action == "unsuspend":
        changes["status_reason"] = None
    if job.action == "change_package":
        changes["package"] = job.params["package"]
        changes.update(variants.moved_to(service, job.params))
    if job.action == "change_password" and job.secret_params:
        new_password = vault.decrypt_json(job.secret_params, f"job {job.id} parameters")["password"]
        changes["password"] = vault.encrypt(new_password)
        changes["password_state"] = (credentials.GIVEN if job.params.get("password") == "given"
                                     else credentials.GENERATED)
    Service.update(**changes).where(Service.id == service.id).execute()
    if settings is not None:
        previous = service.status
        for name, value in changes.items():   # the row as just written, without reading it back
            setattr(service, name, value)
        if service.status != previous:
            notify.billing_event(settings, service, BILLING_EVENTS[job.action], previous,
                                 change_id=f"job{job.id}")
        if job.action == "create":
            notify.welcome(settings, service)


def apply_failure(job: Job, message: str, final: bool, settings: Settings | None = None) -> None:
    """Record why the service's job failed; a create that failed for good fails the service.

    With ``settings``, a final failure alerts an admin once and a status change goes to billing."""
    if job.service_id is None:
        return
    before = Service.get_by_id(job.service_id) if settings is not None and final else None
    changes: dict[str, Any] = {"last_error": message, "updated_at": utcnow()}
    if final and job.action == "create":
        changes["status"] = S.FAILED.value
    Service.update(**changes).where(Service.id == job.service_id).execute()
    if before is not None:
        _notify_final_failure(settings, job, before, message)


def _notify_final_failure(settings: Settings, job: Job, before: Service, message: str) -> None:
    notify.alert(settings, f"{job.action} of service {before.ref} failed",
                 f"Job {job.id} ({job.action}) of service {before.ref} ({before.domain}) failed for "
                 f"good after {job.attempts} attempt(s):\n\n{message}\n\n"
                 f"See `provisiond log show {job.id}`; `provisiond job retry {job.id}` runs it again.",
                 f"job:{job.id}:failed")
    after = Service.get_by_id(before.id)
    if after.status != before.status:
        notify.billing_event(settings, after, "service.failed", before.status, change_id=f"job{job.id}")


# -- payments ------------------------------------------------------------------------------

def record_payment(ref_or_id: str | int, paid_until: datetime.date, today: datetime.date, *,
                   registry: Registry, vault: Vault,
                   policy: RetryPolicy = RetryPolicy(), correct: bool = False,
                   actor: str | None = None) -> Job | None:
    """Record that the service is paid until ``paid_until``.

    A date earlier than the current ``paid_until`` is refused (StateError naming both dates):
    moved back by accident, it would have the sweep suspend a paid-up account. With
    ``correct`` it is a correction. Every payment is kept in the audit trail under ``actor``
    (``payment``, or ``payment.correct``; with the previous date, and the unsuspend job it
    queued), so a service's history shows its payments: the service holds only the last date.

    Returns the unsuspend job when the payment clears a suspension for being overdue
    (``policies.on_payment``); a service suspended by an admin or for abuse stays suspended,
    and None is returned. The payment and the unsuspend request are one transaction.
    """
    from provisiond import audit
    from provisiond.policies import on_payment

    service_id = get_service(ref_or_id).id
    with database.atomic():
        service = Service.get_by_id(service_id)
        previous = service.paid_until
        correction = previous is not None and paid_until < previous
        if correction and not correct:
            raise StateError(f"paid_until: {paid_until} is earlier than the current {previous} of "
                             f"service {service.ref}; give --correct (API: \"correct\": true) to move it back")
        Service.update(paid_until=paid_until, updated_at=utcnow()).where(
            Service.id == service_id).execute()
        job = None
        if on_payment(service.status, service.status_reason, paid_until, today) is not None:
            job = request(registry, vault, service_id, "unsuspend", policy=policy)
        audit.record(actor or audit.cli_actor(), "payment.correct" if correction else "payment",
                     f"service:{service.ref}", previous=previous.isoformat() if previous else None,
                     paid_until=paid_until.isoformat(), **({"job": job.id} if job else {}))
        return job
