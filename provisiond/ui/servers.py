"""``/ui/servers``: every server, by group, with what an admin checks first: its health and
when that was checked, how full it is (accounts placed of ``max_accounts``), how many panel
calls it takes at once (``max_concurrency``), its queued, running and failed jobs, whether it
takes new orders, and the drift its last sync found.

A server is shown through ``views.server_view`` (the CLI's and the API's view; credentials
are never rendered). The figures of all servers come from a few grouped queries, not from
queries per server, so the page stays fast on a large fleet.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from peewee import fn

from provisiond import fleet, sync
from provisiond.models import Job, JobStatus, Server, ServerGroup, ServerSync
from provisiond.ui import session
from provisiond.ui.render import page
from provisiond.views import server_view

router = APIRouter()

# Page column -> the job statuses it counts.
JOB_COLUMNS = {"queued": (JobStatus.QUEUED.value,), "running": (JobStatus.RUNNING.value,),
               "failed": (JobStatus.FAILED.value, JobStatus.NEEDS_ATTENTION.value)}
DRIFT_LABELS = {"orphans": "orphans", "missing": "missing", "state_drift": "state",
                "package_drift": "package", "identity_drift": "identity"}


@router.get("/servers")
@session.with_admin
def servers(request: Request, admin: session.AdminDep):
    return page(request, "servers.html", title="Servers", admin=admin, groups=fleet_by_group(),
                drift_labels=DRIFT_LABELS)


def fleet_by_group() -> list[dict]:
    """The groups that have servers, by name, each with its servers' rows and their totals."""
    placed = fleet.placed_by_server()
    jobs = job_counts()
    drift = last_syncs()
    groups: dict[str, dict] = {}
    query = (Server.select(Server, ServerGroup).join(ServerGroup)
             .order_by(ServerGroup.name, Server.name))
    for server in query:
        group = groups.setdefault(server.group.name, {"name": server.group.name,
                                                      "strategy": server.group.strategy, "servers": []})
        group["servers"].append(server_row(server, placed.get(server.id, 0), jobs.get(server.id, {}),
                                           drift.get(server.id)))
    return [dict(group, totals=totals(group["servers"])) for group in groups.values()]


def server_row(server: Server, placed: int, jobs: dict[str, int], last_sync: dict | None) -> dict:
    row = server_view(server, placed=placed)
    row.pop("credentials")  # masked already; still nothing of them belongs on a page
    return dict(row, checked_at=server.health_checked_at, full_percent=percent(placed, server.max_accounts),
                jobs={column: jobs.get(column, 0) for column in JOB_COLUMNS}, sync=last_sync)


def percent(placed: int, max_accounts: int) -> float:
    """How full a server is, 0-100 (a server allowing no account is full)."""
    return 100.0 if max_accounts <= 0 else round(min(100.0, 100.0 * placed / max_accounts), 1)


def job_counts() -> dict[int, dict[str, int]]:
    """Server id -> page column -> jobs, in one grouped query over every server."""
    column_of = {status: column for column, statuses in JOB_COLUMNS.items() for status in statuses}
    rows = (Job.select(Job.server, Job.status, fn.COUNT(Job.id))
            .where(Job.server.is_null(False) & Job.status.in_(list(column_of)))
            .group_by(Job.server, Job.status).tuples())
    counts: dict[int, dict[str, int]] = {}
    for server_id, status, n in rows:
        column = counts.setdefault(server_id, {})
        column[column_of[status]] = column.get(column_of[status], 0) + n
    return counts


def last_syncs() -> dict[int, dict]:
    """Server id -> when its last sync ran and how many of each kind of drift it found
    (servers never synced are absent). The reports themselves are not read."""
    columns = [getattr(ServerSync, kind) for kind in sync.DRIFT_KINDS]
    rows = ServerSync.select(ServerSync.server, ServerSync.checked_at, *columns).dicts()
    return {row["server"]: {"checked_at": row["checked_at"],
                            "drift": {kind: row[kind] for kind in sync.DRIFT_KINDS}} for row in rows}


def totals(rows: list[dict]) -> dict:
    """A group's sums: servers (and how many are disabled), accounts, panel calls at once, jobs, drift."""
    synced = [r["sync"] for r in rows if r["sync"]]
    placed, max_accounts = sum(r["placed"] for r in rows), sum(r["max_accounts"] for r in rows)
    return {"servers": len(rows), "disabled": sum(1 for r in rows if not r["enabled"]),
            "placed": placed, "max_accounts": max_accounts, "full_percent": percent(placed, max_accounts),
            "max_concurrency": sum(r["max_concurrency"] for r in rows),
            "jobs": {column: sum(r["jobs"][column] for r in rows) for column in JOB_COLUMNS},
            "synced": len(synced),
            "drift": {kind: sum(s["drift"][kind] for s in synced) for kind in sync.DRIFT_KINDS}}
