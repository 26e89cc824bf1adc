"""The API's request bodies and answers (Pydantic); the OpenAPI document is made from them."""

from __future__ import annotations

import datetime
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# -- request bodies --------------------------------------------------------------------------

def _iso_date(value: Any) -> datetime.date:
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return datetime.date.fromisoformat(value)


IsoDate = Annotated[datetime.date, BeforeValidator(_iso_date)]


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value.replace(tzinfo=datetime.timezone.utc) if value.tzinfo is None else value


# Times are stored as naive UTC; answers carry the zone, ISO 8601 (2026-11-28T10:10:33+00:00).
UtcDateTime = Annotated[datetime.datetime, AfterValidator(_utc)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class OrderIn(Strict):
    """A paid order; ``ref`` is the billing system's reference (an order with a known ``ref``
    returns that service instead of creating another)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"product": "starter", "domain": "shop.example.com", "email": "owner@shop.example.com",
         "ref": "INV-1001", "paid_until": "2030-01-31"}]})

    product: str = Field(min_length=1, max_length=100, pattern=REF_PATTERN)
    domain: str = Field(min_length=1, max_length=253)
    email: str = Field(min_length=3, max_length=254)
    # Checked (1-191 characters, no control characters) by the order itself, as the CLI's.
    name: str | None = Field(None, description="the customer's name, e.g. \"Jane Doe\"")
    username: str | None = Field(None, min_length=1, max_length=64)
    ref: str | None = Field(None, min_length=1, max_length=100)
    paid_until: IsoDate | None = None
    password: str | None = Field(None, min_length=1, max_length=128, repr=False, description=(
        "the account password the billing system chose (checked against the panel's rules, "
        "stored encrypted, never shown again); without it provisiond generates one"))
    variant: str | None = Field(None, min_length=1, max_length=100, pattern=REF_PATTERN,
                                description="a variant of the product (GET /v1/products/{name}/variants)")
    fields: dict[str, str | int | bool] | None = Field(None, description=(
        "the client's checkout values, by field name: the product's checkout schema (its panel's "
        "fields and its own) is `GET /v1/products/{name}/checkout`; unknown, missing required "
        "or invalid values are a 422 naming `fields.<name>`; defaults fill the rest"))


class PaymentIn(Strict):
    paid_until: IsoDate
    correct: bool = Field(False, description="allow a date earlier than the current one "
                                             "(a correction, audited); without it that is a 409")


class RenewIn(Strict):
    # A string checked by provisiond.renew.parse_until, so an ambiguous date is refused naming
    # both of its readings (a 422 naming ``until``).
    until: str = Field(min_length=1, max_length=32, description=(
        "the new paid-until, YYYY-MM-DD: today or later, not before the current paid_until"))


class RenewedOut(BaseModel):
    ref: str
    paid_until: datetime.date
    status: str
    renew_job: int | None = Field(description="the job running the panel's renew.yml; null when it has none")
    unsuspend_job: int | None = Field(description="queued when the service was suspended for being overdue")


class SuspendIn(Strict):
    reason: str = Field("admin", min_length=1, max_length=64,
                        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,63}$",
                        description="overdue, admin, abuse, ...; a payment lifts only 'overdue'")


class ActionIn(Strict):
    audience: Literal["admin", "client"] = "admin"
    params: dict[str, str | int | bool] = Field(default_factory=dict)


class ChangePackageIn(Strict):
    package: str | None = Field(None, min_length=1, max_length=100,
                                description="the panel's package (default: the variant's)")
    variant: str | None = Field(None, min_length=1, max_length=100, pattern=REF_PATTERN,
                                description="a variant of the service's product: its package and settings")


class ChangePasswordIn(Strict):
    password: str | None = Field(None, min_length=1, max_length=128, repr=False,
                                 description="the password the billing system chose; "
                                             "without it provisiond generates one")


class ResolveIn(Strict):
    """How an admin who checked the panel found a needs_attention job's action."""

    outcome: Literal["succeeded", "failed"]
    note: str | None = Field(None, max_length=1000, description="what was found (audited)")


# -- answers ---------------------------------------------------------------------------------

class JobOut(BaseModel):
    id: int
    action: str
    status: str
    service: str | None = Field(description="the service's billing reference")
    service_id: int | None
    server: str | None
    params: dict[str, Any]
    attempts: int
    max_attempts: int
    cancel_requested: bool
    run_after: UtcDateTime
    last_error: str | None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    finished_at: UtcDateTime | None


class ServiceOut(BaseModel):
    id: int
    ref: str
    product: str
    server: str | None
    domain: str
    email: str
    name: str | None
    username: str | None
    remote_id: str | None
    package: str
    variant: str | None = Field(description="the product variant it was ordered with or moved to")
    status: str
    status_reason: str | None
    pending_reason: str | None
    last_error: str | None
    paid_until: datetime.date | None
    fields: dict[str, str | int | bool] = Field(description="the order's checkout values, defaults filled in")
    created_at: UtcDateTime
    updated_at: UtcDateTime


class CheckoutProperty(BaseModel):
    """One checkout field, as JSON Schema says it."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["string", "integer", "boolean"]
    title: str
    pattern: str | None = Field(None, description="the whole value matches it")
    enum: list[str | int | bool] | None = None
    minimum: int | None = None
    maximum: int | None = None
    maxLength: int | None = None
    default: str | int | bool | None = None
    declared_by: Literal["panel", "product"] = Field(alias="x-declared-by")


class CheckoutSchema(BaseModel):
    """A product's checkout schema: JSON Schema of an order's ``fields`` object, from which a
    billing system renders its order form."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "object", "required": ["php_version"], "additionalProperties": False,
         "properties": {"php_version": {"type": "string", "title": "PHP version", "enum": ["8.2", "8.3"],
                                        "maxLength": 255, "x-declared-by": "product"}}}]})

    type: Literal["object"]
    properties: dict[str, CheckoutProperty]
    required: list[str]
    additionalProperties: bool


