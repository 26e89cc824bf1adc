"""`server sync` against the WHM simulator, through real list_accounts runs: the drift report,
adopt, reapply, accept-panel, recreate, the drift endpoint and the daemon's daily sync."""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
from fastapi.testclient import TestClient

from provisiond import api, daemon, lifecycle, tokens
from provisiond.models import AuditEntry, Job, Notification, ServerSync, Service
from tests.helpers import settle


def order(registry, vault, worker, ref, domain, **kwargs):
    service, job = lifecycle.order(registry, vault, product="starter", domain=domain,
                                   email=f"owner@{domain}", ref=ref, **kwargs)
    assert settle(worker, job).status == "succeeded"
    return Service.get_by_id(service.id)


def on_panel(whm, username, domain, plan="basic", email=""):
    """An account made on the panel by someone else (a billing system before provisiond)."""
    answer = whm.op_createacct({"username": username, "domain": domain, "plan": plan,
                                "password": "Xx1!whatever-long", "contactemail": email})
    assert json.loads(answer.body)["metadata"]["result"] == 1


@pytest.fixture
def fleet(cpanel_setup, registry, vault, worker, whm):
    """Five services made by provisiond, then changed behind its back on the panel, and one
    account it never knew: each kind of drift once."""
    jobs = [lifecycle.order(registry, vault, product="starter", domain=domain, email=f"owner@{domain}",
                            ref=ref)[1]
            for ref, domain in (("A", "amy.example.com"), ("B", "bob.example.com"),
                                ("C", "cat.example.com"), ("D", "dan.example.com"), ("E", "eve.example.com"))]
    worker.tick(wait=True)  # one run creates the five
    assert all(Job.get_by_id(j.id).status == "succeeded" for j in jobs)
    whm.accounts["bob"].suspended = True               # suspended on the panel only
    whm.accounts["cat"].plan = "pro"                   # another package
    whm.accounts["dan"].domain = "elsewhere.example.net"  # the username now serves another domain
    del whm.accounts["eve"]                            # gone from the panel
    on_panel(whm, "old", "old.example.org", plan="pro", email="client@old.example.org")
    return whm


EXPECTED = {
    "server": "whm1", "panel_accounts": 5, "services": 5,
    "orphans": [{"username": "old", "domain": "old.example.org", "package": "pro", "suspended": False}],
    "missing": [{"ref": "E", "username": "eve", "domain": "eve.example.com", "status": "active"}],
    "state_drift": [{"ref": "B", "username": "bob", "provisiond": "active", "panel": "suspended"}],
    "package_drift": [{"ref": "C", "username": "cat", "provisiond": "basic", "panel": "pro"}],
    "identity_drift": [{"ref": "D", "username": "dan", "provisiond": "dan.example.com",
                        "panel": "elsewhere.example.net"}],
}


def test_sync_reports_each_kind_of_drift_in_exactly_the_issue_shape(fleet, run):
    code, out, err = run("server", "sync", "whm1", "--json")
    assert code == 0, err
    report = json.loads(out)
    checked_at = report.pop("checked_at")
    assert datetime.datetime.fromisoformat(checked_at.rstrip("Z")) and checked_at.endswith("Z")
    assert report == EXPECTED
    assert list(json.loads(out)) == ["server", "checked_at", "panel_accounts", "services", *list(EXPECTED)[3:]]
    assert ServerSync.get().report == json.loads(out)  # kept as the server's last report

    code, out, _ = run("server", "sync", "whm1")
    assert code == 0
    assert "1 orphans, 1 missing, 1 state drift, 1 package drift, 1 identity drift" in out
    assert "elsewhere.example.net" in out and "old.example.org" in out


def test_a_missing_account_alerts_once_and_is_never_recreated_by_sync(fleet, run, monkeypatch):
    monkeypatch.setenv("PROVISIOND_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/alerts")
    for _ in range(2):
        assert run("server", "sync", "whm1")[0] == 0
    alerts = [n for n in Notification.select() if n.dedup_key.startswith("sync:missing:")]
    assert [a.payload["subject"] for a in alerts] == ["account eve of service E is missing on whm1"]
    creates = [r for r in fleet.requests if r.path.endswith("/createacct")]
    assert len(creates) == 5 and "eve" not in fleet.accounts  # the fleet's own, nothing more


