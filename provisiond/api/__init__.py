"""The HTTP API for billing systems: FastAPI, JSON, versioned under ``/v1``.

Thin, like the CLI: a route checks its input with a Pydantic model, calls the function the CLI
calls (``lifecycle``, ``queue``) and answers with a view that carries no secret (no password, no
server credentials). A running daemon takes an enqueued job at once: ``queue`` wakes the
daemons itself when the enqueue commits (NOTIFY, or the wake file on SQLite). Every route
but ``/v1/health``, ``/metrics`` (Prometheus) and the OpenAPI document (``/openapi.json``, and
``/docs``, served without a CDN) needs ``Authorization: Bearer <token>`` (``provisiond token
create NAME [--scope billing|admin]``); a billing token may call what a billing system needs, an
admin token every route (the table is in ``base``).

A request body over 1 MiB is 413, refused before it is read (``bodylimit``).

Errors: bad input is 422 naming the field (``{"detail": [{"loc": ["body", field], "msg": ...,
"type": ...}]}``), an unknown id 404, a state that forbids the action 409, a panel that cannot
do it 422, no or a bad token 401 with ``WWW-Authenticate: Bearer``, a billing token on an admin
route 403 with ``WWW-Authenticate: Bearer error="insufficient_scope"``.

Routes are plain functions, which FastAPI runs in its thread pool. peewee keeps one
connection per thread, so each route (and the token check, which may run in another thread)
opens its thread's connection when it is closed and closes it when done (``base.with_db``).
On PostgreSQL the API's database is a pool (``db.connect(pool=True)``, from ``provisiond api``
and ``run --api``): closing keeps the connection for the next request, at most ``api_db_pool``
are held at once, and one the server dropped is replaced.

One module per group of routes: ``services``, ``checkout`` (a product's order form), ``jobs``,
``attempts``, ``tokens``, ``fleet_import``, ``sync``, ``usage`` and ``fleet`` (admin); ``schemas``
holds the bodies and answers, ``base`` what they share.
The admin console's pages (``/ui/``) are ``provisiond.ui``.
"""

from __future__ import annotations

import logging
import signal
import threading

import peewee as pw
import uvicorn
from fastapi import APIRouter, Depends, FastAPI

from provisiond import db as dbmod
from provisiond import health as daemon_health
from provisiond.api import (attempts, checkout, docs, fleet, fleet_import, jobs, services, sync, tokens, usage,
                            variants)
from provisiond.api.base import (UNAUTHORIZED, Context, PanelCache, authenticate, bound_connections,
                                 connection, install_error_handlers, problem)
from provisiond.api.schemas import Health, Problem
from provisiond.bodylimit import MAX_BODY, BodyLimit
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.models import database
from provisiond import ui
from provisiond.worker import retry_policy

log = logging.getLogger("provisiond.api")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def create_app(settings: Settings, vault: Vault | None = None) -> FastAPI:
    """The API application; binds the database named by ``settings`` unless one is bound."""
    if database.obj is None:
        dbmod.require_current(dbmod.connect(settings.database_url, pool=True))
    bound_connections(settings.api_db_pool)
    app = FastAPI(title="provisiond", version="1", openapi_url="/openapi.json", docs_url=None, redoc_url=None,
                  description="Provisioning of hosting accounts for billing systems.")
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    registry = PanelCache(settings)
    app.state.panels = registry  # `run --api` points it at reloaded settings (SIGHUP)
    app.state.context = Context(settings, vault or Vault.from_settings(settings), retry_policy(settings), registry)

    @app.get("/v1/health", response_model=Health, tags=["health"],
             responses={503: {"model": Problem, "description": (
                 "the database cannot be reached, or no daemon ticked within three tick intervals")}})
    def health():
        """200 while the database answers and a daemon ticked within three tick intervals;
        else 503 saying which. Needs no token."""
        try:
            with connection():
                verdict = daemon_health.check(settings)
        except pw.PeeweeException as exc:  # the connection itself could not be opened
            log.warning("health: the database cannot be reached: %s", exc)
            return problem(503, "the database cannot be reached")
        if not verdict.ok:
            log.warning("health: %s", verdict.reason)
            return problem(503, verdict.reason)
        return {"status": "ok"}

    docs.install(app)
    ui.install(app)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authenticate)], responses=UNAUTHORIZED)
    for module in (services, checkout, fleet_import, jobs, attempts, sync, tokens, fleet, variants, usage):
        v1.include_router(module.router)
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
