"""What only cPanel (WHM API 1) shows, on its simulator, through real ansible-runner runs.

The lifecycle, refused credentials, a 5xx, a taken username and a lost create answer are the
conformance suite's (test_conformance.py, CpanelAdapter)."""

from __future__ import annotations

import json

import pytest

from provisiond import actions, catalog, cli, lifecycle
from provisiond.models import Job, Service
from tests.conftest import WHM_TOKEN
from tests.helpers import last_log, refused_order, settle


@pytest.mark.parametrize("case", ["duplicate_domain", "unknown_package"])
def test_panel_refusals_fail_once_with_the_panel_reason(case, cpanel_setup, registry, vault, whm,
                                                        worker, database):
    product = "starter"
    if case == "duplicate_domain":
        whm.op_createacct({"username": "other", "domain": "taken.example.com", "plan": "basic",
                           "password": "Yy2!another-long", "contactemail": "x@taken.example.com"})
        expected_task, expected = "Create the account (createacct)", "Sorry, the domain taken.example.com is already configured"
    else:
        catalog.add_product(registry, name="ghost", panel="cpanel", group_name="web", package="nosuch")
        product = "ghost"
        expected_task, expected = "Create the account (createacct)", "The package “nosuch” does not exist."
    service, job, log = refused_order(registry, vault, worker, product, expected_task)
    assert expected in log.message
    assert expected in (log.panel_answer or "")
    assert log.stdout_excerpt and "createacct" in log.stdout_excerpt
    assert WHM_TOKEN not in json.dumps([log.message, log.panel_answer, log.stdout_excerpt])


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
def test_an_800_kb_503_is_still_transient_on_the_first_attempt(cpanel_setup, registry, vault, whm, worker,
                                                                content_type):
    """A huge answer once emptied the task's event (ansible-runner's MAX_EVENT_RES): message and
    transient flag were lost and a 503 failed the job for good on attempt 1."""
    service, job = lifecycle.order(registry, vault, product="starter", domain="huge.example.com",
                                   email="me@huge.example.com")
    body = (json.dumps({"error": "maintenance", "pad": "x" * 800_000}) if content_type == "application/json"
            else "<html>" + "busy " * 160_000 + "</html>").encode()
    whm.fail_next(1, status=503, body=body, content_type=content_type)
    job = settle(worker, job)
    assert job.status == "queued" and job.attempts == 1, job.last_error
    assert "HTTP 503" in job.last_error and len(job.last_error) < 5000
    log = last_log(job)
    assert log.status == "retrying" and len(log.panel_answer or "") <= 5000


def test_a_large_answer_under_the_1_mib_bound_comes_back_whole(cpanel_setup, settings, vault, registry, whm):
    """About 900 kB of plans: over ansible-runner's default MAX_EVENT_RES, which emptied the
    task's result and the reported list with it."""
    server, _ = cpanel_setup
    whm.plans = {f"plan-{i:05d}-{'x' * 40}": {} for i in range(8_000)}
    assert 700_000 < len(whm.op_listpkgs({}).body) < 1024 * 1024  # the answer as WHM sends it
    answer = actions.run(settings, vault, registry, action="list_packages", server=server)
    assert sorted(answer["packages"]) == sorted(whm.plans)


def test_one_run_serves_a_batch_and_one_failure_spares_its_neighbours(cpanel_setup, registry, vault, whm, worker):
    whm.op_createacct({"username": "squat", "domain": "b3.example.com", "plan": "basic",
                       "password": "Zz3!squatter-long", "contactemail": "s@b3.example.com"})
    jobs = [lifecycle.order(registry, vault, product="starter", domain=f"b{i}.example.com",
                            email=f"o@b{i}.example.com")[1] for i in range(5)]
    started = worker.tick(wait=True)
    assert len(started) == 1  # one ansible-runner run for the five creates
    outcome = {Job.get_by_id(j.id).service.domain: Job.get_by_id(j.id).status for j in jobs}
    assert outcome.pop("b3.example.com") == "failed"
    assert set(outcome.values()) == {"succeeded"}
    assert {a.domain for a in whm.accounts.values()} >= {f"b{i}.example.com" for i in range(5)}
    paths = {last_log(j).artifacts_path for j in jobs}
    assert len(paths) == 1


def test_terminate_of_a_mismatched_account_deletes_nothing(cpanel_setup, registry, vault, whm, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="mine.example.com",
                                   email="me@mine.example.com")
    assert settle(worker, job).status == "succeeded"
    whm.accounts["mine"].domain = "someone-else.example.com"
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "needs_attention"
    assert "mine" in whm.accounts
    assert "someone-else.example.com" in job.last_error
    assert Service.get_by_id(service.id).status == "active"


def log_show(settings, capsys, job_id: int) -> str:
    assert cli.main(["--home", str(settings.home), "--database-url", settings.database_url,
                     "log", "show", str(job_id)]) == 0
    return capsys.readouterr().out


