"""Sync: compare a server's accounts on its panel with provisiond's services there.

The panel's accounts come from its ``list_accounts`` action (one run per server; every account
``{username, domain, package, suspended, email}``). ``compare`` is a pure function of those,
the server's services and ``now``; it matches by username with dict lookups, so a server of
10,000 accounts is compared in milliseconds (bench/sync.py). Its report is exactly:

    {"server", "checked_at", "panel_accounts", "services",
     "orphans": [{"username", "domain", "package", "suspended"}],
     "missing": [{"ref", "username", "domain", "status"}],
     "state_drift" | "package_drift" | "identity_drift": [{"ref", "username", "provisiond", "panel"}]}

Which services count:
- ``services`` (M) and ``missing``: the services that hold an account, active or suspended.
- An account whose username belongs to a pending service (its create may be running) or a
  failed one (its create's outcome may be unknown) is known: neither orphan nor drift.
- An account whose username belongs only to a terminated or closed service is an orphan:
  provisiond holds nothing there any more (a terminate that missed, or an account made again
  by hand). Adopting it needs the ended service's username freed first; adopt says so.
- state drift: suspended on one side only; package drift: another package; identity drift:
  the username belongs to another domain on the panel (domains compared in lower case).

``check`` reads the panel, compares, and (unless a dry run) stores the report as the server's
last (``ServerSync``) and alerts once about each missing account. The fixes are in
``reconcile``; the daemon's daily sync of every server is ``sync_all``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from typing import Any, Iterable, Mapping

from provisiond import actions, daily, notify
from provisiond.config import Settings
from provisiond.crypto import Vault
from provisiond.errors import NotFound, PanelError
from provisiond.models import Server, ServerSync, Service, database, utcnow
from provisiond.panels import Registry

log = logging.getLogger("provisiond.sync")

HOLDING = ("active", "suspended")              # hold an account: missing when it is absent
KNOWN = ("pending", "failed") + HOLDING        # an account of one of these is no orphan
DRIFT_KINDS = ("orphans", "missing", "state_drift", "package_drift", "identity_drift")
ACCOUNT_FIELDS = ("username", "domain", "package", "suspended", "email")
LAST_SYNC = "last_sync_day"


def _state(suspended: bool) -> str:
    return "suspended" if suspended else "active"


def compare(server: str, panel_accounts: Iterable[Mapping[str, Any]],
            services: Iterable[Mapping[str, Any]], now: datetime.datetime) -> dict:
    """The drift report of ``server``: its panel's accounts against its services.

    ``services`` are mappings with ref, username, domain, package and status (every service of
    the server with a username, any status). Lists are ordered by username."""
    on_panel = {a["username"]: a for a in panel_accounts}
    known: dict[str, Mapping[str, Any]] = {}
    for service in services:
        if service["status"] in KNOWN and service.get("username"):
            held = known.get(service["username"])
            if held is None or held["status"] not in HOLDING:  # a holder wins over a pending one
                known[service["username"]] = service
    report: dict[str, Any] = {
        "server": server, "checked_at": now.replace(microsecond=0).isoformat() + "Z",
        "panel_accounts": len(on_panel),
        "services": sum(1 for s in known.values() if s["status"] in HOLDING),
        **{kind: [] for kind in DRIFT_KINDS}}
    for username in sorted(on_panel):
        account = on_panel[username]
        service = known.get(username)
        if service is None:
            report["orphans"].append({"username": username, "domain": account["domain"],
                                      "package": account["package"], "suspended": bool(account["suspended"])})
            continue
        if service["status"] not in HOLDING:
            continue
        _drift(report, service, account)
    report["missing"] = [{"ref": s["ref"], "username": u, "domain": s["domain"], "status": s["status"]}
                         for u, s in sorted(known.items()) if s["status"] in HOLDING and u not in on_panel]
    return report


def _drift(report: dict, service: Mapping[str, Any], account: Mapping[str, Any]) -> None:
    ref, username = service["ref"], service["username"]
    if service["status"] != _state(account["suspended"]):
        report["state_drift"].append({"ref": ref, "username": username, "provisiond": service["status"],
                                      "panel": _state(account["suspended"])})
    if service["package"] != account["package"]:
        report["package_drift"].append({"ref": ref, "username": username,
                                        "provisiond": service["package"], "panel": account["package"]})
    if (service["domain"] or "").lower() != (account["domain"] or "").lower():
        report["identity_drift"].append({"ref": ref, "username": username,
                                         "provisiond": service["domain"], "panel": account["domain"]})


def counts(report: Mapping[str, Any]) -> dict[str, int]:
    """How many of each kind of drift a report holds."""
    return {kind: len(report[kind]) for kind in DRIFT_KINDS}


def fingerprint(report: Mapping[str, Any]) -> str:
    """The same drift gives the same fingerprint, whenever it was found."""
    drift = json.dumps({kind: report[kind] for kind in DRIFT_KINDS}, sort_keys=True)
    return hashlib.sha256(drift.encode()).hexdigest()


EMPTY = fingerprint({kind: [] for kind in DRIFT_KINDS})


# -- reading both sides --------------------------------------------------------------------

def services_of(server: Server) -> list[dict]:
    """The server's services as ``compare`` takes them, in one query."""
    rows = (Service.select(Service.ref, Service.username, Service.domain, Service.package, Service.status)
            .where((Service.server == server) & Service.username.is_null(False)).dicts())
    return list(rows)


