"""Usage: disk, bandwidth, inodes, mailboxes and databases of each service, as time series.

``collect(server)`` runs the panel's ``usage`` admin action (scope server) once: one playbook
run reads every account of the server and reports ``usage: [{username, disk_used_mb, ...}]``.
Each account that is a provisiond service of that server (matched by username, active or
suspended) gets one ``Usage`` row for this collection; accounts provisiond does not know are
left alone and counted. Sizes are MB, a limit of null is unlimited (a panel's 0 or
"unlimited" is stored as null), a figure the panel does not report is null.

Alerts: when a service's disk, bandwidth or inodes reach 90 % or 100 % of a limit, an admin
alert is queued once for that crossing. A crossing is a rise of the level (none < 90 % < 100 %)
from the service's previous row to this one; its dedup key names the row, so the same
crossing never alerts twice, and after the use falls back below the threshold the next rise
alerts again.

The daemon collects every server once a day (``usage_cron``), once across the daemons that
share the database (``claim_day``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import logging
import math
from typing import Any, Iterable, Mapping

import peewee as pw

from provisiond import actions, daily, notify
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import PanelError, ProvisiondError, ValidationError
from provisiond.models import Server, Service, Usage, database, utcnow
from provisiond.panels import Registry

log = logging.getLogger("provisiond.usage")

ACTION = "usage"
LAST_COLLECTION = "last_usage_day"
# Services whose account is on the panel: pending ones may not have it yet, ended ones no more.
MEASURED = ("active", "suspended")
FIGURES = ("disk_used_mb", "disk_limit_mb", "bandwidth_used_mb", "bandwidth_limit_mb", "inodes_used",
           "inodes_limit", "mailboxes", "databases")
WHOLE = frozenset({"inodes_used", "inodes_limit", "mailboxes", "databases"})
LIMITED = {"disk": ("disk_used_mb", "disk_limit_mb"), "bandwidth": ("bandwidth_used_mb", "bandwidth_limit_mb"),
           "inodes": ("inodes_used", "inodes_limit")}
THRESHOLDS = (90, 100)  # percent of a limit
MOST = 1e15  # MB or inodes: beyond it a figure is a panel's garbage (and overflows a BIGINT)


@dataclasses.dataclass(frozen=True)
class CollectResult:
    """One server's collection: rows stored, accounts provisiond does not know, and threshold
    crossings alerted (queued for the alert mail or webhook, where one is configured)."""

    server: str
    stored: int = 0
    unknown: int = 0
    alerts: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# -- reading what the playbook reported -----------------------------------------------------

def _figure(name: str, value: Any, username: str) -> float | int | None:
    """A reported figure as a number; None for null, "" or unlimited; a 0 limit is unlimited."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "unlimited", "none", "null")):
        return None
    if isinstance(value, bool):
        raise PanelError(f"usage of {username}: {name} is not a number")
    try:
        number = float(str(value).strip().removesuffix("M")) if isinstance(value, str) else float(value)
    except ValueError:
        raise PanelError(f"usage of {username}: {name} is not a number") from None
    if not math.isfinite(number) or not 0 <= number <= MOST:
        raise PanelError(f"usage of {username}: {name} must be a number from 0 to {MOST:g}")
    if name.endswith("_limit") or name.endswith("_limit_mb"):
        if number == 0:
            return None
    return int(number) if name in WHOLE else number


def readings(reported: Any) -> dict[str, dict[str, Any]]:
    """``stats["usage"]`` as {username: {figure: number or None}}; PanelError names a bad entry."""
    if not isinstance(reported, list):
        raise PanelError("the usage playbook did not report a list named usage")
    found: dict[str, dict[str, Any]] = {}
    for entry in reported:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("username"), str) or not entry["username"]:
            raise PanelError("the usage playbook reported an entry without a username")
        username = entry["username"]
        found[username] = {name: _figure(name, entry.get(name), username) for name in FIGURES}
    return found


# -- alerts (pure) ---------------------------------------------------------------------------

def level(used: float | None, limit: float | None) -> int:
    """The highest threshold (percent) ``used`` reaches of ``limit``; 0 below all or unlimited."""
    if used is None or not limit:
        return 0
    return max((t for t in THRESHOLDS if used * 100 >= limit * t), default=0)