def test_each_job_of_a_batch_speaks_for_itself_in_its_log(cpanel_setup, registry, vault, whm, worker,
                                                          settings, capsys):
    whm.op_createacct({"username": "squat", "domain": "c1.example.com", "plan": "basic",
                       "password": "Zz3!squatter-long", "contactemail": "s@c1.example.com"})
    jobs = [lifecycle.order(registry, vault, product="starter", domain=f"c{i}.example.com",
                            email=f"o@c{i}.example.com")[1] for i in range(3)]
    assert len(worker.tick(wait=True)) == 1  # one run for the three creates; c1 fails in it
    logs = {Job.get_by_id(j.id).service.domain: last_log(j) for j in jobs}
    assert {d: (row.status, row.rc) for d, row in logs.items()} == {
        "c0.example.com": ("succeeded", 0), "c1.example.com": ("failed", 2), "c2.example.com": ("succeeded", 0)}
    for job in jobs:
        own, others = f"job_{job.id}", [f"job_{j.id}" for j in jobs if j.id != job.id]
        excerpt = last_log(job).stdout_excerpt
        assert own in excerpt and not any(other in excerpt for other in others), excerpt
    # The neighbour's failure (ansible-core prints its [ERROR] block among their lines) stays its own.
    assert "c1.example.com" in logs["c1.example.com"].stdout_excerpt
    assert "c1.example.com" not in logs["c0.example.com"].stdout_excerpt + logs["c2.example.com"].stdout_excerpt
    ok, failed = jobs[0].id, jobs[1].id
    out = log_show(settings, capsys, ok)
    assert "attempt 1: succeeded" in out and "rc 0," in out and "rc 2" not in out
    out = log_show(settings, capsys, failed)
    assert "attempt 1: failed" in out and "rc 2," in out and f"job_{ok}" not in out


def test_product_quota_zero_creates_an_unlimited_account_as_whm_means_it(cpanel_setup, registry,
                                                                         vault, whm, worker):
    catalog.add_product(registry, name="big", panel="cpanel", group_name="web", package="basic",
                        config={"quota": 0, "bwlimit": 0})
    catalog.add_product(registry, name="small", panel="cpanel", group_name="web", package="basic",
                        config={"quota": 2048, "bwlimit": 10240})
    for product, domain in (("big", "big.example.com"), ("small", "small.example.com")):
        service, job = lifecycle.order(registry, vault, product=product, domain=domain,
                                       email=f"owner@{domain}")
        assert settle(worker, job).status == "succeeded"
    assert (whm.accounts["big"].quota, whm.accounts["big"].bwlimit) == (0, 0)  # unlimited
    assert (whm.accounts["small"].quota, whm.accounts["small"].bwlimit) == (2048, 10240)
    labels = {f.name: f.label for f in registry.panels["cpanel"].package_fields}
    assert labels["quota"].startswith("Disk quota in MB (0 = unlimited")
    assert labels["bwlimit"].startswith("Bandwidth limit in MB (0 = unlimited")


def by_user(accounts: list[dict]) -> list[dict]:
    """list_accounts' answer in a fixed order, for an exact comparison."""
    return sorted(accounts, key=lambda a: (a["username"], a["domain"] or ""))


# -- cPanel: WHM listaccts --------------------------------------------------------------------
def test_cpanel_lists_every_whm_account_in_one_listaccts_call(cpanel_setup, registry, vault, whm, worker,
                                                              settings, capsys):
    for domain, ref in (("shop.example.com", "INV-1"), ("late.example.com", "INV-2")):
        _, job = lifecycle.order(registry, vault, product="starter", domain=domain,
                                 email=f"owner@{domain}", ref=ref)
        assert settle(worker, job).status == "succeeded"
    assert settle(worker, lifecycle.request(registry, vault, "INV-2", "suspend", reason="overdue")).status == "succeeded"
    # Made in WHM by hand: another plan, no contact address.
    whm.op_createacct({"username": "handmade", "domain": "hand.example.net", "plan": "pro",
                       "password": "Hh1!handmade-long"})
    whm.requests.clear()

    code = cli.main(["--home", str(settings.home), "--database-url", settings.database_url,
                     "--json", "server", "action", "whm1", "list_accounts"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert by_user(json.loads(out)["accounts"]) == [
        {"username": "handmade", "domain": "hand.example.net", "package": "pro", "suspended": False, "email": None},
        {"username": "late", "domain": "late.example.com", "package": "basic", "suspended": True,
         "email": "owner@late.example.com"},
        {"username": "shop", "domain": "shop.example.com", "package": "basic", "suspended": False,
         "email": "owner@shop.example.com"},
    ]
    assert [r.path for r in whm.requests] == ["/json-api/listaccts"]  # one call for the whole server
    assert WHM_TOKEN not in out + err
    passwords = [a.password for a in whm.accounts.values()]
    assert not any(p in out + err for p in passwords)


def test_cpanel_list_accounts_of_an_empty_server_is_an_empty_list(cpanel_setup, registry, vault, settings):
    server, _ = cpanel_setup
    assert actions.run(settings, vault, registry, action="list_accounts", server=server) == {"accounts": []}
