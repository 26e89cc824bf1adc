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

from provisiond import compiled, db
from provisiond.errors import NotFound, ValidationError
from provisiond.models import Job, JobStatus, Product, ProductVariant, Server, Service, ServiceStatus

MAX_LIMIT = 500
MAX_TEXT = 254  # the longest column searched (email)
# A search shorter than this has no trigram (search_index): it is a scan on every database, and
# its matches are counted only up to COUNTED ("more than 1,000"), not all of them.
SHORT = 3
COUNTED = 1000
SERVICE_STATUSES = tuple(s.value for s in ServiceStatus)
JOB_STATUSES = tuple(s.value for s in JobStatus)


def services(status: str | None = None, server: str | None = None, q: str | None = None,
             limit: int = 50, offset: int = 0) -> tuple[list[Service], int | None]:
    """One page of services, newest first, and how many match in all: ``None`` when that was
    not counted, only that more than ``COUNTED`` match (a search shorter than ``SHORT``
    characters, see ``_short_page``); services after this page match exactly when the total is
    ``None`` or more than ``offset`` plus the page's rows.

    ``q`` matches the billing ref, the domain, the username or the email, ignoring the case of
    ASCII letters (domains are stored in ASCII; SQLite's ``LIKE`` folds only those),
    anywhere in the value (a substring, not only a prefix): an admin pastes part of a domain
    (``example`` for ``shop.example.com``) or of an email as often as its start, and a prefix
    search would miss those (and only ref and domain have an index a prefix could use). On
    PostgreSQL a trigram index of the searched text serves it where ``pg_trgm`` could be had
    (``search_index``, migration 22); elsewhere it is one scan of the service table, made cheap
    (``_search``), with the total counted in the same scan: at 100,000 services a few times a
    plain ``count(*)`` of the table (``bench/console.py`` measures the page).
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
        match.append(_search(text))
    rows = (Service.select(Service, Product, Server).join(Product).switch(Service)
            .join(Server, pw.JOIN.LEFT_OUTER))
    if text and len(text) < SHORT:
        return _short_page(rows.where(*match), Service.select().where(*match), limit, offset)
    return _page(rows, Service.select(), match, Service.id, limit, offset, scan=bool(text))


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


# What the views show (views.service_view, api.base.job_view), never the password nor a job's
# secret parameters.
SERVICE_SHOWN = [f for f in Service._meta.sorted_fields if f.name != "password"]
JOB_SHOWN = [f for f in Job._meta.sorted_fields if f.name != "secret_params"]
JobServer = Server.alias("job_server")


def _service_and_jobs(ref: str) -> pw.Select:
    # One row per job (one with the job's columns NULL when it has none), oldest job first.
    return (Service.select(*SERVICE_SHOWN, Product.name, Server.name, ProductVariant.name, *JOB_SHOWN,
                           JobServer.name)
            .join(Product).switch(Service).join(Server, pw.JOIN.LEFT_OUTER).switch(Service)
            .join(ProductVariant, pw.JOIN.LEFT_OUTER, on=(Service.variant == ProductVariant.id)).switch(Service)
            .join(Job, pw.JOIN.LEFT_OUTER, on=(Job.service == Service.id))
            .join(JobServer, pw.JOIN.LEFT_OUTER, on=(Job.server == JobServer.id))
            .where(Service.ref == ref).order_by(Job.id))


SERVICE_AND_JOBS = compiled.Statement(_service_and_jobs, "ref")


def service_detail(ref: str) -> dict:
    """The service with billing reference ``ref`` and its jobs oldest first, as the API shows
    it (``service_view`` with ``jobs``, each a ``job_view``), as plain data.

    ``GET /v1/services/{ref}`` is asked by billing systems all day: this is one statement (the
    service, its product's and servers' names and its jobs joined), built once (``compiled``),
    and its rows become the answer without model objects in between."""
    rows = SERVICE_AND_JOBS.rows(ref=ref) if "\x00" not in ref else []
    if not rows:
        raise NotFound(f"service {ref} does not exist")
    width = len(SERVICE_SHOWN)
    service = dict(zip((f.name for f in SERVICE_SHOWN), rows[0][:width]))
    service.update(product=rows[0][width], server=rows[0][width + 1], variant=rows[0][width + 2],
                   fields=service["fields"] or {})
    detail = {key: service[key] for key in SERVICE_KEYS}
    detail["jobs"] = [_job(dict(zip((f.name for f in JOB_SHOWN), row[width + 3:-1])), row[-1], service)
                      for row in rows if row[width + 3] is not None]
    return detail


# service_view's keys, in its order
SERVICE_KEYS = ("id", "ref", "product", "server", "domain", "email", "name", "username", "remote_id",
                "package", "variant", "status", "status_reason", "pending_reason", "last_error", "paid_until",
                "fields", "created_at", "updated_at")


def _job(job: dict, server: str | None, service: dict) -> dict:
    """A joined row's job as ``api.base.job_view`` shows it."""
    return {"id": job["id"], "action": job["action"], "status": job["status"], "service": service["ref"],
            "service_id": service["id"], "server": server, "params": job["params"] or {},
            "attempts": job["attempts"], "max_attempts": job["max_attempts"],
            "cancel_requested": job["cancel_requested"], "run_after": job["run_after"],
            "last_error": job["last_error"], "created_at": job["created_at"],
            "updated_at": job["updated_at"], "finished_at": job["finished_at"]}


