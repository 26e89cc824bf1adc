"""The data model (see shared/DESIGN.md, "Data model").

Times are naive UTC datetimes everywhere (``utcnow()``), so SQLite and PostgreSQL compare alike.
Secret values are never stored in clear: ``Server.credentials`` holds secret fields encrypted
by provisiond.crypto, ``Service.password`` and ``Job.secret_params`` are encrypted blobs.
"""

from __future__ import annotations

import datetime
import enum
import json

import peewee as pw

database = pw.DatabaseProxy()


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class JsonField(pw.TextField):
    """JSON kept as text: portable between SQLite and PostgreSQL, and plain to read."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class ServiceStatus(str, enum.Enum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    FAILED = "failed"
    CLOSED = "closed"          # ended without an account: its create was cancelled or failed


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NEEDS_ATTENTION = "needs_attention"


OPEN_JOB_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Setting(BaseModel):
    """Small key/value facts the daemon keeps: schema version, last sweep, ..."""

    key = pw.CharField(primary_key=True, max_length=100)
    value = pw.TextField()


class ServerGroup(BaseModel):
    name = pw.CharField(unique=True, max_length=100)
    strategy = pw.CharField(max_length=32, default="least-loaded")
    last_server_id = pw.IntegerField(null=True)
    created_at = pw.DateTimeField(default=utcnow)


class Server(BaseModel):
    name = pw.CharField(unique=True, max_length=100)
    panel = pw.CharField(max_length=64)
    host = pw.CharField(max_length=255)
    port = pw.IntegerField(null=True)
    group = pw.ForeignKeyField(ServerGroup, backref="servers", on_delete="RESTRICT")
    credentials = JsonField(default=dict)
    max_accounts = pw.IntegerField(default=500)
    # Panel calls the daemon makes to it at once, at most (every run on it, every fork of them)
    max_concurrency = pw.IntegerField(default=2)
    enabled = pw.BooleanField(default=True)
    health = pw.CharField(max_length=16, default="unknown")
    health_message = pw.TextField(null=True)
    health_checked_at = pw.DateTimeField(null=True)
    host_key = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)


class Product(BaseModel):
    name = pw.CharField(unique=True, max_length=100)
    panel = pw.CharField(max_length=64)
    group = pw.ForeignKeyField(ServerGroup, backref="products", on_delete="RESTRICT")
    package = pw.CharField(max_length=255)
    config = JsonField(default=dict)
    suspend_after_days = pw.IntegerField(null=True)
    terminate_after_days = pw.IntegerField(null=True)
    extra_roles = JsonField(default=list)
    welcome_password = pw.BooleanField(default=False)
    backup_before_terminate = pw.BooleanField(default=False)
    # The product's own checkout fields, in order: [{name, type, ...}] (provisiond.checkout)
    checkout = JsonField(default=list)
    created_at = pw.DateTimeField(default=utcnow)


class ProductVariant(BaseModel):
    """A variant of a product ("pro-12m"): package settings over the product's, and optionally
    another package (provisiond.variants)."""

    product = pw.ForeignKeyField(Product, backref="variants", on_delete="CASCADE")  # gone with it
    name = pw.CharField(max_length=100)
    package = pw.CharField(max_length=255, null=True)  # null: the product's package
    config = JsonField(default=dict)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("product", "name"), True),)


class Service(BaseModel):
    ref = pw.CharField(unique=True, max_length=100)
    product = pw.ForeignKeyField(Product, backref="services", on_delete="RESTRICT")
    server = pw.ForeignKeyField(Server, backref="services", null=True, on_delete="RESTRICT")
    domain = pw.CharField(max_length=253, index=True)
    email = pw.CharField(max_length=254)
    name = pw.CharField(max_length=191, null=True)  # the customer's name, when the order gave one
    username = pw.CharField(max_length=64, null=True)
    remote_id = pw.CharField(max_length=255, null=True)
    package = pw.CharField(max_length=255)
    password = pw.TextField(null=True)
    # generated (provisiond chose it, not revealed yet), revealed (shown once), given (the
    # billing system chose it; never revealed). See credentials.py.
    password_state = pw.CharField(max_length=16, default="generated")
    status = pw.CharField(max_length=16, default=ServiceStatus.PENDING.value, index=True)
    status_reason = pw.CharField(max_length=64, null=True)
    pending_reason = pw.TextField(null=True)
    last_error = pw.TextField(null=True)
    paid_until = pw.DateField(null=True)
    hold_until = pw.DateField(null=True)
    never_terminate = pw.BooleanField(default=False)
    fields = JsonField(default=dict)  # the order's checkout fields, checked, defaults filled in
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    # The product variant it was ordered with or moved to (provisiond.variants); null: the product's own.
    variant = pw.ForeignKeyField(ProductVariant, backref="services", null=True, on_delete="RESTRICT")

    class Meta:
        indexes = ((("server", "username"), True),)


class Job(BaseModel):
    service = pw.ForeignKeyField(Service, backref="jobs", null=True, on_delete="CASCADE")
    server = pw.ForeignKeyField(Server, backref="jobs", null=True, on_delete="CASCADE")
    action = pw.CharField(max_length=64)
    params = JsonField(default=dict)
    secret_params = pw.TextField(null=True)
    status = pw.CharField(max_length=16, default=JobStatus.QUEUED.value)
    attempts = pw.IntegerField(default=0)
    max_attempts = pw.IntegerField(default=6)
    run_after = pw.DateTimeField(default=utcnow)
    lease_owner = pw.CharField(max_length=128, null=True)
    lease_expires_at = pw.DateTimeField(null=True)
    fence = pw.IntegerField(default=0)
    cancel_requested = pw.BooleanField(default=False)
    idempotency_key = pw.CharField(max_length=200, null=True, unique=True)
    last_error = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    finished_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("status", "run_after"), False),)


class ProvisioningLog(BaseModel):
    job = pw.ForeignKeyField(Job, backref="logs", on_delete="CASCADE")
    attempt = pw.IntegerField()
    server = pw.ForeignKeyField(Server, null=True, on_delete="SET NULL")
    panel = pw.CharField(max_length=64, null=True)
    action = pw.CharField(max_length=64)
    status = pw.CharField(max_length=16)
    rc = pw.IntegerField(null=True)
    started_at = pw.DateTimeField()
    finished_at = pw.DateTimeField()
    duration = pw.FloatField()
    failed_task = pw.TextField(null=True)
    message = pw.TextField(null=True)
    panel_answer = pw.TextField(null=True)
    stdout_excerpt = pw.TextField(null=True)
    artifacts_path = pw.TextField(null=True)
    # The panel folder the playbook came from, as it was when it ran (a folder can move).
    playbook_folder = pw.TextField(null=True)


class ApiToken(BaseModel):
    """A bearer token of the HTTP API; only its SHA-256 is kept. ``scope`` is ``billing`` or
    ``admin`` (see provisiond.tokens)."""

    name = pw.CharField(unique=True, max_length=100)
    token_hash = pw.CharField(unique=True, max_length=64)
    scope = pw.CharField(max_length=16, default="billing")
    created_at = pw.DateTimeField(default=utcnow)
    last_used_at = pw.DateTimeField(null=True)
    revoked = pw.BooleanField(default=False)


class Notification(BaseModel):
    """The outbox of alerts, client mails and billing webhooks, sent apart from provisioning.

    ``dedup_key`` is unique, so the same failure never alerts twice.
    """

    kind = pw.CharField(max_length=32)            # alert_email, alert_webhook, welcome_email, billing_webhook
    dedup_key = pw.CharField(max_length=255, unique=True)
    payload = JsonField(default=dict)
    status = pw.CharField(max_length=16, default="pending", index=True)  # pending, sent, failed
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(default=utcnow)
    last_error = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    sent_at = pw.DateTimeField(null=True)


class AuditEntry(BaseModel):
    """Who did what, by hand, that a later reader must be able to see: an admin resolving a
    held job, closing a service, correcting a payment date, revealing a password."""

    at = pw.DateTimeField(default=utcnow, index=True)
    actor = pw.CharField(max_length=200)          # cli:root@host, api:billing
    action = pw.CharField(max_length=64)          # job.resolve, service.close, ...
    subject = pw.CharField(max_length=200, index=True)  # job:7, service:INV-1001
    detail = JsonField(default=dict)


class Daemon(BaseModel):
    """One row per daemon process: its heartbeat, read by health checks and `status`."""

    owner = pw.CharField(primary_key=True, max_length=128)
    host = pw.CharField(max_length=255)
    pid = pw.IntegerField()
    version = pw.CharField(max_length=32)
    started_at = pw.DateTimeField(default=utcnow)
    last_tick_at = pw.DateTimeField(null=True)
    stopped_at = pw.DateTimeField(null=True)


class ServerSync(BaseModel):
    """The last sync of a server (``server sync``, the daemon's daily one): when, how many of
    each kind of drift, and the whole report as ``GET /v1/servers/{name}/drift`` gives it.
    ``fingerprint`` tells a changed drift from the same one found again."""

    server = pw.ForeignKeyField(Server, unique=True, backref="syncs", on_delete="CASCADE")
    checked_at = pw.DateTimeField()
    panel_accounts = pw.IntegerField()
    services = pw.IntegerField()
    orphans = pw.IntegerField()
    missing = pw.IntegerField()
    state_drift = pw.IntegerField()
    package_drift = pw.IntegerField()
    identity_drift = pw.IntegerField()
    fingerprint = pw.CharField(max_length=64)
    report = JsonField()


class Usage(BaseModel):
    """One service's usage as its panel reported it at one collection (``provisiond.usage``).

    Sizes are MB; a limit of null is unlimited; any figure the panel does not report is null.
    """

    service = pw.ForeignKeyField(Service, backref="usage", on_delete="CASCADE")
    collected_at = pw.DateTimeField()
    disk_used_mb = pw.FloatField(null=True)
    disk_limit_mb = pw.FloatField(null=True)
    bandwidth_used_mb = pw.FloatField(null=True)
    bandwidth_limit_mb = pw.FloatField(null=True)
    inodes_used = pw.BigIntegerField(null=True)
    inodes_limit = pw.BigIntegerField(null=True)
    mailboxes = pw.IntegerField(null=True)
    databases = pw.IntegerField(null=True)

    class Meta:
        # (service, collected_at): a service's latest row and its history; (collected_at, id):
        # a billing system's pull of everything since a time, paged by that key.
        indexes = ((("service", "collected_at"), True), (("collected_at", "id"), False))


class RunEvent(BaseModel):
    """One task result of one attempt's run, for its job's host only (``provisiond.runs``).

    A batch runs many jobs in one playbook; each attempt keeps only its own host's events, so
    a console reading them never sees a neighbour's. ``stdout`` is the event's own output with
    Ansible's colours kept, ``detail`` a trimmed copy of its result (msg, rc, the panel's
    answer); both were redacted before they got here. ``status`` is null for an event that is
    not a task result.
    """

    attempt = pw.ForeignKeyField(ProvisioningLog, backref="events", on_delete="CASCADE")
    seq = pw.IntegerField()                        # run order within the attempt
    event = pw.CharField(max_length=64)            # runner_on_ok, runner_on_failed, ...
    play = pw.TextField(null=True)
    task = pw.TextField(null=True)
    status = pw.CharField(max_length=16, null=True)  # ok changed failed skipped unreachable ignored
    started_at = pw.DateTimeField(null=True)
    duration = pw.FloatField(null=True)
    stdout = pw.TextField(null=True)
    detail = JsonField(null=True)

    class Meta:
        indexes = ((("attempt", "seq"), True),)


class StepSecret(BaseModel):
    """A secret one of a service's steps needs (a mailbox or database password), made once
    (``provisiond.step_secrets``) and kept encrypted with the vault: a retry reuses it."""

    service = pw.ForeignKeyField(Service, backref="step_secrets", on_delete="CASCADE")
    step = pw.CharField(max_length=100)    # the role's name
    name = pw.CharField(max_length=100)    # the secret's name in the role's meta/provisiond.yml
    value = pw.TextField()                 # vault-encrypted
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("service", "step", "name"), True),)


MODELS = [Setting, ServerGroup, Server, Product, ProductVariant, Service, Job, ProvisioningLog, ApiToken,
          Notification, AuditEntry, Daemon, ServerSync, Usage, RunEvent, StepSecret]