def crossings(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(metric, percent) for each limit whose level rose from ``previous`` to ``current``.

    A rise straight past both thresholds is one crossing, of the higher one. No previous row
    counts as level 0, so a first collection already over a threshold alerts.
    """
    found = []
    for metric, (used, limit) in LIMITED.items():
        now = level(current.get(used), current.get(limit))
        before = level(previous.get(used), previous.get(limit)) if previous else 0
        if now > before:
            found.append((metric, now))
    return found


# -- collecting ------------------------------------------------------------------------------

def panel_can(registry: Registry, server: Server) -> bool:
    """Whether the server's panel declares a ``usage`` action."""
    try:
        return registry.get(server.panel).declares(ACTION)
    except ProvisiondError:
        return False


def collect(settings: Settings, vault: Vault, registry: Registry, server: Server,
            now: datetime.datetime | None = None) -> CollectResult:
    """Run the server's ``usage`` action once and store a row for each known service."""
    stats = actions.run(settings, vault, registry, action=ACTION, server=server)
    found = readings(stats.get("usage"))
    now = now or utcnow()
    with database.atomic():
        # The server's services, not an IN of every reported name: a server holds max_accounts
        # services, while a panel may report thousands of accounts.
        services = {s.username: s for s in Service.select().where(
            (Service.server == server) & Service.status.in_(MEASURED)) if s.username in found}
        previous = latest({s.id for s in services.values()})
        alerts = 0
        for username, figures in found.items():
            service = services.get(username)
            if service is None:
                continue
            row = Usage.create(service=service, collected_at=now, **figures)
            alerts += _alert(settings, service, server, row, previous.get(service.id), figures)
    result = CollectResult(server.name, stored=len(services), unknown=len(found) - len(services), alerts=alerts)
    log.info("usage of %s: %d services stored, %d accounts not known to provisiond, %d alerts",
             server.name, result.stored, result.unknown, result.alerts)
    return result


def _alert(settings: Settings, service: Service, server: Server, row: Usage,
           previous: Usage | None, figures: Mapping[str, Any]) -> int:
    before = {name: getattr(previous, name) for name in FIGURES} if previous else None
    found = crossings(before, figures)
    for metric, percent in found:
        used, limit = (figures[n] for n in LIMITED[metric])
        unit = "" if metric == "inodes" else " MB"
        notify.alert(settings, f"{service.ref}: {metric} at {percent} % of its limit",
                     f"Service {service.ref} ({service.domain}, {service.username} on {server.name}) uses "
                     f"{used:g}{unit} of {metric} of a limit of {limit:g}{unit}, measured "
                     f"{row.collected_at:%Y-%m-%d %H:%M} UTC.",
                     f"usage:{service.id}:{metric}:{percent}:{row.id}")
    return len(found)


def collect_all(settings: Settings, vault: Vault, registry: Registry, server_name: str | None = None,
                now: datetime.datetime | None = None) -> list[CollectResult]:
    """Collect every enabled server whose panel reports usage (or the one named).

    A server that fails is reported in its result and does not stop the others; naming a
    server whose panel cannot report usage is a ValidationError.
    """
    if server_name is not None:
        from provisiond import catalog
        server = catalog.server(server_name)
        if not panel_can(registry, server):
            raise ValidationError("server", f"panel {server.panel} of {server.name} cannot report usage")
        servers = [server]
    else:
        servers = [s for s in Server.select().where(Server.enabled == True).order_by(Server.name)  # noqa: E712
                   if panel_can(registry, s)]
    results = []
    for server in servers:
        try:
            results.append(collect(settings, vault, registry, server, now))
        except ProvisiondError as exc:
            log.warning("usage of %s not collected: %s", server.name, exc)
            results.append(CollectResult(server.name, error=str(exc)))
    return results


def claim_day(day: datetime.date) -> bool:
    """True for the one daemon that collects on ``day`` (compare-and-set on a shared row)."""
    return daily.claim(LAST_COLLECTION, day)


# -- reading the series ---------------------------------------------------------------------

def latest(service_ids: Iterable[int]) -> dict[int, Usage]:
    """Each service's newest row, by service id (services never collected are absent)."""
    ids = list(service_ids)
    if not ids:
        return {}
    newest = (Usage.select(Usage.service, pw.fn.MAX(Usage.collected_at).alias("at"))
              .where(Usage.service.in_(ids)).group_by(Usage.service).alias("newest"))
    query = Usage.select().join(newest, on=((Usage.service == newest.c.service_id)
                                            & (Usage.collected_at == newest.c.at)))
    return {row.service_id: row for row in query}


def history(service: Service, limit: int = 10) -> list[Usage]:
    """A service's rows, newest first."""
    return list(Usage.select().where(Usage.service == service)
                .order_by(Usage.collected_at.desc()).limit(limit))


def disk_by_server(server_ids: Iterable[int], occupying: Iterable[str]) -> dict[int, float]:
    """MB used by each server's accounts at their latest collection; a server none of whose
    services was ever collected is absent (its use is unknown)."""
    ids = list(server_ids)
    if not ids:
        return {}
    services = dict(Service.select(Service.id, Service.server).where(
        Service.server.in_(ids) & Service.status.in_(list(occupying))).tuples())
    totals: dict[int, float] = {}
    for service_id, row in latest(services).items():
        server_id = services[service_id]
        totals[server_id] = totals.get(server_id, 0.0) + (row.disk_used_mb or 0.0)
    return totals


def encode_cursor(row: Usage) -> str:
    """An opaque position after ``row`` in (collected_at, id) order."""
    raw = f"{row.collected_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, row_id = raw.partition("|")
        moment, number = datetime.datetime.fromisoformat(at), int(row_id)
        if moment.tzinfo is not None or not 0 < number < 2**63:
            raise ValueError(cursor)
        return moment, number
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this API gave") from None


def page(since: datetime.datetime, limit: int, cursor: str | None = None) -> tuple[list[Usage], str | None]:
    """Rows collected at or after ``since``, oldest first, ``limit`` at most, after ``cursor``;
    and the cursor of the next page, or None when this one is the last."""
    query = Usage.select(Usage, Service).join(Service).where(Usage.collected_at >= since)
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where((Usage.collected_at > at) | ((Usage.collected_at == at) & (Usage.id > row_id)))
    rows = list(query.order_by(Usage.collected_at, Usage.id).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more else None


def view(row: Usage, ref: str | None = None) -> dict:
    """A row as the CLI and the API show it."""
    return {"service": ref if ref is not None else row.service.ref, "collected_at": row.collected_at,
            **{name: getattr(row, name) for name in FIGURES}}
