"""The HTTP API for billing systems: FastAPI, JSON, versioned under ``/v1``.

Thin, like the CLI: a route checks its input with a Pydantic model, calls the function the CLI
calls (``lifecycle``, ``queue``) and answers with a view that carries no secret (no password, no
server credentials). A running daemon takes an enqueued job at once: ``queue`` wakes the
daemons itself when the enqueue commits (NOTIFY, or the wake file on SQLite). Every route
but ``/v1/health`` and the OpenAPI document (``/openapi.json``, ``/docs``) needs
``Authorization: Bearer <token>`` (``provisiond token create NAME``).

A request body over 1 MiB is 413, refused before it is read (``bodylimit``).

Errors: bad input is 422 naming the field (``{"detail": [{"loc": ["body", field], "msg": ...,
"type": ...}]}``), an unknown id 404, a state that forbids the action 409, a panel that cannot
do it 422, no or a bad token 401 with ``WWW-Authenticate: Bearer``.

Routes are plain functions, which FastAPI runs in its thread pool. peewee keeps one
connection per thread, so each route (and the token check, which may run in another thread)
opens its thread's connection when it is closed and closes it when done (``_with_db``).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import re
import signal
import threading
import time
from typing import Annotated, Any, Literal

import peewee as pw
import uvicorn
from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from provisiond import db as dbmod
from provisiond import actions, credentials, lifecycle, outcomes, panels, queue, tokens
from provisiond import health as daemon_health
from provisiond.bodylimit import MAX_BODY, BodyLimit
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import NotFound, PanelError, StateError, ValidationError
from provisiond.models import ApiToken, Job, JobStatus, Service, database, utcnow
from provisiond.worker import retry_policy

log = logging.getLogger("provisiond.api")

# Ids are PostgreSQL integers; a longer number can only be a billing reference.
MAX_ID = 2**31 - 1
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# -- database connection per request ---------------------------------------------------------

@contextlib.contextmanager
def _connection():
    """This thread's connection: opened if closed, and then closed again when done."""
    opened = database.is_closed()
    if opened:
        database.connect()
    try:
        yield
    finally:
        if opened:
            database.close()


def _with_db(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _connection():
            return func(*args, **kwargs)
    return wrapper


# -- request bodies --------------------------------------------------------------------------

def _iso_date(value: Any) -> datetime.date:
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return datetime.date.fromisoformat(value)


IsoDate = Annotated[datetime.date, BeforeValidator(_iso_date)]


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


class PaymentIn(Strict):
    paid_until: IsoDate
    correct: bool = Field(False, description="allow a date earlier than the current one "
                                             "(a correction, audited); without it that is a 409")


class SuspendIn(Strict):
    reason: str = Field("admin", min_length=1, max_length=64,
                        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,63}$",
                        description="overdue, admin, abuse, ...; a payment lifts only 'overdue'")


class ActionIn(Strict):
    audience: Literal["admin", "client"] = "admin"
    params: dict[str, str | int | bool] = Field(default_factory=dict)


class ChangePackageIn(Strict):
    package: str = Field(min_length=1, max_length=100)


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
    run_after: datetime.datetime
    last_error: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    finished_at: datetime.datetime | None


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
    status: str
    status_reason: str | None
    pending_reason: str | None
    last_error: str | None
    paid_until: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


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


class QueueStats(BaseModel):
    counts: dict[str, int] = Field(description="jobs by status")
    queued: int
    running: int
    oldest_queued_age_seconds: float | None


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


def job_view(job: Job) -> dict:
    return {"id": job.id, "action": job.action, "status": job.status,
            "service": job.service.ref if job.service_id else None, "service_id": job.service_id,
            "server": job.server.name if job.server_id else None, "params": job.params or {},
            "attempts": job.attempts, "max_attempts": job.max_attempts,
            "cancel_requested": job.cancel_requested, "run_after": job.run_after,
            "last_error": job.last_error, "created_at": job.created_at,
            "updated_at": job.updated_at, "finished_at": job.finished_at}


def service_view(service: Service) -> dict:
    return {"id": service.id, "ref": service.ref, "product": service.product.name,
            "server": service.server.name if service.server_id else None, "domain": service.domain,
            "email": service.email, "name": service.name, "username": service.username,
            "remote_id": service.remote_id,
            "package": service.package, "status": service.status,
            "status_reason": service.status_reason, "pending_reason": service.pending_reason,
            "last_error": service.last_error, "paid_until": service.paid_until,
            "created_at": service.created_at, "updated_at": service.updated_at}


