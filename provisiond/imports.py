"""Recording services a billing system already has (``provisiond service import FILE.csv``,
``POST /v1/services/import``): the accounts exist on their panels, so no panel is called.

The file is CSV with a header row naming its columns, in any order: ``ref``, ``product``,
``server``, ``username``, ``domain``, ``email`` (required), ``paid_until`` (YYYY-MM-DD, may be
blank) and ``status`` (``active`` or ``suspended``; blank is active). Any other column is
refused. Row N is the file's Nth line, the header being row 1 (a cell spanning lines counts as
one row).

Every row is checked, and every problem is reported as ``row N: field: message``; one problem
anywhere and nothing is written. The checks: the product and server exist and the product is
for the server's panel; the ref is new (in the database and in the file); the username passes
the panel's rules (with the server's own length limit) and no other service on that server
has it; the domain is valid and no live (pending, active, suspended) service has it, nor
another row; the email is valid. The checks and the writes run in one transaction, so what
was checked is what is written.

Imported services are active or suspended at once (suspended ones with reason ``imported``,
which a payment does not lift: an admin decides), keep no password (the client has it:
``password_state`` given) and count toward their server's ``max_accounts``. A server they
fill beyond it is reported, not refused: the accounts are there already. One audit entry per
import records the counts.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import datetime
import io
import re
from typing import Iterable, Iterator

import peewee as pw

from provisiond import accounts, audit, credentials, inputs
from provisiond import db as dbmod
from provisiond.errors import ProvisiondError, StateError, ValidationError
from provisiond.lifecycle import OCCUPYING
from provisiond.models import Product, Server, Service, ServiceStatus, database, utcnow
from provisiond.panels import Registry

COLUMNS = ("ref", "product", "server", "username", "domain", "email", "paid_until", "status")
REQUIRED = ("ref", "product", "server", "username", "domain", "email")
STATUSES = (ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value)
IMPORTED_REASON = "imported"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DOMAIN_CHECKED = object()  # a row's key for its (domain, problem): no column can be named so
CHUNK = 400  # values per IN (...) and rows per INSERT: under SQLite's limit on bound variables


@dataclasses.dataclass(frozen=True)
class RowError:
    """One problem of one row: ``row 7: paid_until: '2025-13-01' is not a date (YYYY-MM-DD)``."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.message}"

    def view(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message}


class ImportRefused(ValidationError):
    """A file with problems; nothing was written. ``errors`` holds every row's."""

    def __init__(self, errors: list[RowError]):
        rows = len({e.row for e in errors})
        super().__init__("file", f"{len(errors)} problem(s) in {rows} row(s); nothing was imported")
        self.errors = errors


@dataclasses.dataclass(frozen=True)
class ImportRow:
    """A checked row, as it is written."""

    row: int
    ref: str
    product: Product
    server: Server
    username: str
    domain: str
    email: str
    paid_until: datetime.date | None
    status: str

    def view(self) -> dict:
        return {"row": self.row, "ref": self.ref, "product": self.product.name, "server": self.server.name,
                "username": self.username, "domain": self.domain, "email": self.email,
                "paid_until": self.paid_until.isoformat() if self.paid_until else None, "status": self.status}


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """What an import did (or, with ``dry_run``, would do)."""

    rows: list[ImportRow]
    dry_run: bool
    over_capacity: list[dict]  # {"server", "services", "max_accounts"} once the rows are in

    def counts(self) -> dict:
        return {"services": len(self.rows),
                "by_status": dict(collections.Counter(r.status for r in self.rows)),
                "by_server": dict(collections.Counter(r.server.name for r in self.rows)),
                "by_product": dict(collections.Counter(r.product.name for r in self.rows))}

    def view(self) -> dict:
        return {"dry_run": self.dry_run, "imported": 0 if self.dry_run else len(self.rows),
                **self.counts(), "over_capacity": self.over_capacity,
                "rows": [r.view() for r in self.rows]}


