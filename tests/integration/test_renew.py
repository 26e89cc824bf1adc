"""`service renew` and `POST /v1/services/{ref}/renew` (provisiond.renew), on SQLite and PostgreSQL.

A panel without renew.yml (the bundled cPanel) gets the new paid-until and no job; a team panel
under tmp_path with a tiny renew.yml gets a renew job that runs it with ``account.params.until``
(one real run per database)."""

from __future__ import annotations

import dataclasses
import datetime
import shutil

import pytest
from fastapi.testclient import TestClient

from provisiond import api, config, panelcheck, panels, renew, tokens
from provisiond.errors import ValidationError
from provisiond.models import AuditEntry, Job, Server, Service
from provisiond.worker import Worker
from tests.helpers import add_services, last_log, settle

TODAY = datetime.date.today()
LATER = TODAY + datetime.timedelta(days=30)
NEXT_YEAR = TODAY + datetime.timedelta(days=395)
RENEW_YML = """---
- name: Renew
  hosts: all
  gather_facts: false
  tasks:
    - name: Lift the panel-side expiry
      ansible.builtin.debug:
        msg: "expiry lifted until {{ account.params.until }}"
"""


def a_service(cpanel_setup, vault, status="active", reason=None, paid_until=LATER) -> Service:
    server, product = cpanel_setup
    service, = add_services(vault, product, server, [("INV-1", "shop.example.com", status)])
    Service.update(status_reason=reason, paid_until=paid_until).where(Service.id == service.id).execute()
    return Service.get_by_id(service.id)


def renewals(ref="INV-1") -> list[AuditEntry]:
    return [e for e in AuditEntry.select().where(AuditEntry.subject == f"service:{ref}") if e.action == "renew"]


def untouched(service: Service) -> None:
    """A refused renewal wrote nothing: the date, the jobs and the audit trail are as they were."""
    assert Service.get_by_id(service.id).paid_until == service.paid_until
    assert Job.select().where(Job.service == service.id).count() == 0
    assert renewals(service.ref) == []


def team_folder(base):
    """Panel ``cpanel_renew`` in ``base``: the bundled cPanel plus a tiny renew.yml."""
    folder = base / "cpanel_renew"
    shutil.copytree(config.bundled_dir("playbooks") / "cpanel", folder)
    manifest = folder / "panel.yaml"
    manifest.write_text(manifest.read_text().replace("id: cpanel", "id: cpanel_renew")
                        .replace("change_password, test_connection]", "change_password, test_connection, renew]"))
    (folder / "renew.yml").write_text(RENEW_YML)
    return folder


@pytest.fixture
def team_panels(tmp_path, settings):
    """Settings and registry with the team panel ``cpanel_renew`` in their playbooks_path."""
    team_folder(tmp_path)
    settings = dataclasses.replace(settings, playbooks_path=(tmp_path,))
    return settings, panels.discover(settings.panel_dirs())


# -- a panel without renew.yml ----------------------------------------------------------------

def test_renew_without_renew_yml_records_the_date_audited_and_queues_no_job(cpanel_setup, vault, run):
    service = a_service(cpanel_setup, vault)
    code, out, err = run("service", "renew", "INV-1", "--until", NEXT_YEAR.isoformat())
    assert code == 0, err
    assert f"renewed until {NEXT_YEAR}" in out and "no renew.yml: no job" in out
    assert Service.get_by_id(service.id).paid_until == NEXT_YEAR
    assert Job.select().where(Job.service == service.id).count() == 0
    entry, = renewals()
    assert entry.actor.startswith("cli:")
    assert entry.detail == {"previous": LATER.isoformat(), "paid_until": NEXT_YEAR.isoformat()}
    # The same date again is a replay: accepted, still no job, audited again.
    code, out, err = run("service", "renew", "INV-1", "--until", NEXT_YEAR.isoformat(), "--json")
    assert code == 0, err
    assert '"renew_job": null' in out and len(renewals()) == 2


REFUSED_DATES = [
    ((TODAY - datetime.timedelta(days=1)).isoformat(), "is in the past"),
    ((LATER - datetime.timedelta(days=1)).isoformat(), f"is before the current paid_until {LATER}"),
    ("01/02/2030", "ambiguous: 2030-02-01 (day first) or 2030-01-02 (month first)"),
    ("31/01/2030", "write 2030-01-31"),
    ("20300131", "is not a date written YYYY-MM-DD"),
    ("2030-W05-1", "is not a date written YYYY-MM-DD"),
    ("2030-02-30", "is not a date (YYYY-MM-DD)"),
]


def test_a_date_that_is_not_one_clear_later_day_is_refused_naming_until(cpanel_setup, vault, run):
    service = a_service(cpanel_setup, vault)
    for until, said in REFUSED_DATES:
        code, out, err = run("service", "renew", "INV-1", "--until", until)
        assert code == 2 and "until:" in err and said in err, (until, err)
        untouched(service)


def test_a_service_that_is_not_active_or_suspended_is_refused_with_its_state(cpanel_setup, vault, run):
    service = a_service(cpanel_setup, vault)
    for status in ("terminated", "closed", "pending", "failed"):
        Service.update(status=status).where(Service.id == service.id).execute()
        code, out, err = run("service", "renew", "INV-1", "--until", NEXT_YEAR.isoformat())
        assert code == 2 and f"service INV-1 is {status}; renew needs it active or suspended" in err, err
        untouched(service)