def queue_stats(now: datetime.datetime) -> dict:
    counts = daemon_health.queue_depth()
    return {"counts": counts, "queued": counts[JobStatus.QUEUED.value],
            "running": counts[JobStatus.RUNNING.value],
            "oldest_queued_age_seconds": daemon_health.oldest_queued_age(now)}


def _service_id(key: str) -> int:
    """The id of the service whose billing reference is ``key``: the API addresses services
    by reference only, so a reference never reaches the service that has it as an id."""
    return lifecycle.get_service_by_ref(key).id


class _PanelCache:
    """The panel registry, discovered again once it is ``ttl`` seconds old: a panel folder
    dropped in is used within seconds, and a request does not rescan the folders."""

    def __init__(self, settings: Settings, ttl: float = 5.0):
        self.settings = settings
        self.ttl = ttl
        self._found: tuple[float, panels.Registry] | None = None

    def __call__(self) -> panels.Registry:
        found = self._found
        if found is None or time.monotonic() - found[0] > self.ttl:
            found = (time.monotonic(), panels.discover(self.settings.panel_dirs()))
            self._found = found  # a race only means discovering twice
        return found[1]

    def use(self, settings: Settings) -> None:
        """Search the panel folders of reloaded settings from the next request on."""
        self.settings, self._found = settings, None


# -- errors ----------------------------------------------------------------------------------

def _problem(status: int, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ValidationError)
    def bad_input(request: Request, exc: ValidationError) -> JSONResponse:
        return _problem(422, [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}])

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The same shape as above, without echoing the input back.
        return _problem(422, [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                               "type": str(e.get("type", "value_error"))} for e in exc.errors()])

    @app.exception_handler(NotFound)
    def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _problem(404, str(exc))

    @app.exception_handler(StateError)
    def wrong_state(request: Request, exc: StateError) -> JSONResponse:
        return _problem(409, str(exc))

    @app.exception_handler(PanelError)
    def panel_cannot(request: Request, exc: PanelError) -> JSONResponse:
        return _problem(422, [{"loc": ["body"], "msg": str(exc), "type": "panel_error"}])


UNAUTHORIZED = {401: {"model": Problem, "description": "no token, or not a valid one"}}
NOT_FOUND = {404: {"model": Problem, "description": "no such service or job"}}
CONFLICT = {409: {"model": Problem, "description": "the current state does not allow it"}}
INVALID = {422: {"model": ValidationProblem, "description": "bad input; `loc` names the field"}}

ServiceKey = Annotated[str, Path(min_length=1, max_length=100, pattern=REF_PATTERN,
                                 description="the service's billing reference (never its id)")]
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]

bearer = HTTPBearer(auto_error=False, description="a token from `provisiond token create NAME`")


