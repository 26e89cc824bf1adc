"""``provisiond api --workers N``: the API served by N processes on one port.

One process runs Python on one core at a time; a busy API (many billing modules polling) is
answered sooner by several. uvicorn's supervisor starts the workers, each a new interpreter
that imports ``app`` here, and restarts one that dies; each worker has its own connection pool,
so the database sees up to N × ``api_db_pool`` connections. The parent hands its settings down
as the ``PROVISIOND_*`` environment (the flags it was given included), which each worker reads
once, as every provisiond process does. The daemon's ``run --api`` keeps serving the API in its
own single process.
"""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from provisiond import config, logs
from provisiond.config import Settings


def app() -> FastAPI:
    """One worker's application (uvicorn calls it in each worker process)."""
    from provisiond.api import create_app
    settings = config.load()
    logs.setup(settings.log_level, settings.log_format)
    return create_app(settings)


def serve(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    """Serve the API from ``workers`` processes until SIGINT or SIGTERM."""
    os.environ.update(PROVISIOND_HOME=str(settings.home), PROVISIOND_DATABASE_URL=settings.database_url)
    uvicorn.run(f"{__name__}:app", factory=True, workers=workers, host=host or settings.api_host,
                port=settings.api_port if port is None else port, log_config=None, access_log=True)