def test_renew_unsuspends_an_overdue_suspension_as_a_payment_does_never_an_abuse_one(cpanel_setup, vault, registry):
    overdue = a_service(cpanel_setup, vault, status="suspended", reason="overdue",
                        paid_until=TODAY - datetime.timedelta(days=20))
    renewed = renew.renew("INV-1", NEXT_YEAR, TODAY, registry=registry, vault=vault, actor="test")
    assert renewed.job is None and renewed.unsuspend_job.action == "unsuspend"
    assert renewals()[-1].detail["unsuspend_job"] == renewed.unsuspend_job.id
    Job.delete().execute()
    Service.update(status_reason="abuse").where(Service.id == overdue.id).execute()
    renewed = renew.renew("INV-1", NEXT_YEAR + datetime.timedelta(days=1), TODAY, registry=registry, vault=vault,
                          actor="test")
    assert renewed.unsuspend_job is None and renewed.service.status == "suspended"
    assert Job.select().count() == 0


# -- a panel with renew.yml -----------------------------------------------------------------

def test_renew_yml_runs_as_a_renew_job_with_the_new_date(cpanel_setup, vault, team_panels):
    settings, registry = team_panels
    service = a_service(cpanel_setup, vault)
    Service.update(status="suspended", status_reason="overdue").where(Service.id == service.id).execute()
    Server.update(panel="cpanel_renew").where(Server.name == "whm1").execute()
    token = tokens.create("whmcs")  # a billing token, as a billing system holds
    with TestClient(api.create_app(settings, vault), headers={"Authorization": f"Bearer {token}"}) as client:
        answer = client.post("/v1/services/INV-1/renew", json={"until": NEXT_YEAR.isoformat()})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["paid_until"] == NEXT_YEAR.isoformat() and body["renew_job"] and body["unsuspend_job"]
        # the renew job comes first: the panel's expiry is lifted before the unsuspend runs
        assert body["renew_job"] < body["unsuspend_job"]
        replay = client.post("/v1/services/INV-1/renew", json={"until": NEXT_YEAR.isoformat()})
        assert replay.status_code == 200 and replay.json()["renew_job"] == body["renew_job"], replay.text
        refused = client.post("/v1/services/INV-1/renew", json={"until": "01/02/2030"})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "until"]
        assert "2030-02-01 (day first) or 2030-01-02 (month first)" in refused.json()["detail"][0]["msg"]
    job = Job.get_by_id(body["renew_job"])
    assert job.action == "renew" and job.params == {"until": NEXT_YEAR.isoformat()}
    worker = Worker(settings, vault, owner="renew-test")
    try:
        job = settle(worker, job)
    finally:
        worker.shutdown()
    assert job.status == "succeeded", job.last_error
    assert f"expiry lifted until {NEXT_YEAR}" in last_log(job).stdout_excerpt
    assert Service.get_by_id(service.id).paid_until == NEXT_YEAR


def test_panels_check_knows_renew_and_reports_a_renew_yml_actions_leaves_out(tmp_path):
    manifest = team_folder(tmp_path) / "panel.yaml"
    report, = panelcheck.check(panels.discover([tmp_path]), "cpanel_renew")
    assert report.ok, report.problems
    manifest.write_text(manifest.read_text().replace(", renew]", "]"))
    report, = panelcheck.check(panels.discover([tmp_path]), "cpanel_renew")
    assert not report.ok
    assert any("renew.yml: renew is not listed in actions:" in p for p in report.problems), report.problems


def test_renew_cannot_be_an_admin_action(tmp_path):
    folder = tmp_path / "odd"
    shutil.copytree(config.bundled_dir("playbooks") / "cpanel", folder)
    (folder / "renew.yml").write_text(RENEW_YML)
    manifest = folder / "panel.yaml"
    manifest.write_text(manifest.read_text().replace("id: cpanel", "id: odd")
                        .replace("admin_actions:\n", "admin_actions:\n  renew: {label: Renew}\n"))
    with pytest.raises(Exception, match="admin_actions.renew: a lifecycle action cannot also be an admin action"):
        panels.load_panel(folder)


def test_parse_until_takes_only_iso_dates():
    assert renew.parse_until("2030-01-31") == datetime.date(2030, 1, 31)
    with pytest.raises(ValidationError) as refused:
        renew.parse_until("02.03.2030")
    assert refused.value.field == "until" and "2030-03-02 (day first) or 2030-02-03 (month first)" in str(refused.value)
    with pytest.raises(ValidationError, match="write 2030-03-03"):
        renew.parse_until("03/03/2030")  # both readings are one day: still not an ISO date


def test_parallel_renewals_never_move_the_date_back(cpanel_setup, vault, registry):
    from tests.reliability.test_04_one_job_per_service import concurrently
    service = a_service(cpanel_setup, vault)
    dates = [NEXT_YEAR + datetime.timedelta(days=n) for n in (5, 1, 4, 2, 3, 0)]
    results = concurrently([lambda until=until: renew.renew("INV-1", until, TODAY, registry=registry, vault=vault,
                                                            actor="race") for until in dates])
    done = [r for r in results if isinstance(r, renew.Renewed)]
    assert all(isinstance(r, (renew.Renewed, ValidationError)) for r in results), results
    # Whatever the order, the service ends at the latest date and each renewal recorded moved it forward.
    assert Service.get_by_id(service.id).paid_until == max(dates)
    moves = [(e.detail["previous"], e.detail["paid_until"]) for e in renewals()]
    assert len(moves) == len(done) and all(before <= after for before, after in moves)
