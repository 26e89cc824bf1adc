"""Routes of a server's sync: its last drift report (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from provisiond import sync
from provisiond.api.base import require_admin, with_db
from provisiond.api.schemas import Problem

router = APIRouter(tags=["servers"])

ServerName = Annotated[str, Path(min_length=1, max_length=100, description="the server's name")]


@router.get("/servers/{name}/drift", dependencies=[Depends(require_admin)],
            responses={404: {"model": Problem, "description": "no such server, or never synced"}})
@with_db
def server_drift(name: ServerName) -> dict:
    """The server's last drift report (``server sync``, the daemon's daily sync), exactly as
    ``provisiond server sync NAME --json`` prints it."""
    return sync.last_report(name)