def panel_accounts(settings: Settings, vault: Vault, registry: Registry, server: Server) -> list[dict]:
    """The server's accounts, as its panel's ``list_accounts`` reported them (checked)."""
    answer = actions.run(settings, vault, registry, action="list_accounts", server=server)
    accounts = answer.get("accounts")
    if not isinstance(accounts, list):
        raise PanelError(f"list_accounts of server {server.name} reported no accounts list")
    for number, account in enumerate(accounts, 1):
        if (not isinstance(account, dict) or not isinstance(account.get("username"), str)
                or not account["username"] or not isinstance(account.get("suspended"), bool)):
            raise PanelError(f"list_accounts of server {server.name}: account {number} is not "
                             f"{{username, domain, package, suspended (bool), email}}")
    return [{f: a.get(f) for f in ACCOUNT_FIELDS} for a in accounts]


def server_named(name: str) -> Server:
    found = Server.get_or_none(Server.name == name)
    if found is None:
        raise NotFound(f"server {name} does not exist")
    return found


def check(settings: Settings, vault: Vault, registry: Registry, server: Server, *,
          now: datetime.datetime | None = None, dry_run: bool = False) -> tuple[dict, list[dict], bool]:
    """Sync one server: (report, panel accounts, whether the drift changed). Unless
    ``dry_run``, the report is recorded (``record``)."""
    accounts = panel_accounts(settings, vault, registry, server)
    report = compare(server.name, accounts, services_of(server), now or utcnow())
    changed = changed_since(server, report) if dry_run else record(settings, server, report)
    return report, accounts, changed


def record(settings: Settings, server: Server, report: dict) -> bool:
    """Keep ``report`` as the server's last; a drift that changed since the last report
    alerts an admin and sends a ``server.drift`` billing webhook, and each missing account
    alerts once. Returns whether the drift changed."""
    with database.atomic():
        changed = store(server, report)
        if changed:
            announce_change(settings, server, report)
        alert_missing(settings, server, report)
    return changed


# -- keeping the last report ---------------------------------------------------------------

def changed_since(server: Server, report: dict) -> bool:
    """Whether ``report``'s drift differs from the server's last report's (a first report
    differs when it holds any drift)."""
    previous = ServerSync.get_or_none(ServerSync.server == server)
    return fingerprint(report) != (previous.fingerprint if previous else EMPTY)


