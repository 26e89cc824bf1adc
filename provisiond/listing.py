"""Pages of services and jobs, newest first, as the API (``GET /v1/services``, ``GET /v1/jobs``)
and the console's services list show them.

Each page is one query with its product, server (and, for jobs, service) joined in, so a page
of 50 rows costs two statements (the page and its total), not one per row. Newest first is
``id`` descending: the primary key's index walked backwards, stopping after ``limit`` rows.
The filters use the indexes that exist: ``service.status``, ``service (server_id, username)``,
``job (service_id, status)`` and ``job (status, run_after)``.

Bad filters are refused naming the field (``ValidationError``): a status that does not exist,
and a server or service that does not exist. An unknown server is refused rather than answered
with an empty page because an empty page would say "no services on that server", which is
false; a typo in a script must not look like an empty server.
"""

from __future__ import annotations

import peewee as pw

from provisiond.errors import ValidationError
from provisiond.models import Job, JobStatus, Product, Server, Service, ServiceStatus

MAX_LIMIT = 500
MAX_TEXT = 254  # the longest column searched (email)
SERVICE_STATUSES = tuple(s.value for s in ServiceStatus)
JOB_STATUSES = tuple(s.value for s in JobStatus)


def services(status: str | None = None, server: str | None = None, q: str | None = None,
             limit: int = 50, offset: int = 0) -> tuple[list[Service], int]:
    """One page of services, newest first, and how many match in all.

    ``q`` matches the billing ref, the domain, the username or the email, case-insensitively,
    anywhere in the value (a substring, not only a prefix): an admin pastes part of a domain
    (``example`` for ``shop.example.com``) or of an email as often as its start, and a prefix
    search would miss those. No index serves a substring, so it is a scan of the service table;
    it stays fast at 100,000 services (a scan of four short columns, measured by
    ``bench/console.py``) and needs no extension (``pg_trgm``) nor a second column kept in step.
    """
    limit, offset = _paging(limit, offset)
    match = []
    if status:
        match.append(Service.status == _one_of("status", status, SERVICE_STATUSES))
    if server:
        found = Server.get_or_none(Server.name == _text("server", server))
        if found is None:
            raise ValidationError("server", "no server has this name")
        match.append(Service.server == found.id)
    text = _text("q", (q or "").strip())
    if text:
        match.append(Service.ref.contains(text) | Service.domain.contains(text)
                     | Service.username.contains(text) | Service.email.contains(text))
    rows = (Service.select(Service, Product, Server).join(Product).switch(Service)
            .join(Server, pw.JOIN.LEFT_OUTER))
    return _page(rows, Service.select(), match, Service.id, limit, offset)


def jobs(service: str | None = None, status: str | None = None, limit: int = 50,
         offset: int = 0) -> tuple[list[Job], int]:
    """One page of jobs, newest first, and how many match in all; ``service`` is a billing
    reference (never an id, as everywhere in the API)."""
    limit, offset = _paging(limit, offset)
    match = []
    if service:
        found = Service.get_or_none(Service.ref == _text("service", service))
        if found is None:
            raise ValidationError("service", "no service has this reference")
        match.append(Job.service == found.id)
    if status:
        match.append(Job.status == _one_of("status", status, JOB_STATUSES))
    rows = (Job.select(Job, Service, Server).join(Service, pw.JOIN.LEFT_OUTER).switch(Job)
            .join(Server, pw.JOIN.LEFT_OUTER))
    return _page(rows, Job.select(), match, Job.id, limit, offset)


def _text(field: str, value: str) -> str:
    """``value`` when a database can compare it (PostgreSQL refuses a NUL character)."""
    if "\x00" in value or len(value) > MAX_TEXT:
        raise ValidationError(field, f"must be at most {MAX_TEXT} characters, without NUL")
    return value


def _one_of(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValidationError(field, f"must be one of {', '.join(allowed)}")
    return value


def _paging(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise ValidationError("offset", "must be 0 or more")
    return limit, offset


def _page(rows: pw.ModelSelect, plain: pw.ModelSelect, match: list, key: pw.Field, limit: int,
          offset: int) -> tuple[list, int]:
    """The page from ``rows`` (joined) and the total from ``plain`` (the table alone: counting
    needs no join)."""
    if match:
        rows, plain = rows.where(*match), plain.where(*match)
    found = list(rows.order_by(key.desc()).limit(limit).offset(offset))
    if not offset and len(found) < limit:
        return found, len(found)  # the whole answer is on this page
    return found, plain.count()