def decode(data: bytes) -> str:
    """The file's text: UTF-8, with or without the byte order mark spreadsheets write."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError("file", f"is not UTF-8 text (byte {exc.start})") from None


def import_services(text: str, registry: Registry, *, actor: str, source: str,
                    dry_run: bool = False, now: datetime.datetime | None = None) -> ImportResult:
    """Check every row of the CSV ``text`` and, when none has a problem and not ``dry_run``,
    record them all in one transaction (audited as ``actor`` importing ``source``).

    Raises ImportRefused listing every problem; then nothing is written."""
    header, records = parse(text)
    now = now or utcnow()
    try:
        with database.atomic():
            checked = check(header, records, registry)
            over = _over_capacity(checked)
            if not dry_run:
                _write(checked, now)
                result = ImportResult(checked, False, over)
                audit.record(actor, "service.import", f"import:{source}"[:200], source=source,
                             **result.counts(), over_capacity=over)
    except pw.IntegrityError as exc:
        # Only a writer that slipped in between the checks and the insert (PostgreSQL).
        raise StateError("services changed while the file was imported; nothing was imported, "
                         f"run it again ({dbmod.first_line(exc)})") from exc
    return ImportResult(checked, dry_run, over)


# -- reading ---------------------------------------------------------------------------------

def parse(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header's column names and the (row number, values) of each non-blank row."""
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    ended = 0  # the line the previous row ended on
    try:
        for values in reader:
            rows.append((ended + 1, values))
            ended = reader.line_num
    except csv.Error as exc:
        raise ImportRefused([RowError(reader.line_num, "file", f"is not valid CSV: {exc}")]) from None
    if not rows or not any(v.strip() for v in rows[0][1]):
        raise ImportRefused([RowError(1, "header", "is missing: the first row must name the columns "
                                                   f"({', '.join(COLUMNS)})")])
    header = [name.strip().lower() for name in rows[0][1]]
    _check_header(header)
    records = [(n, values) for n, values in rows[1:] if any(v.strip() for v in values)]
    if not records:
        raise ImportRefused([RowError(2, "file", "has a header but no rows to import")])
    return header, records


def _check_header(header: list[str]) -> None:
    errors = []
    for name, count in collections.Counter(header).items():
        if name not in COLUMNS:
            errors.append(RowError(1, "header", f"unknown column {name!r} (columns: {', '.join(COLUMNS)})"))
        elif count > 1:
            errors.append(RowError(1, "header", f"column {name!r} appears {count} times"))
    errors += [RowError(1, "header", f"column {name!r} is missing") for name in REQUIRED if name not in header]
    if errors:
        raise ImportRefused(errors)


# -- checking --------------------------------------------------------------------------------

class _Known:
    """What the database holds that rows are checked against, read once for the whole file."""

    def __init__(self, rows: list[dict]):
        self.products = {p.name: p for p in Product.select()}
        self.servers = {s.name: s for s in Server.select()}
        ids = [s.id for name, s in self.servers.items() if name in {r.get("server") for r in rows}]
        self.refs: set[str] = set()
        # Only well-formed refs are looked up: a NUL byte cannot even be sent to PostgreSQL.
        for chunk in _chunks(sorted({r["ref"] for r in rows if inputs.REF.fullmatch(r.get("ref") or "")})):
            self.refs.update(ref for (ref,) in Service.select(Service.ref).where(Service.ref.in_(chunk)).tuples())
        self.usernames: dict[tuple[int, str], str] = {}
        for chunk in _chunks(ids):
            query = Service.select(Service.server, Service.username, Service.ref).where(
                Service.server.in_(chunk) & Service.username.is_null(False))
            self.usernames.update({(server_id, username): ref for server_id, username, ref in query.tuples()})
        self.domains: dict[str, str] = {}
        wanted = {r[DOMAIN_CHECKED][0] for r in rows} - {None}
        for chunk in _chunks(sorted(wanted)):
            query = Service.select(Service.domain, Service.ref).where(
                Service.domain.in_(chunk) & Service.status.in_(OCCUPYING))
            self.domains.update(dict(query.tuples()))


def check(header: list[str], records: list[tuple[int, list[str]]], registry: Registry) -> list[ImportRow]:
    """Every row checked against the database and the rows before it; raises ImportRefused with
    every problem found."""
    errors: list[RowError] = []
    rows = []
    for number, values in records:
        if len(values) != len(header):
            errors.append(RowError(number, "row", f"has {len(values)} values; the header has {len(header)} columns"))
            continue
        row = {name: value.strip() for name, value in zip(header, values)}
        # IDNA checks are most of the time a row takes: done once, kept with the row.
        row[DOMAIN_CHECKED] = _domain(row["domain"]) if row.get("domain") else (None, None)
        rows.append((number, row))
    known = _Known([r for _, r in rows])
    first: dict[tuple, int] = {}  # (what, value) → the row that had it first
    checked = []
    for number, row in rows:
        row_errors = list(_check_row(number, row, known, registry, first))
        errors += row_errors
        if not row_errors:
            checked.append(_to_import(number, row, known))
    if errors:
        raise ImportRefused(sorted(errors, key=lambda e: e.row))
    return checked


