"""What every route module shares: the database connection per request, the token check, the
errors' shapes, the path parameters and the views (which carry no secret).

Token scopes (provisiond.tokens). Every route under ``/v1`` but ``/v1/health`` needs a token;
an ``admin`` token may call every route, a ``billing`` token only those a billing system needs.
A billing token on an admin route is 403 with ``WWW-Authenticate: Bearer
error="insufficient_scope", scope="admin"``. Admin routes take ``Depends(require_admin)``.

    route                                            scope    why
    POST /v1/orders                                  billing  a paid order
    GET  /v1/services/{ref}                          billing  the service and its jobs
    POST /v1/services/{ref}/payments                 billing  paid_until; may unsuspend
    POST /v1/services/{ref}/suspend, unsuspend,      billing  the lifecycle a billing engine drives
         terminate, change-package, change-password
    POST /v1/services/{ref}/actions/{action}         billing  login links for client and staff areas
    GET  /v1/services (status, server, q, paging)    billing  find a service without knowing its ref
    GET  /v1/jobs, /v1/jobs/{id}, /v1/queue/stats    billing  reads: what happened to an order
    GET  /v1/jobs/{id}/attempts,                     billing  reads: each attempt, its tasks and
         /v1/attempts/{id}/events, .../stdout                 output (the job's own, redacted)
    GET  /v1/services/{ref}/credentials              admin    reveals a password (audited)
    POST /v1/services/{ref}/close                    admin    ends a service by hand (audited)
    POST /v1/jobs/{id}/retry, cancel, resolve        admin    decisions after checking the panel
    GET  /v1/tokens                                  admin    who may call the API
    GET  /v1/attempts/{id}/artifacts                 admin    the run's files, for diagnosis
    POST /v1/services/import                         admin    records accounts without a panel call
    servers, groups, products, sync, usage           admin    the fleet itself
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import time
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from provisiond import lifecycle, panels, tokens
from provisiond.tokens import Scope
from provisiond.api.schemas import REF_PATTERN, Problem, ValidationProblem
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import NotFound, PanelError, StateError, ValidationError
from provisiond.models import ApiToken, Job, database
from provisiond.policies import RetryPolicy

# Ids are PostgreSQL integers; a longer number can only be a billing reference.
MAX_ID = 2**31 - 1


# -- database connection per request ---------------------------------------------------------

# How many requests may hold a connection at once (``api_db_pool``; set by ``create_app``).
_slots = threading.BoundedSemaphore(20)
SLOT_WAIT_SECONDS = 30.0


def bound_connections(size: int) -> None:
    """Let at most ``size`` requests hold a database connection at once; the others wait."""
    global _slots
    _slots = threading.BoundedSemaphore(size)


@contextlib.contextmanager
def connection():
    """This thread's connection: opened if closed, and then closed again when done.

    On PostgreSQL the API's database is pooled (``db.connect(pool=True)``): closing hands the
    connection back for the next request, and opening takes a kept one. At most ``api_db_pool``
    requests hold one at once, so the API never opens more than that many; a request past them
    waits up to ``SLOT_WAIT_SECONDS`` and is then answered 503.
    """
    opened = database.is_closed()
    if opened:
        slots = _slots
        if not slots.acquire(timeout=SLOT_WAIT_SECONDS):
            raise HTTPException(503, "every database connection of the API is busy; try again")
        try:
            database.connect()
        except BaseException:
            slots.release()
            raise
    try:
        yield
    finally:
        if opened:
            try:
                database.close()
            finally:
                slots.release()


def with_db(func):
    """Run a route (or a dependency) inside this thread's connection (see ``connection``)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with connection():
            return func(*args, **kwargs)
    return wrapper


# -- what routes work with -------------------------------------------------------------------

class PanelCache:
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


@dataclasses.dataclass(frozen=True)
class Context:
    """The application's settings, vault, retry policy and panels, as routes receive them."""

    settings: Settings
    vault: Vault
    policy: RetryPolicy
    panels: PanelCache


