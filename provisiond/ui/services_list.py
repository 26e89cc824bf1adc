"""``/ui/services``: every service, newest first, 50 a page; found by part of its ref, domain,
username or email (``q``), narrowed by status and server. The same query as ``GET /v1/services``
(``provisiond.listing``); each ref links to the service's page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request

from provisiond import listing
from provisiond.errors import ValidationError
from provisiond.models import Server
from provisiond.ui import session
from provisiond.ui.render import page

router = APIRouter()
PAGE_SIZE = 50
MAX_PAGE = 100_000


@router.get("/services")
@session.with_admin
def services_list(request: Request, admin: session.AdminDep,
                  q: Annotated[str, Query(max_length=listing.MAX_TEXT)] = "",
                  status: Annotated[str, Query(max_length=32)] = "",
                  server: Annotated[str, Query(max_length=100)] = "",
                  page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1):
    """A bad filter (a status or server that does not exist, typed into the address) shows the
    page with the reason and no rows, answered 422. A search of one or two characters past
    ``listing.COUNTED`` matches says "more than 1,000" (not counted further) and pages on."""
    filters = {"q": q.strip(), "status": status, "server": server}
    problem = ""
    try:
        rows, total = listing.services(**filters, limit=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE)
    except ValidationError as exc:
        rows, total, problem = [], 0, f"{exc.field}: {exc.message}"
    more = listing.more_after(total, (page_number - 1) * PAGE_SIZE, len(rows))
    pages = None if total is None else max(1, -(-total // PAGE_SIZE))
    return page(request, "services_list.html", status_code=422 if problem else 200, title="Services",
                admin=admin, services=rows, total=total, filters=filters, problem=problem, counted=listing.COUNTED,
                statuses=listing.SERVICE_STATUSES, page_number=page_number, pages=pages,
                servers=[name for (name,) in Server.select(Server.name).order_by(Server.name).tuples()],
                previous_url=_page_url(filters, page_number - 1) if page_number > 1 else "",
                next_url=_page_url(filters, page_number + 1) if more else "")


def _page_url(filters: dict, number: int) -> str:
    """The address of another page of the same search."""
    kept = {k: v for k, v in filters.items() if v}
    return "/ui/services?" + urlencode({**kept, "page": number})
