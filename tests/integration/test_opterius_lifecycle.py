"""A service's whole life on the Opterius simulator (provisioning API v1, Bearer key), through
real ansible-runner runs, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisiond import actions, catalog, lifecycle, worker as worker_module
from provisiond.errors import ValidationError
from provisiond.models import Job, ProvisioningLog, Server, Service
from provisiond.sandbox.base import Response
from provisiond.sandbox.opterius import OpteriusSimulator
from tests.helpers import kept_texts, last_log, settle

KEY = "opt_canaryOpteriusKey" + "x" * 27


def assert_no_secret(row: ProvisioningLog, *secrets: str) -> None:
    for text in kept_texts(row):
        assert not any(secret in text for secret in secrets)


@pytest.fixture
def opterius():
    with OpteriusSimulator(api_key=KEY, packages=("basic", "pro")) as simulator:
        yield simulator


@pytest.fixture
def opterius_setup(database, registry, vault, opterius):
    """Group 'web', server 'opt1' on the simulator, product 'starter' (package basic)."""
    catalog.add_group("web")
    server = catalog.add_server(registry, vault, name="opt1", panel="opterius", host=opterius.host,
                                port=opterius.port, group_name="web", max_accounts=50,
                                credentials={"api_key": KEY, "scheme": "http"})
    product = catalog.add_product(registry, name="starter", panel="opterius", group_name="web",
                                  package="basic")
    return server, product


def order(registry, vault, domain: str, ref: str | None = None):
    return lifecycle.order(registry, vault, product="starter", domain=domain, email=f"owner@{domain}",
                           ref=ref)


def paths(sim: OpteriusSimulator) -> list[str]:
    return [r.path for r in sim.requests]


def test_account_lifecycle_end_to_end(opterius_setup, registry, vault, opterius, worker, settings):
    service, job = order(registry, vault, "shop.example.com", ref="INV-100")
    job = settle(worker, job)
    service = Service.get_by_id(service.id)
    assert job.status == "succeeded", job.last_error
    account = opterius.accounts["shop"]
    assert service.status == "active" and service.remote_id == str(account.id)
    assert (account.domain, account.package, account.owner_email) == ("shop.example.com", "basic",
                                                                       "owner@shop.example.com")
    first_password = vault.decrypt(service.password)
    user = opterius.users["owner@shop.example.com"]
    assert (user.name, user.password) == ("owner", first_password)  # client_name: the email's local part

    steps = [("suspend", {"reason": "overdue"}, "suspended", lambda a: a.suspended and a.suspend_reason == "overdue"),
             ("unsuspend", {}, "active", lambda a: not a.suspended),
             ("change_package", {"package": "pro"}, "active", lambda a: a.package == "pro"),
             ("change_password", {}, "active", lambda a: a.system_password not in (None, first_password))]
    for action, kwargs, status, on_panel in steps:
        job = settle(worker, lifecycle.request(registry, vault, "INV-100", action, **kwargs))
        service = Service.get_by_id(service.id)
        assert job.status == "succeeded", (action, job.last_error)
        assert service.status == status and on_panel(opterius.accounts["shop"]), action
    new_password = vault.decrypt(service.password)
    assert service.package == "pro" and opterius.accounts["shop"].system_password == new_password

    job = settle(worker, lifecycle.request(registry, vault, "INV-100", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated" and opterius.accounts == {}

    server = Server.get(Server.name == "opt1")
    report = worker_module.test_server(settings, vault, registry, server)
    assert report["health"] == "ok" and report["reported"] == {"version": "2.8.14"}, report
    listed = actions.run(settings, vault, registry, action="list_packages", server=server)
    assert listed == {"packages": ["basic", "pro"]}

    # Every call carried the key as a Bearer header and asked for JSON; none was HMAC-signed.
    assert {r.headers.get("authorization") for r in opterius.requests} == {f"Bearer {KEY}"}
    assert {r.headers.get("accept") for r in opterius.requests} == {"application/json"}
    assert not any("x-signature" in r.headers for r in opterius.requests)
    logs = list(ProvisioningLog.select())
    assert len(logs) == 6 and all(row.status == "succeeded" for row in logs)
    for row in logs:
        assert (Path(row.artifacts_path) / "stdout.txt").exists()
        assert_no_secret(row, KEY, first_password, new_password)


def test_repeats_are_idempotent_when_the_panel_already_agrees(opterius_setup, registry, vault, opterius, worker):
    service, job = order(registry, vault, "again.example.com", ref="INV-200")
    opterius.add_account(service.username, "again.example.com")  # its create answer was lost
    assert settle(worker, job).status == "succeeded", job.last_error
    assert "/api/v1/accounts/create" not in paths(opterius) and len(opterius.accounts) == 1

    # Suspended, then unsuspended, behind our back: the panel answers "already ..." with 200.
    opterius.accounts[service.username].suspended = True
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "suspend", reason="abuse"))
    assert job.status == "succeeded", job.last_error
    opterius.accounts[service.username].suspended = False
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "unsuspend"))
    assert job.status == "succeeded", job.last_error
    # Both calls were sent and their 200 "Account is already ..." counted as done.
    assert [p for p in paths(opterius) if p.endswith("suspend")] == ["/api/v1/accounts/suspend",
                                                                     "/api/v1/accounts/unsuspend"]

    del opterius.accounts[service.username]  # removed behind our back: terminate is already done
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
    assert "/api/v1/accounts/terminate" not in paths(opterius)


@pytest.mark.parametrize("case", ["bad_key", "domain_taken", "username_taken", "unknown_package"])
def test_create_refusals_fail_once_with_the_panel_answer(case, opterius_setup, registry, vault, opterius,
                                                         worker, settings):
    product, wrong = "starter", "opt_wrong-key-that-was-revoked"
    if case == "bad_key":
        catalog.update_server_credentials(registry, vault, catalog.server("opt1"), {"api_key": wrong})
        expected, task = "HTTP 401: Invalid API key.", "Look the account up (POST /api/v1/accounts/usage)"
    elif case == "domain_taken":
        opterius.add_account("other", "taken.example.com")
        expected, task = "HTTP 409: Domain 'taken.example.com' already exists.", "Create the account (POST /api/v1/accounts/create)"
    elif case == "username_taken":
        opterius.add_account("taken", "elsewhere.example.com")
        expected = "the account taken exists on the panel for elsewhere.example.com, not taken.example.com"
        task = "Refuse an existing account of another domain"
    else:
        catalog.add_product(registry, name="ghost", panel="opterius", group_name="web", package="gold")
        product = "ghost"
        expected = "HTTP 404: Package 'gold' not found. Available: basic, pro"
        task = "Create the account (POST /api/v1/accounts/create)"
    service, job = lifecycle.order(registry, vault, product=product, domain="taken.example.com",
                                   email="me@taken.example.com")
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    assert (log.status, log.failed_task, log.message) == ("failed", task, expected)
    assert case == "username_taken" or expected.split(": ", 1)[1] in log.panel_answer
    assert_no_secret(log, KEY, wrong, vault.decrypt(service.password))
    left = {"domain_taken": ["other"], "username_taken": ["taken"]}.get(case, [])
    assert [a.username for a in opterius.accounts.values()] == left
    assert "/api/v1/accounts/create" not in paths(opterius) or case in ("domain_taken", "unknown_package")
    if case == "bad_key":
        report = worker_module.test_server(settings, vault, registry, Server.get(Server.name == "opt1"))
        assert report["health"] == "failed" and report["message"] == expected


def test_a_5xx_is_transient_and_retried(opterius_setup, registry, vault, opterius, worker):
    service, job = order(registry, vault, "flaky.example.com", ref="INV-300")
    assert settle(worker, job).status == "succeeded"
    opterius.agent_error = "Could not connect to server agent"
    job = settle(worker, lifecycle.request(registry, vault, "INV-300", "suspend"))
    assert job.status == "queued" and job.attempts == 1 and job.run_after > job.updated_at
    assert job.last_error == "HTTP 500: Failed to suspend: Could not connect to server agent"
    assert last_log(job).status == "retrying"
    assert not opterius.accounts["flaky"].suspended
    assert_no_secret(last_log(job), KEY)


def test_a_warning_stops_for_a_human_with_the_panel_message(opterius_setup, registry, vault, opterius, worker):
    service, job = order(registry, vault, "half.example.com")
    opterius.agent_error = "Could not connect to server agent"
    job = settle(worker, job)
    assert job.status == "needs_attention" and job.attempts == 1
    log = last_log(job)
    assert log.status == "needs_attention"
    assert "Account saved but server setup failed: Could not connect to server agent" in log.message
    assert f"account {opterius.accounts['half'].id} (half)" in log.message
    assert Service.get_by_id(service.id).status == "pending"
    assert_no_secret(log, KEY, vault.decrypt(service.password))

    # Fixed on the panel, the retried job finds the account and does not create it twice.
    opterius.agent_error = None
    lifecycle.retry_job(job.id, 1)
    assert settle(worker, Job.get_by_id(job.id)).status == "succeeded"
    assert paths(opterius).count("/api/v1/accounts/create") == 1
    assert Service.get_by_id(service.id).status == "active"


def test_a_create_whose_answer_was_lost_is_confirmed_by_a_read(opterius_setup, registry, vault, opterius,
                                                              worker, monkeypatch):
    real_handle = opterius.handle

    def lose_the_create_answer(request):
        answered = real_handle(request)
        return Response(502, b"Bad Gateway", "text/html") if request.path.endswith("/create") else answered
    monkeypatch.setattr(opterius, "handle", lose_the_create_answer)
    service, job = order(registry, vault, "lost.example.com")
    job = settle(worker, job)
    assert job.status == "succeeded" and job.attempts == 1, job.last_error
    assert list(opterius.accounts) == ["lost"] and paths(opterius).count("/api/v1/accounts/create") == 1
    # The panel's id was in the lost answer; the API addresses accounts by username, kept instead.
    assert Service.get_by_id(service.id).remote_id == "lost"


def test_terminate_of_an_account_that_is_not_the_services_removes_nothing(opterius_setup, registry, vault,
                                                                         opterius, worker):
    service, job = order(registry, vault, "mine.example.com")
    assert settle(worker, job).status == "succeeded"
    opterius.accounts["mine"].domain = "someone-else.example.com"
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "needs_attention"
    assert "mine" in opterius.accounts and "someone-else.example.com" in job.last_error
    assert "/api/v1/accounts/terminate" not in paths(opterius)
    assert Service.get_by_id(service.id).status == "active"


def test_the_panel_offers_no_account_list(opterius_setup, registry, vault, settings, opterius):
    """Opterius's API has no route that lists accounts (routes/api.php): list_accounts is not
    declared, and asking for it is refused before anything is sent."""
    server, _ = opterius_setup
    with pytest.raises(ValidationError) as refused:
        actions.run(settings, vault, registry, action="list_accounts", server=server)
    assert refused.value.field == "action"
    assert str(refused.value) == ("action: panel opterius has no action 'list_accounts' "
                                  "(it declares: list_packages)")
    assert opterius.requests == []