def store(server: Server, report: dict) -> bool:
    """Keep ``report`` as the server's last; returns ``changed_since`` as it was before."""
    previous = ServerSync.get_or_none(ServerSync.server == server)
    mark = fingerprint(report)
    changed = mark != (previous.fingerprint if previous else EMPTY)
    values = {"checked_at": datetime.datetime.fromisoformat(report["checked_at"].rstrip("Z")),
              "panel_accounts": report["panel_accounts"], "services": report["services"],
              "fingerprint": mark, "report": report, **counts(report)}
    if previous is None:
        ServerSync.create(server=server, **values)
    else:
        ServerSync.update(**values).where(ServerSync.id == previous.id).execute()
    return changed


def last_report(name: str) -> dict:
    """The last stored report of server ``name``; NotFound when it was never synced."""
    server = server_named(name)
    row = ServerSync.get_or_none(ServerSync.server == server)
    if row is None:
        raise NotFound(f"server {name} was never synced (run `provisiond server sync {name}`)")
    return row.report


def alert_missing(settings: Settings, server: Server, report: dict) -> None:
    """One admin alert per missing account (per service and its last change), never a create."""
    if not report["missing"]:
        return
    changed = dict(Service.select(Service.ref, Service.updated_at).where(
        Service.ref.in_([m["ref"] for m in report["missing"]])).tuples())
    for item in report["missing"]:
        stamp = changed.get(item["ref"])
        notify.alert(settings, f"account {item['username']} of service {item['ref']} is missing on {server.name}",
                     f"Service {item['ref']} ({item['domain']}) is {item['status']} in provisiond, but "
                     f"server {server.name} has no account {item['username']}. Nothing is re-created "
                     f"by itself: `provisiond service recreate {item['ref']}` queues a create for it.",
                     f"sync:missing:{item['ref']}:{stamp:%Y%m%d%H%M%S}" if stamp else f"sync:missing:{item['ref']}")


# -- the daemon's daily sync ---------------------------------------------------------------

def claim_day(day: datetime.date) -> bool:
    """True for the one daemon that syncs the servers on ``day`` (compare-and-set, as the sweep)."""
    return daily.claim(LAST_SYNC, day)


def sync_all(settings: Settings, vault: Vault, registry: Registry, now: datetime.datetime) -> dict[str, str]:
    """Sync every enabled server whose panel lists its accounts; returns server -> outcome
    (``same``, ``changed`` or why it failed). A changed drift alerts an admin and sends a
    ``server.drift`` billing webhook; a server that cannot be read alerts once a day."""
    outcomes = {}
    for server in Server.select().where(Server.enabled == True).order_by(Server.name):  # noqa: E712
        try:
            if not registry.get(server.panel).declares("list_accounts"):
                continue  # the panel cannot list its accounts (its panel.yaml says why)
            _, _, changed = check(settings, vault, registry, server, now=now)
            outcomes[server.name] = "changed" if changed else "same"
        except Exception as exc:  # noqa: BLE001 - one server that fails must not stop the others
            log.error("sync of server %s failed: %s", server.name, exc)
            outcomes[server.name] = f"failed: {exc}"
            notify.alert(settings, f"sync of server {server.name} failed",
                         f"The daily sync could not read server {server.name}: {exc}",
                         f"sync:{server.name}:failed:{now.date().isoformat()}")
    return outcomes


def announce_change(settings: Settings, server: Server, report: dict) -> None:
    """Tell an admin (alert) and the billing system (``server.drift``) that the drift changed."""
    found = counts(report)
    summary = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in found.items())
    notify.alert(settings, f"drift on server {server.name} changed",
                 f"The sync of {report['checked_at']} found on server {server.name}: {summary}.\n\n"
                 f"`provisiond server sync {server.name}` shows it; GET /v1/servers/{server.name}/drift "
                 "gives the report.", f"sync:{server.name}:changed:{report['checked_at']}")
    notify.server_event(settings, server.name, "server.drift", {
        "checked_at": report["checked_at"], "panel_accounts": report["panel_accounts"],
        "services": report["services"], "drift": found}, change_id=report["checked_at"])
