"""The console's Servers page (/ui/servers) and Overview page (/ui/overview), on rows made
directly (no run is needed to show them): capacity, job counts, the disabled flag and drift per
server and per group; jobs by status, the hourly chart counted by the database on SQLite and on
PostgreSQL, the oldest due job and the daemons' heartbeats. Neither page shows a credential."""

from __future__ import annotations

import datetime
import re

import pytest
from fastapi.testclient import TestClient

from provisiond import api, catalog, sync
from provisiond.models import Daemon, Job, ProvisioningLog, Server, Service, utcnow
from provisiond.ui import overview

CANARY = "canary-api-token-Zq81Vx0Lm"
HOUR = datetime.timedelta(hours=1)


def row_of(html: str, attribute: str, value: str) -> str:
    """The HTML of the table row ``<tr ATTRIBUTE="VALUE" ...>...</tr>``."""
    found = re.search(rf'<tr {attribute}="{re.escape(value)}"[^>]*>.*?</tr>', html, re.S)
    assert found, f"no row {attribute}={value}"
    return found.group(0)


def cell(row: str, name: str) -> str:
    """The text of the row's ``<td class="NAME">`` with its tags removed and spaces collapsed."""
    found = re.search(rf'<td class="{name}">(.*?)</td>', row, re.S)
    assert found, f"no cell {name}"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


@pytest.fixture
def fleet(registry, vault):
    """Group web: whm1 (max 5; 3 of its services occupy it, one ended does not) and whm2
    (disabled); group mail: mx1. Server credentials hold the canary."""
    catalog.add_group("web")
    catalog.add_group("mail")
    credentials = {"api_token": CANARY, "scheme": "http"}
    whm1 = catalog.add_server(registry, vault, name="whm1", panel="cpanel", host="whm1.example.net",
                              group_name="web", max_accounts=5, credentials=credentials)
    whm2 = catalog.add_server(registry, vault, name="whm2", panel="cpanel", host="whm2.example.net",
                              group_name="web", max_accounts=10, max_concurrency=5, credentials=credentials)
    catalog.add_server(registry, vault, name="mx1", panel="cpanel", host="mx1.example.net",
                       group_name="mail", max_accounts=20, credentials=credentials)
    Server.update(enabled=False).where(Server.id == whm2.id).execute()
    product = catalog.add_product(registry, name="starter", panel="cpanel", group_name="web", package="basic")
    for n, status in enumerate(["active", "suspended", "pending", "terminated"]):
        Service.create(ref=f"INV-{n}", product=product, server=whm1, domain=f"site{n}.example",
                       email="owner@example.org", username=f"site{n}", package="basic", status=status)
    for status in ["queued", "queued", "running", "failed", "needs_attention", "succeeded", "cancelled"]:
        Job.create(server=whm1, action="create", status=status)
    Job.create(server=whm2, action="suspend", status="failed")
    return whm1, whm2


def test_pages_redirect_to_sign_in_without_a_session(database, settings, vault):
    with TestClient(api.create_app(settings, vault), follow_redirects=False) as client:
        for path in ("/ui/servers", "/ui/overview"):
            answer = client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == "/ui/login?next=" + path.replace("/", "%2F")


def test_servers_shows_capacity_jobs_and_the_disabled_flag_by_group(console, fleet):
    whm1, _ = fleet
    Server.update(health="failed", health_message="connection refused\nwhile calling the API",
                  health_checked_at=utcnow() - datetime.timedelta(minutes=10)).where(Server.id == whm1.id).execute()
    page = console.get("/ui/servers")
    assert page.status_code == 200 and '<table id="servers">' in page.text
    first = row_of(page.text, "data-server", "whm1")
    assert cell(first, "capacity").endswith("3/5")
    assert "3 of 5 accounts placed" in first and 'width="60.0"' in first
    assert (cell(first, "queued"), cell(first, "running"), cell(first, "failed")) == ("2", "1", "2")
    assert 'data-enabled="yes"' in first and "disabled" not in cell(first, "name")
    health = cell(first, "health")
    assert health.startswith("failed connection refused") and "while calling" not in health
    assert "checked 10 min ago" in health
    assert cell(first, "drift") == "never"
    assert cell(first, "concurrency") == "2"  # the default
    second = row_of(page.text, "data-server", "whm2")
    assert 'data-enabled="no"' in second and cell(second, "name") == "whm2 disabled"
    assert cell(second, "capacity").endswith("0/10") and cell(second, "failed") == "1"
    web = row_of(page.text, "data-group", "web")
    assert "2 servers, 1 disabled" in web and cell(web, "capacity").endswith("3/15")
    assert (cell(web, "queued"), cell(web, "failed")) == ("2", "3")
    assert (cell(second, "concurrency"), cell(web, "concurrency")) == ("5", "7")
    assert cell(row_of(page.text, "data-group", "mail"), "capacity").endswith("0/20")
    assert page.text.index('data-group="mail"') < page.text.index('data-server="mx1"') \
        < page.text.index('data-group="web"') < page.text.index('data-server="whm1"')