def test_dry_run_stores_nothing(fleet, run):
    code, out, _ = run("server", "sync", "whm1", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["missing"]
    assert ServerSync.select().count() == 0 and Notification.select().count() == 0


# -- adopt ---------------------------------------------------------------------------------

def test_adopt_records_orphans_with_the_panel_state_and_calls_no_create(cpanel_setup, run, whm, tmp_path):
    on_panel(whm, "old", "old.example.org", plan="pro", email="client@old.example.org")
    on_panel(whm, "frozen", "frozen.example.org")          # no email on the panel: the map gives one
    whm.accounts["frozen"].suspended = True
    on_panel(whm, "plain", "plain.example.org", email="p@plain.example.org")
    mapping = tmp_path / "map.csv"
    mapping.write_text("username,ref,paid_until,email\nfrozen,WHMCS-77,2026-12-31,billing@frozen.example.org\n")
    before = len(whm.requests)

    code, out, err = run("server", "sync", "whm1", "--adopt", "starter", "--map", str(mapping), "--dry-run")
    assert code == 0, err
    assert "WHMCS-77" in out and "nothing was written" in out and Service.select().count() == 0

    code, out, err = run("server", "sync", "whm1", "--adopt", "starter", "--map", str(mapping), "--json")
    assert code == 0, err
    assert sorted(a["ref"] for a in json.loads(out)["adopted"]) == ["WHMCS-77", "whm1:old", "whm1:plain"]
    frozen, old = Service.get(Service.ref == "WHMCS-77"), Service.get(Service.ref == "whm1:old")
    assert (frozen.status, frozen.username, frozen.email, frozen.paid_until) == (
        "suspended", "frozen", "billing@frozen.example.org", datetime.date(2026, 12, 31))
    assert (old.status, old.package, old.domain, old.email, old.product.name) == (
        "active", "pro", "old.example.org", "client@old.example.org", "starter")
    assert old.password is None and Job.select().count() == 0
    assert not any(r.path.endswith("/createacct") for r in whm.requests[before:])
    assert {e.subject for e in AuditEntry.select().where(AuditEntry.action == "service.adopt")} == {
        "service:WHMCS-77", "service:whm1:old", "service:whm1:plain"}

    code, out, _ = run("server", "sync", "whm1", "--json")
    report = json.loads(out)
    assert report["orphans"] == [] and report["services"] == 3
    assert report["state_drift"] == report["package_drift"] == report["identity_drift"] == []


def test_adopt_refuses_an_orphan_without_email_and_writes_nothing(cpanel_setup, run, whm):
    on_panel(whm, "old", "old.example.org", email="client@old.example.org")
    on_panel(whm, "nomail", "nomail.example.org")
    code, out, err = run("server", "sync", "whm1", "--adopt", "starter")
    assert code == 2 and "nomail" in err and "email" in err
    assert Service.select().count() == 0 and ServerSync.select().count() == 0


@pytest.mark.parametrize("text, named", [
    ("ghost,R1\n", "ghost"), ("old,R1,31/12/2026\n", "paid_until"), ("old,bad ref!\n", "ref"),
    ("old,R1,,not-an-email\n", "email")])
def test_a_bad_map_is_refused_naming_the_line(cpanel_setup, run, whm, tmp_path, text, named):
    on_panel(whm, "old", "old.example.org", email="client@old.example.org")
    mapping = tmp_path / "map.csv"
    mapping.write_text(text)
    code, _, err = run("server", "sync", "whm1", "--adopt", "starter", "--map", str(mapping))
    assert code == 2 and named in err
    assert Service.select().count() == 0


def test_adopt_wants_a_product_of_the_servers_panel(cpanel_setup, run, whm, registry):
    from provisiond import catalog
    catalog.add_group("linux")
    catalog.add_product(registry, name="shell", panel="linux", group_name="linux", package="default")
    on_panel(whm, "old", "old.example.org", email="client@old.example.org")
    code, _, err = run("server", "sync", "whm1", "--adopt", "shell")
    assert code == 2 and "product" in err and "cpanel" in err


# -- reapply and accept-panel --------------------------------------------------------------

def test_reapply_queues_the_jobs_and_a_worker_run_fixes_the_panel(fleet, run, worker, registry, vault):
    lifecycle.request(registry, vault, "A", "suspend", reason="overdue")
    settle(worker, Job.select().order_by(Job.id.desc()).first())
    fleet.accounts["amy"].suspended = False            # unsuspended on the panel only
    code, out, err = run("server", "sync", "whm1", "--reapply", "--json")
    assert code == 0, err
    done = {(r["ref"], r["action"]): r for r in json.loads(out)["reapplied"]}
    assert set(done) == {("A", "suspend"), ("B", "unsuspend"), ("C", "change_package"), ("D", None)}
    assert "identity drift" in done[("D", None)]["skipped"]
    jobs = {j.id: j for j in Job.select().where(Job.status == "queued")}
    assert {(j.service.ref, j.action, json.dumps(j.params, sort_keys=True)) for j in jobs.values()} == {
        ("A", "suspend", '{"reason": "overdue"}'), ("B", "unsuspend", "{}"),
        ("C", "change_package", '{"package": "basic"}')}
    assert AuditEntry.select().where(AuditEntry.action == "sync.reapply").count() == 3

    for _ in range(3):  # a server takes per_server_runs runs at a time
        worker.tick(wait=True)
    assert all(Job.get_by_id(i).status == "succeeded" for i in jobs)
    assert fleet.accounts["amy"].suspended and not fleet.accounts["bob"].suspended
    assert fleet.accounts["cat"].plan == "basic"
    report = json.loads(run("server", "sync", "whm1", "--json")[1])
    assert report["state_drift"] == report["package_drift"] == []
    assert [d["ref"] for d in report["identity_drift"]] == ["D"]  # left to a person


def test_reapply_dry_run_shows_the_jobs_and_queues_none(fleet, run):
    code, out, err = run("server", "sync", "whm1", "--reapply", "--dry-run")
    assert code == 0, err
    assert "unsuspend" in out and "change_package" in out and "nothing was written" in out
    assert Job.select().where(Job.status == "queued").count() == 0
    assert AuditEntry.select().count() == 0 and ServerSync.select().count() == 0


def test_reapply_leaves_a_service_with_an_open_job_alone(fleet, run, registry, vault):
    job = lifecycle.request(registry, vault, "B", "change_password")
    code, out, _ = run("server", "sync", "whm1", "--reapply", "--json")
    skipped = {r["ref"]: r.get("skipped") for r in json.loads(out)["reapplied"]}
    assert f"job {job.id}" in skipped["B"] and skipped["C"] is None
    assert Job.select().where((Job.action == "unsuspend")).count() == 0


def test_accept_panel_records_the_panel_state_audited(fleet, run):
    code, out, err = run("server", "sync", "whm1", "--accept-panel", "--dry-run", "--json")
    assert code == 0 and len(json.loads(out)["accepted"]) == 3
    assert Service.get(Service.ref == "B").status == "active"  # a dry run writes nothing

    code, out, err = run("server", "sync", "whm1", "--accept-panel")
    assert code == 0, err
    bob, cat, dan = (Service.get(Service.ref == r) for r in "BCD")
    assert (bob.status, bob.status_reason) == ("suspended", "panel")
    assert cat.package == "pro" and dan.domain == "elsewhere.example.net"
    entries = {(e.subject, e.detail["field"]): e.detail for e in
               AuditEntry.select().where(AuditEntry.action == "sync.accept_panel")}
    assert entries[("service:B", "status")] == {"field": "status", "previous": "active", "now": "suspended"}
    assert set(entries) == {("service:B", "status"), ("service:C", "package"), ("service:D", "domain")}
    assert Job.select().where(Job.status == "queued").count() == 0  # nothing sent to the panel
    report = json.loads(run("server", "sync", "whm1", "--json")[1])
    assert report["state_drift"] == report["package_drift"] == report["identity_drift"] == []
    assert report["missing"]  # accept-panel never forgets a service


def test_reapply_and_accept_panel_are_one_or_the_other(fleet, run):
    with pytest.raises(SystemExit) as refused:  # argparse refuses the pair
        run("server", "sync", "whm1", "--reapply", "--accept-panel")
    assert refused.value.code == 2
    assert ServerSync.select().count() == 0


# -- recreate ------------------------------------------------------------------------------

def test_recreate_needs_the_last_sync_to_find_the_account_missing(fleet, run, worker):
    code, _, err = run("service", "recreate", "E")
    assert code == 2 and "server sync" in err                    # never synced yet
    assert run("service", "recreate", "A")[0] == 2
    assert run("server", "sync", "whm1")[0] == 0
    code, _, err = run("service", "recreate", "A")
    assert code == 2 and "missing" in err                        # A's account is there

    code, out, err = run("service", "recreate", "E", "--json")
    assert code == 0, err
    [job] = json.loads(out)
    assert job["action"] == "create"
    code, _, err = run("service", "recreate", "E")
    assert code == 2 and f"job {job['id']}" in err               # once
    assert settle(worker, Job.get_by_id(job["id"])).status == "succeeded"
    assert fleet.accounts["eve"].domain == "eve.example.com"
    assert json.loads(run("server", "sync", "whm1", "--json")[1])["missing"] == []
    assert AuditEntry.get(AuditEntry.action == "service.recreate").subject == "service:E"


def test_recreate_of_a_suspended_service_suspends_the_new_account(cpanel_setup, run, registry, vault,
                                                                   worker, whm):
    order(registry, vault, worker, "S", "sus.example.com")
    settle(worker, lifecycle.request(registry, vault, "S", "suspend", reason="abuse"))
    del whm.accounts["sus"]
    assert run("server", "sync", "whm1")[0] == 0
    code, out, err = run("service", "recreate", "S", "--json")
    assert code == 0, err
    assert [j["action"] for j in json.loads(out)] == ["create", "suspend"]
    worker.tick(wait=True)
    worker.tick(wait=True)
    service = Service.get(Service.ref == "S")
    assert whm.accounts["sus"].suspended and whm.accounts["sus"].suspendreason == "abuse"
    assert (service.status, service.status_reason) == ("suspended", "abuse")


# -- the drift endpoint and the daemon -----------------------------------------------------

def test_drift_endpoint_gives_the_last_report(fleet, run, settings, vault):
    token = tokens.create("admin", scope="admin")
    with TestClient(api.create_app(settings, vault)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/servers/whm1/drift", headers=headers).status_code == 404
        assert client.get("/v1/servers/nope/drift", headers=headers).status_code == 404
        assert client.get("/v1/servers/whm1/drift").status_code == 401
        billing = {"Authorization": f"Bearer {tokens.create('shop')}"}  # a billing token may not
        assert client.get("/v1/servers/whm1/drift", headers=billing).status_code == 403
        code, out, _ = run("server", "sync", "whm1", "--json")
        answer = client.get("/v1/servers/whm1/drift", headers=headers)
        assert answer.status_code == 200 and answer.json() == json.loads(out)


def test_daily_sync_runs_once_a_day_and_alerts_only_when_the_drift_changes(fleet, settings, vault):
    hooked = dataclasses.replace(settings, alert_webhook_url="http://127.0.0.1:9/alerts",
                                 billing_webhook_url="http://127.0.0.1:9/billing", billing_webhook_secret="s")

    def drift_notes():
        rows = Notification.select().where(Notification.dedup_key.contains(":changed:")
                                           | Notification.dedup_key.startswith("billing:server:"))
        return sorted((row.kind, row.payload.get("event")) for row in rows)

    day = datetime.date(2026, 11, 28)
    assert daemon.run_sync(hooked, vault, day) == {"whm1": "changed"}
    assert daemon.run_sync(hooked, vault, day) is None            # another daemon: done today
    assert drift_notes() == [("alert_webhook", "alert"), ("billing_webhook", "server.drift")]
    hook = Notification.get(Notification.kind == "billing_webhook")
    assert hook.payload["server"] == "whm1" and hook.payload["drift"]["orphans"] == 1
    missing = Notification.select().where(Notification.dedup_key.startswith("sync:missing:E")).count()
    assert missing == 1

    assert daemon.run_sync(hooked, vault, day + datetime.timedelta(days=1)) == {"whm1": "same"}
    assert len(drift_notes()) == 2                                # the same drift: no new alert
    assert Notification.select().where(Notification.dedup_key.startswith("sync:missing:E")).count() == 1

    del fleet.accounts["amy"]
    assert daemon.run_sync(hooked, vault, day + datetime.timedelta(days=2)) == {"whm1": "changed"}
    assert len(drift_notes()) == 4


def test_daily_sync_goes_on_past_a_server_it_cannot_read(cpanel_setup, settings, vault, registry, whm):
    from provisiond import catalog
    catalog.add_server(registry, vault, name="whm0", panel="cpanel", host="127.0.0.1", port=9,
                       group_name="web", credentials={"api_token": "x" * 16, "scheme": "http"})
    on_panel(whm, "old", "old.example.org", email="client@old.example.org")
    hooked = dataclasses.replace(settings, alert_webhook_url="http://127.0.0.1:9/alerts")
    outcomes = daemon.run_sync(hooked, vault, datetime.date(2026, 11, 28))
    assert outcomes["whm1"] == "changed" and outcomes["whm0"].startswith("failed:")
    assert Notification.select().where(Notification.dedup_key.startswith("sync:whm0:failed:")).count() == 1
    assert [s.server.name for s in ServerSync.select()] == ["whm1"]