def _check_row(number: int, row: dict, known: _Known, registry: Registry, first: dict) -> Iterator[RowError]:
    def error(field: str, message: str) -> RowError:
        return RowError(number, field, message)

    def again(what: tuple) -> int | None:
        """The earlier row with the same value, else None (and this row is now the first)."""
        earlier = first.setdefault(what, number)
        return earlier if earlier != number else None

    for name in REQUIRED:
        if not row.get(name):
            yield error(name, "is required")
    ref, product_name, server_name = row.get("ref"), row.get("product"), row.get("server")
    if ref:
        problem = _problem(inputs.ref, ref)
        if problem:
            yield error("ref", problem)
        elif ref in known.refs:
            yield error("ref", f"{ref!r} is a service already")
        elif (earlier := again(("ref", ref))) is not None:
            yield error("ref", f"{ref!r} is also in row {earlier}")
    product = known.products.get(product_name) if product_name else None
    if product_name and product is None:
        yield error("product", f"unknown product {product_name!r}")
    server = known.servers.get(server_name) if server_name else None
    if server_name and server is None:
        yield error("server", f"unknown server {server_name!r}")
    if product is not None and server is not None and product.panel != server.panel:
        yield error("server", f"{server.name!r} is a {server.panel} server; product {product.name!r} "
                              f"is for {product.panel}")
    elif server is not None and row.get("username"):
        yield from _check_username(error, again, row["username"], server, known, registry)
    if row.get("domain"):
        domain, problem = row[DOMAIN_CHECKED]
        if problem:
            yield error("domain", problem)
        elif domain in known.domains:
            yield error("domain", f"{domain!r} is used by service {known.domains[domain]}")
        elif (earlier := again(("domain", domain))) is not None:
            yield error("domain", f"{domain!r} is also in row {earlier}")
    if row.get("email"):
        problem = _problem(inputs.email, row["email"])
        if problem:
            yield error("email", problem)
    if row.get("paid_until") and _date(row["paid_until"]) is None:
        yield error("paid_until", f"{row['paid_until']!r} is not a date (YYYY-MM-DD)")
    if row.get("status") and row["status"] not in STATUSES:
        yield error("status", f"{row['status']!r} must be {' or '.join(STATUSES)}")


def _check_username(error, again, username: str, server: Server, known: _Known,
                    registry: Registry) -> Iterator[RowError]:
    try:
        rules = accounts.server_rules(registry.get(server.panel).username, server.credentials)
    except ProvisiondError as exc:  # the server's panel folder is missing or broken
        yield error("server", str(exc))
        return
    problem = accounts.username_problem(username, rules)
    if problem:
        yield error("username", f"{username!r} {problem}")
    elif (server.id, username) in known.usernames:
        yield error("username", f"{username!r} is already used on server {server.name} "
                                f"(service {known.usernames[(server.id, username)]})")
    elif (earlier := again(("username", server.id, username))) is not None:
        yield error("username", f"{username!r} on server {server.name} is also in row {earlier}")


def _problem(check, value: str) -> str | None:
    try:
        check(value)
    except ValidationError as exc:
        return exc.message
    return None


def _domain(value: str) -> tuple[str | None, str | None]:
    """The domain's stored (ASCII) form and None, or None and why it is not a domain."""
    try:
        return inputs.domain(value), None
    except ValidationError as exc:
        return None, exc.message


def _date(value: str) -> datetime.date | None:
    if not DATE.fullmatch(value):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _to_import(number: int, row: dict, known: _Known) -> ImportRow:
    return ImportRow(row=number, ref=row["ref"], product=known.products[row["product"]],
                     server=known.servers[row["server"]], username=row["username"],
                     domain=row[DOMAIN_CHECKED][0], email=row["email"],
                     paid_until=_date(row["paid_until"]) if row.get("paid_until") else None,
                     status=row.get("status") or ServiceStatus.ACTIVE.value)


# -- writing ---------------------------------------------------------------------------------

WRITTEN = (Service.ref, Service.product, Service.server, Service.domain, Service.email, Service.username,
           Service.package, Service.password, Service.password_state, Service.status, Service.status_reason,
           Service.paid_until, Service.created_at, Service.updated_at)


def _write(rows: list[ImportRow], now: datetime.datetime) -> None:
    records = [(r.ref, r.product.id, r.server.id, r.domain, r.email, r.username, r.product.package, None,
                credentials.GIVEN, r.status,
                IMPORTED_REASON if r.status == ServiceStatus.SUSPENDED.value else None,
                r.paid_until, now, now) for r in rows]
    per_insert = max(1, CHUNK // len(WRITTEN))
    for start in range(0, len(records), per_insert):
        Service.insert_many(records[start:start + per_insert], fields=WRITTEN).execute()


def _over_capacity(rows: list[ImportRow]) -> list[dict]:
    """The servers these rows fill beyond ``max_accounts`` (services already there counted)."""
    adding = collections.Counter(r.server.id for r in rows)
    placed = dict(Service.select(Service.server, pw.fn.COUNT(Service.id))
                  .where(Service.server.in_(list(adding)) & Service.status.in_(OCCUPYING))
                  .group_by(Service.server).tuples()) if adding else {}
    servers = {r.server.id: r.server for r in rows}
    return [{"server": servers[sid].name, "services": placed.get(sid, 0) + n,
             "max_accounts": servers[sid].max_accounts}
            for sid, n in sorted(adding.items()) if placed.get(sid, 0) + n > servers[sid].max_accounts]


def _chunks(values: list) -> Iterable[list]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]