@_with_db
def authenticate(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> ApiToken:
    """The caller's token, or 401."""
    if credentials is None:
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    found = tokens.verify(credentials.credentials)
    if found is None:
        raise HTTPException(401, "the bearer token is not valid",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return found


# -- the application -------------------------------------------------------------------------

def create_app(settings: Settings, vault: Vault | None = None) -> FastAPI:
    """The API application; binds the database named by ``settings`` unless one is bound."""
    if database.obj is None:
        dbmod.require_current(dbmod.connect(settings.database_url))
    vault = vault or Vault.from_settings(settings)
    policy = retry_policy(settings)

    registry = _PanelCache(settings)

    app = FastAPI(title="provisiond", version="1", openapi_url="/openapi.json",
                  description="Provisioning of hosting accounts for billing systems.")
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    app.state.panels = registry  # `run --api` points it at reloaded settings (SIGHUP)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authenticate)], responses=UNAUTHORIZED)

    @app.get("/v1/health", response_model=Health, tags=["health"],
             responses={503: {"model": Problem, "description": "the database cannot be reached, or no "
                                                              "daemon ticked within three tick intervals"}})
    def health():
        """200 while the database answers and a daemon ticked within three tick intervals;
        else 503 saying which. Needs no token."""
        try:
            with _connection():
                verdict = daemon_health.check(settings)
        except pw.PeeweeException as exc:  # the connection itself could not be opened
            log.warning("health: the database cannot be reached: %s", exc)
            return _problem(503, "the database cannot be reached")
        if not verdict.ok:
            log.warning("health: %s", verdict.reason)
            return _problem(503, verdict.reason)
        return {"status": "ok"}

    @v1.post("/orders", status_code=201, response_model=ServiceAndJob, tags=["services"],
             responses={200: {"model": ServiceAndJob, "description": "known ref: that service"},
                        409: {"model": Problem, "description": "known ref with other data; "
                                                               "names the fields that differ"},
                        **INVALID})
    @_with_db
    def create_order(order: OrderIn):
        """A paid order: the service and its create job (no job while no server has room)."""
        ordered = lifecycle.place_order(
            registry(), vault, product=order.product, domain=order.domain, email=order.email,
            username=order.username, ref=order.ref, name=order.name, paid_until=order.paid_until,
            password=order.password, policy=policy, settings=settings)
        answer = {"service": service_view(ordered.service),
                  "job": job_view(ordered.job) if ordered.job else None}
        return JSONResponse(ServiceAndJob.model_validate(answer).model_dump(mode="json"),
                            status_code=201 if ordered.created else 200)

    @v1.get("/services/{service}", response_model=ServiceDetail, tags=["services"],
            responses={**NOT_FOUND, **INVALID})
    @_with_db
    def show_service(service: ServiceKey):
        """A service and its jobs, oldest first."""
        found = lifecycle.get_service(_service_id(service))
        return service_view(found) | {"jobs": [job_view(j) for j in found.jobs.order_by(Job.id)]}

    @v1.post("/services/{service}/payments", response_model=ServiceAndJob, tags=["services"],
             responses={**NOT_FOUND, **CONFLICT, **INVALID})
    @_with_db
    def record_payment(service: ServiceKey, payment: PaymentIn,
                       token: Annotated[ApiToken, Depends(authenticate)]):
        """Record ``paid_until``; a service suspended for being overdue is unsuspended at once
        (never one suspended by an admin or for abuse). An earlier date than the current one is
        a 409 unless ``correct`` is true."""
        service_id = _service_id(service)
        job = lifecycle.record_payment(service_id, payment.paid_until, utcnow().date(),
                                       registry=registry(), vault=vault, policy=policy,
                                       correct=payment.correct, actor=f"api:{token.name}")
        return {"service": service_view(Service.get_by_id(service_id)),
                "job": job_view(job) if job else None}

    def _request(service: str, action: str, **kwargs) -> dict:
        return job_view(lifecycle.request(registry(), vault, _service_id(service), action,
                                          policy=policy, **kwargs))

    action_responses = {**NOT_FOUND, **CONFLICT, **INVALID}

    @v1.post("/services/{service}/suspend", status_code=202, response_model=JobOut,
             tags=["services"], responses=action_responses)
    @_with_db
    def suspend(service: ServiceKey, body: Annotated[SuspendIn | None, Body()] = None):
        return _request(service, "suspend", reason=(body or SuspendIn()).reason)

    @v1.post("/services/{service}/unsuspend", status_code=202, response_model=JobOut,
             tags=["services"], responses=action_responses)
    @_with_db
    def unsuspend(service: ServiceKey):
        return _request(service, "unsuspend")

    @v1.post("/services/{service}/terminate", status_code=202, response_model=JobOut,
             tags=["services"], responses=action_responses)
    @_with_db
    def terminate(service: ServiceKey):
        return _request(service, "terminate")

    @v1.post("/services/{service}/change-package", status_code=202, response_model=JobOut,
             tags=["services"], responses=action_responses)
    @_with_db
    def change_package(service: ServiceKey, body: ChangePackageIn):
        return _request(service, "change_package", package=body.package)

    @v1.post("/services/{service}/change-password", status_code=202, response_model=JobOut,
             tags=["services"], responses=action_responses)
    @_with_db
    def change_password(service: ServiceKey, body: Annotated[ChangePasswordIn | None, Body()] = None):
        """Set the password the billing system chose, or a new generated one; it is never part
        of an answer."""
        return _request(service, "change_password", password=(body or ChangePasswordIn()).password)

    @v1.get("/services/{service}/credentials", response_model=CredentialsOut, tags=["services"],
            responses={**NOT_FOUND, 409: {"model": Problem, "description": (
                "revealed already since the last change, or chosen by the billing system")}, **INVALID})
    @_with_db
    def reveal_credentials(service: ServiceKey, token: Annotated[ApiToken, Depends(authenticate)]):
        """The generated password, once per change, for an admin (every token is one for now:
        tokens have no scopes yet); audited. A second call is refused with 409 saying why."""
        found = lifecycle.get_service(_service_id(service))
        return credentials.reveal(found, vault, f"api:{token.name}")

    @v1.post("/services/{service}/close", response_model=ClosedService, tags=["services"],
             responses=action_responses)
    @_with_db
    def close(service: ServiceKey, token: Annotated[ApiToken, Depends(authenticate)]):
        """End a pending or failed service that holds no account (its create was cancelled or
        failed, or it waits for a server); 409 while one of its jobs is open or held. Audited."""
        closed, may_exist = lifecycle.close(_service_id(service), actor=f"api:{token.name}",
                                            settings=settings)
        return service_view(closed) | {"account_may_exist": may_exist}

    @v1.post("/services/{service}/actions/{action}", tags=["services"], response_model=dict[str, Any],
             responses=action_responses)
    @_with_db
    def service_action(service: ServiceKey, action: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
                       body: Annotated[ActionIn | None, Body()] = None):
        """Run an action the service's panel declares (e.g. ``login_link``) for an active
        service (an admin also for a suspended one; 409 otherwise), at once; its answer is what
        the panel reported. ``audience: client`` gets only the actions the panel offers to
        client areas."""
        body = body or ActionIn()
        return actions.run(settings, vault, registry(), action=action, audience=body.audience,
                           service=lifecycle.get_service(_service_id(service)), params=body.params)

    @v1.get("/jobs", response_model=JobPage, tags=["jobs"], responses=INVALID)
    @_with_db
    def list_jobs(status: Annotated[JobStatus | None, Query()] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0):
        """Jobs, newest first; ``?status=failed`` lists the failed ones."""
        query = Job.select()
        if status is not None:
            query = query.where(Job.status == status.value)
        page = query.order_by(Job.id.desc()).limit(limit).offset(offset)
        return {"jobs": [job_view(j) for j in page], "total": query.count(),
                "limit": limit, "offset": offset}

    @v1.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses={**NOT_FOUND, **INVALID})
    @_with_db
    def show_job(job_id: JobId):
        return job_view(queue.get(job_id))

    @v1.post("/jobs/{job_id}/retry", status_code=202, response_model=JobOut, tags=["jobs"],
             responses={**NOT_FOUND, **CONFLICT, **INVALID})
    @_with_db
    def retry_job(job_id: JobId):
        """Queue a failed, cancelled or held job again, with fresh attempts."""
        return job_view(lifecycle.retry_job(job_id, settings.retry_max_attempts))

    @v1.post("/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"],
             responses={**NOT_FOUND, **CONFLICT, **INVALID})
    @_with_db
    def cancel_job(job_id: JobId):
        """Cancel a queued job at once, or ask a running one to stop."""
        return job_view(outcomes.cancel(job_id, settings))

    @v1.post("/jobs/{job_id}/resolve", response_model=JobOut, tags=["jobs"],
             responses={**NOT_FOUND, **CONFLICT, **INVALID})
    @_with_db
    def resolve_job(job_id: JobId, body: ResolveIn, token: Annotated[ApiToken, Depends(authenticate)]):
        """End a needs_attention job as the panel shows it; the service moves on as that
        outcome of a run would (status, alert, billing webhook). Audited."""
        return job_view(outcomes.resolve(job_id, body.outcome == "succeeded", actor=f"api:{token.name}",
                                         note=body.note, settings=settings, vault=vault))

    @v1.get("/queue/stats", response_model=QueueStats, tags=["jobs"])
    @_with_db
    def stats():
        return queue_stats(utcnow())

    app.include_router(v1)
    return app


def build_server(settings: Settings, host: str | None = None, port: int | None = None,
                 vault: Vault | None = None) -> uvicorn.Server:
    """A uvicorn server for the API, on ``api_host``:``api_port`` (loopback) unless told."""
    config = uvicorn.Config(create_app(settings, vault), host=host or settings.api_host,
                            port=settings.api_port if port is None else port,
                            log_config=None, access_log=True)
    return uvicorn.Server(config)


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          vault: Vault | None = None, server: uvicorn.Server | None = None) -> None:
    """Serve the API (``server``, or one built here) until SIGINT or SIGTERM, then return."""
    server = server or build_server(settings, host, port, vault)
    log.info("provisiond API on http://%s:%s", server.config.host, server.config.port)
    run_server(server)


def run_server(server: uvicorn.Server) -> None:
    """Run ``server`` until SIGINT or SIGTERM and return normally.

    uvicorn stops gracefully on those signals and then raises the signal again for the
    handler that was in place before it; SIGTERM's default would end the process there, before
    the caller's cleanup (``run --api`` stops the daemon after the API: running playbooks finish
    and are recorded). So while the server runs, that handler does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        server.run()  # no signals here: the caller stops it with ``server.should_exit``
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in STOP_SIGNALS}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