def test_servers_shows_the_drift_of_the_last_sync(console, fleet):
    whm1, _ = fleet
    on_panel = [{"username": u, "domain": f"{u}.example", "package": p, "suspended": s}
                for u, p, s in [("site0", "gold", False), ("site1", "basic", True), ("stray1", "basic", False),
                                ("stray2", "basic", True)]]
    checked = utcnow() - 3 * HOUR
    sync.store(whm1, sync.compare("whm1", on_panel, sync.services_of(whm1), checked))
    page = console.get("/ui/servers")
    drift = cell(row_of(page.text, "data-server", "whm1"), "drift")
    assert drift == "orphans 2 missing 0 state 0 package 1 identity 0 synced 3 h ago"
    assert '<li data-kind="orphans" class="found">' in row_of(page.text, "data-server", "whm1")
    assert cell(row_of(page.text, "data-server", "whm2"), "drift") == "never"
    assert cell(row_of(page.text, "data-group", "web"), "drift").endswith("1 of 2 synced")


def log_row(job: Job, started: datetime.datetime, status: str) -> None:
    ProvisioningLog.create(job=job, attempt=1, action=job.action, status=status, started_at=started,
                           finished_at=started + datetime.timedelta(seconds=3), duration=3.0)


def test_overview_counts_attempts_and_failures_per_hour(console, fleet):
    job = Job.get(Job.status == "failed")
    five = overview_hour(utcnow()) - 5 * HOUR
    for minutes, status in [(0, "succeeded"), (10, "failed"), (59, "retrying")]:
        log_row(job, five + datetime.timedelta(minutes=minutes), status)
    for status in ["timeout", "succeeded", "needs_attention", "succeeded"]:
        log_row(job, five + 4 * HOUR + datetime.timedelta(minutes=30), status)
    log_row(job, five - 30 * HOUR, "failed")  # a day and more ago: not in the chart
    page = console.get("/ui/overview")
    chart = re.search(r'<svg id="attempts-chart".*?</svg>', page.text, re.S).group(0)
    bars = re.findall(r'<g class="bar" data-hour="([^"]+)" data-attempts="(\d+)" data-failures="(\d+)">', chart)
    assert len(bars) == 24
    by_hour = {hour: (int(a), int(f)) for hour, a, f in bars}
    assert by_hour[iso(five)] == (3, 2) and by_hour[iso(five + 4 * HOUR)] == (4, 2)
    assert sum(f for _, f in by_hour.values()) == 4 and sum(a for a, _ in by_hour.values()) == 7
    assert f"<title>{five:%H}:00–{five + HOUR:%H}:00 UTC: 3 attempts, 2 failed</title>" in chart
    assert "7 attempts, 4 failed" in page.text


def overview_hour(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def iso(moment: datetime.datetime) -> str:
    return moment.replace(tzinfo=datetime.timezone.utc).isoformat(timespec="seconds")


def test_attempts_are_bucketed_by_clock_hour_by_the_database(database, fleet):
    job = Job.get(Job.status == "failed")
    ten = datetime.datetime(2026, 3, 1, 10)
    for started, status in [(ten, "failed"), (ten.replace(minute=59, second=59, microsecond=999999), "succeeded"),
                            (ten + HOUR, "timeout"), (ten - datetime.timedelta(microseconds=1), "failed")]:
        log_row(job, started, status)
    assert overview.attempts_by_hour(ten) == {ten: (2, 1), ten + HOUR: (1, 1)}


def test_overview_shows_jobs_by_status_the_oldest_due_job_and_stale_daemons(console, fleet):
    now = utcnow()
    Job.create(action="create", status="queued", created_at=now - 2 * HOUR, run_after=now - HOUR)
    Job.create(action="create", status="queued", created_at=now - 5 * HOUR, run_after=now + HOUR)
    Daemon.create(owner="alive@web1", host="web1", pid=101, version="0.1.0", started_at=now - HOUR, last_tick_at=now)
    Daemon.create(owner="quiet@web2", host="web2", pid=202, version="0.1.0", started_at=now - 3 * HOUR,
                  last_tick_at=now - HOUR)
    Daemon.create(owner="done@web3", host="web3", pid=303, version="0.1.0", started_at=now - 3 * HOUR,
                  last_tick_at=now - 2 * HOUR, stopped_at=now - 2 * HOUR)
    page = console.get("/ui/overview").text
    statuses = re.search(r'<table id="jobs-by-status".*?</table>', page, re.S).group(0)
    assert cell(row_of(statuses, "data-status", "queued"), "count") == "4"
    assert cell(row_of(statuses, "data-status", "failed"), "count") == "2"
    assert cell(row_of(statuses, "data-status", "needs_attention"), "count") == "1"
    oldest = re.search(r'<div class="card" id="oldest-queued">(.*?)</div>\s*</div>', page, re.S).group(1)
    assert '<div class="big">2 h</div>' in oldest
    assert "3 due now · 1 waiting for a retry time · 1 running" in page
    daemons = re.search(r'<table id="daemons">.*?</table>', page, re.S).group(0)
    assert 'data-state="running"' in row_of(daemons, "data-daemon", "alive@web1")
    quiet = row_of(daemons, "data-daemon", "quiet@web2")
    assert 'data-state="stale"' in quiet and cell(quiet, "state") == "stale"
    assert cell(quiet, "last-tick") == "1 h ago" and cell(quiet, "pid") == "202"
    assert cell(row_of(daemons, "data-daemon", "done@web3"), "state") == "stopped"


def test_no_page_shows_a_server_credential(console, fleet):
    for path in ("/ui/servers", "/ui/overview"):
        page = console.get(path)
        assert page.status_code == 200 and CANARY not in page.text
        assert "api_token" not in page.text and "credentials" not in page.text