def context(request: Request) -> Context:
    """The dependency that hands a route the application's ``Context``."""
    return request.app.state.context


def service_id(key: str) -> int:
    """The id of the service whose billing reference is ``key``: the API addresses services
    by reference only, so a reference never reaches the service that has it as an id."""
    return lifecycle.get_service_by_ref(key).id


# -- tokens ----------------------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="a token from `provisiond token create NAME`")


@with_db
def authenticate(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> ApiToken:
    """The caller's token, or 401."""
    if credentials is None:
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    found = tokens.verify(credentials.credentials)
    if found is None:
        raise HTTPException(401, "the bearer token is not valid",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return found


def require_admin(token: Annotated[ApiToken, Security(authenticate)]) -> ApiToken:
    """The caller's token when it is an admin token (it may manage the fleet: servers, groups,
    products, sync, usage, and decide about jobs and services by hand); else 403."""
    if not tokens.allows(token, Scope.ADMIN):
        raise HTTPException(403, f"this route needs a token of scope admin; token {token.name} has "
                                 f"scope {token.scope} (provisiond token create NAME --scope admin)",
                            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="admin"'})
    return token


# -- errors ----------------------------------------------------------------------------------

def problem(status: int, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


class QueryProblem(Exception):
    """Bad query parameter found past FastAPI's own checks (a server that does not exist):
    answered 422 with ``loc`` ``["query", field]``, as FastAPI answers its own."""

    def __init__(self, error: ValidationError):
        self.error = error


@contextlib.contextmanager
def query_errors():
    """Inside a listing route: a ``ValidationError`` names a query parameter, not the body."""
    try:
        yield
    except ValidationError as exc:
        raise QueryProblem(exc) from exc


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QueryProblem)
    def bad_query(request: Request, exc: QueryProblem) -> JSONResponse:
        return problem(422, [{"loc": ["query", exc.error.field], "msg": exc.error.message, "type": "value_error"}])

    @app.exception_handler(ValidationError)
    def bad_input(request: Request, exc: ValidationError) -> JSONResponse:
        return problem(422, [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}])

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The same shape as above, without echoing the input back.
        return problem(422, [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                              "type": str(e.get("type", "value_error"))} for e in exc.errors()])

    @app.exception_handler(NotFound)
    def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(StateError)
    def wrong_state(request: Request, exc: StateError) -> JSONResponse:
        return problem(409, str(exc))

    @app.exception_handler(PanelError)
    def panel_cannot(request: Request, exc: PanelError) -> JSONResponse:
        return problem(422, [{"loc": ["body"], "msg": str(exc), "type": "panel_error"}])


UNAUTHORIZED = {401: {"model": Problem, "description": "no token, or not a valid one"}}
FORBIDDEN = {403: {"model": Problem, "description": "the token's scope is billing; this route needs admin"}}
NOT_FOUND = {404: {"model": Problem, "description": "no such service or job"}}
CONFLICT = {409: {"model": Problem, "description": "the current state does not allow it"}}
INVALID = {422: {"model": ValidationProblem, "description": "bad input; `loc` names the field"}}

ServiceKey = Annotated[str, Path(min_length=1, max_length=100, pattern=REF_PATTERN,
                                 description="the service's billing reference (never its id)")]
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]


# -- views -----------------------------------------------------------------------------------

def job_view(job: Job) -> dict:
    return {"id": job.id, "action": job.action, "status": job.status,
            "service": job.service.ref if job.service_id else None, "service_id": job.service_id,
            "server": job.server.name if job.server_id else None, "params": job.params or {},
            "attempts": job.attempts, "max_attempts": job.max_attempts,
            "cancel_requested": job.cancel_requested, "run_after": job.run_after,
            "last_error": job.last_error, "created_at": job.created_at,
            "updated_at": job.updated_at, "finished_at": job.finished_at}