class CredentialsOut(BaseModel):
    ref: str
    username: str | None
    server: str | None
    password_state: str
    revealable: bool
    password: str


class ServiceDetail(ServiceOut):
    jobs: list[JobOut]


class ServiceAndJob(BaseModel):
    service: ServiceOut
    job: JobOut | None = Field(description="the job this request queued, if any")


class ClosedService(ServiceOut):
    account_may_exist: bool = Field(description="the create's last attempt had no known outcome; "
                                                "an admin alert asks to check the panel")


class JobPage(BaseModel):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int


class ServicePage(BaseModel):
    services: list[ServiceOut]
    total: int | None = Field(description=(
        "how many services match, on every page; null when they were not all counted: a search "
        "(q) of one or two characters counts up to 1,000 matches, and more than that is null"))
    more: bool = Field(description="whether services after this page match (the next offset "
                                   "finds some); true whenever total is null")
    limit: int
    offset: int


class AttemptOut(BaseModel):
    """One attempt of a job (or one extra step of its product: ``action`` is ``create:<step>``)."""

    id: int = Field(description="the attempt's id: /v1/attempts/{id}/events, stdout, artifacts")
    job_id: int
    attempt: int = Field(description="the job's attempt number, from 1")
    action: str
    status: str = Field(description="succeeded, failed, retrying, timeout, cancelled, needs_attention")
    panel: str | None
    rc: int | None
    started_at: UtcDateTime
    finished_at: UtcDateTime
    duration: float = Field(description="seconds")
    failed_task: str | None
    message: str | None
    panel_answer: Any = Field(None, description="the panel's answer at the failing task: JSON where it "
                                                "was JSON, else its text")


class AttemptList(BaseModel):
    job_id: int
    attempts: list[AttemptOut] = Field(description="oldest first")


class EventOut(BaseModel):
    """One task result of an attempt's run, for the attempt's own job only."""

    seq: int = Field(description="run order within the attempt")
    event: str = Field(description="ansible-runner's event name: runner_on_ok, runner_on_failed, ...")
    play: str | None
    task: str | None
    status: str | None = Field(description="ok, changed, failed, skipped, unreachable, ignored")
    started_at: UtcDateTime | None
    duration: float | None = Field(description="seconds")
    stdout: str | None = Field(description="what Ansible printed for it, plain text")
    detail: dict[str, Any] | None = Field(description="msg, rc, stderr and the panel's answer, "
                                                      "at most about 8 KB")


class EventPage(BaseModel):
    attempt_id: int
    events: list[EventOut]
    total: int
    limit: int
    offset: int


class QueueStats(BaseModel):
    counts: dict[str, int] = Field(description="jobs by status")
    queued: int
    running: int
    oldest_queued_age_seconds: float | None


class ImportedRow(BaseModel):
    row: int
    ref: str
    product: str
    server: str
    username: str
    domain: str
    email: str
    paid_until: datetime.date | None
    status: Literal["active", "suspended"]


class ImportOut(BaseModel):
    dry_run: bool
    imported: int = Field(description="services written (0 on a dry run)")
    services: int = Field(description="services in the file")
    by_status: dict[str, int]
    by_server: dict[str, int]
    by_product: dict[str, int]
    over_capacity: list[dict[str, Any]] = Field(
        description="servers now beyond max_accounts (they take no new orders): server, services, max_accounts")
    rows: list[ImportedRow]


class TokenOut(BaseModel):
    name: str
    scope: Literal["billing", "admin"]
    created_at: UtcDateTime
    last_used_at: UtcDateTime | None = Field(description="written at most once a minute")
    revoked: bool


class Health(BaseModel):
    status: Literal["ok"]


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    detail: list[ErrorItem]


class Problem(BaseModel):
    detail: str