def _search(text: str) -> pw.Node:
    """Whether ``text`` is part of the ref, domain, username or email, ignoring ASCII case.

    Each database its cheapest way (measured at 100,000 services): SQLite's ``LIKE`` ignores
    ASCII case itself, four of them cost less than building one string per row. PostgreSQL
    matches one ``LIKE`` on the four values joined by a newline (which none of them holds and
    ``_text`` refuses in ``text``, so a match never spans two), lower-cased in the "C" collation,
    which folds ASCII letters only, as SQLite does, at a fraction of the cost of ``ILIKE`` or
    of the database's own collation. ``search_index.EXPRESSION`` is this expression, indexed."""
    if not db.is_postgres():
        return (Service.ref.contains(text) | Service.domain.contains(text)  # ILIKE is LIKE on SQLite
                | Service.username.contains(text) | Service.email.contains(text))
    joined = Service.ref
    for column in (Service.domain, pw.fn.COALESCE(Service.username, ""), Service.email):
        joined = joined.concat("\n").concat(column)
    folded = pw.fn.LOWER(pw.NodeList((pw.NodeList((joined,), parens=True), pw.SQL('COLLATE "C"'))))
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = pw.NodeList((pw.Value(f"%{escaped}%", converter=False), pw.SQL("ESCAPE"),
                           pw.Value("\\", converter=False)))
    return pw.NodeList((folded, pw.SQL("LIKE"), pattern))


def _text(field: str, value: str) -> str:
    """``value`` when it can be looked for: no control character (PostgreSQL refuses a NUL;
    no ref, domain, username or email holds one), not longer than any column searched."""
    if len(value) > MAX_TEXT or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationError(field, f"must be at most {MAX_TEXT} characters, without control characters")
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


def more_after(total: int | None, offset: int, rows: int) -> bool:
    """Whether services after a page of ``rows`` at ``offset`` match: always when the total was
    not counted (``None``, see ``services``)."""
    return total is None or offset + rows < total


def _short_page(rows: pw.ModelSelect, plain: pw.ModelSelect, limit: int,
                offset: int) -> tuple[list, int | None]:
    """A page of a search of one or two characters, and its total up to ``COUNTED``.

    Such a text has no trigram, so no index finds it (``search_index``): each match costs a
    scan, and counting them all (``07`` matches thousands of services) was most of the page's
    time at 100,000 services (268-355 ms p95 on PostgreSQL, ``bench/console.py``). Here the page
    walks the newest services until it has ``limit`` + 1 matches (the one past says whether
    there are more); the count stops after ``COUNTED`` + 1 matches and says ``None`` past that.
    A total is never a guess: when nothing follows the page, it is ``offset`` plus the page.
    Past the last match (an empty page after the first), the page's scan read every match
    already, so they are counted, all of them."""
    found = list(rows.order_by(Service.id.desc()).limit(limit + 1).offset(offset))
    more, found = len(found) > limit, found[:limit]
    if not more and (found or not offset):
        return found, offset + len(found)
    if not more:
        return found, plain.count()
    counted = plain.select(Service.id).limit(COUNTED + 1).count()
    return found, counted if counted <= COUNTED else None


def _page(rows: pw.ModelSelect, plain: pw.ModelSelect, match: list, key: pw.Field, limit: int,
          offset: int, scan: bool = False) -> tuple[list, int]:
    """The page from ``rows`` (joined) and the total from ``plain`` (the table alone: counting
    needs no join). ``scan``: the filter reads every row anyway (a search), so the total is
    counted in the same pass (a window ``count(*)``) instead of a second scan."""
    if match:
        rows, plain = rows.where(*match), plain.where(*match)
    if scan:
        rows = rows.select_extend(pw.fn.COUNT(pw.SQL("*")).over().alias("matched"))
    found = list(rows.order_by(key.desc()).limit(limit).offset(offset))
    if found and scan:
        return found, found[0].matched
    if not offset and len(found) < limit:
        return found, len(found)  # the whole answer is on this page
    return found, plain.count()
