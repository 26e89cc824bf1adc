"""Routes of usage: one service's latest figures and history, and everything collected since a
time, for a billing system's daily pull (WHMCS UsageUpdate style), paged by a cursor."""

from __future__ import annotations

import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from provisiond import lifecycle, usage
from provisiond.api.base import INVALID, NOT_FOUND, ServiceKey, require_admin, with_db
from provisiond.errors import ValidationError

router = APIRouter(tags=["usage"], dependencies=[Depends(require_admin)])


class UsageOut(BaseModel):
    service: str
    collected_at: datetime.datetime
    disk_used_mb: float | None
    disk_limit_mb: float | None
    bandwidth_used_mb: float | None
    bandwidth_limit_mb: float | None
    inodes_used: int | None
    inodes_limit: int | None
    mailboxes: int | None
    databases: int | None


class ServiceUsage(BaseModel):
    service: str
    latest: UsageOut | None
    history: list[UsageOut]


class UsagePage(BaseModel):
    usage: list[UsageOut]
    next_cursor: str | None


def _naive_utc(moment: datetime.datetime) -> datetime.datetime:
    """Times are stored as naive UTC; a time with an offset is turned into that."""
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    except OverflowError:  # year 1 minus an offset, or 9999 plus one
        raise _query_error(ValidationError("since", "is out of range once turned into UTC")) from None


@router.get("/services/{key}/usage", response_model=ServiceUsage, responses={**NOT_FOUND, **INVALID})
@with_db
def service_usage(key: ServiceKey, limit: Annotated[int, Query(ge=1, le=366)] = 10):
    """The service's latest usage and its history, newest first (``limit`` collections)."""
    service = lifecycle.get_service_by_ref(key)
    rows = [usage.view(r, service.ref) for r in usage.history(service, limit)]
    return {"service": service.ref, "latest": rows[0] if rows else None, "history": rows}


@router.get("/usage", response_model=UsagePage, responses=INVALID)
@with_db
def usage_since(since: Annotated[datetime.datetime, Query(description="ISO 8601; UTC unless an offset is given")],
                limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                cursor: Annotated[str | None, Query(max_length=200)] = None):
    """Every row collected at or after ``since``, oldest first. Ask again with ``cursor`` set to
    the answer's ``next_cursor`` until it is null: no row is repeated or skipped between pages."""
    since = _naive_utc(since)
    try:
        rows, next_cursor = usage.page(since, limit, cursor)
    except ValidationError as exc:
        raise _query_error(exc) from None
    return {"usage": [usage.view(r) for r in rows], "next_cursor": next_cursor}


def _query_error(exc: ValidationError):
    from fastapi.exceptions import RequestValidationError
    return RequestValidationError([{"loc": ("query", exc.field), "msg": exc.message, "type": "value_error"}])
