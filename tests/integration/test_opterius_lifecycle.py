"""A service's whole life on the Opterius simulator (HMAC-signed REST), through real runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisiond import catalog, lifecycle, worker as worker_module
from provisiond.errors import PanelError
from provisiond.models import ProvisioningLog, Server, Service
from provisiond.sandbox.base import Response
from provisiond.sandbox.opterius import Account, OpteriusSimulator
from tests.helpers import kept_texts, last_log, settle

TOKEN = "canary-opterius-token-3Vb7Kd"


def assert_no_secret(row: ProvisioningLog, *secrets: str) -> None:
    texts = kept_texts(row)
    for text in texts:
        assert not any(secret in text for secret in secrets)


@pytest.fixture
def opterius():
    with OpteriusSimulator(api_token=TOKEN, packages=("basic", "pro")) as simulator:
        yield simulator


@pytest.fixture
def opterius_setup(database, registry, vault, opterius):
    """Group 'web', server 'opt1' on the simulator, product 'starter' (package basic)."""
    catalog.add_group("web")
    server = catalog.add_server(registry, vault, name="opt1", panel="opterius", host=opterius.host,
                                port=opterius.port, group_name="web", max_accounts=50,
                                credentials={"api_token": TOKEN, "scheme": "http"})
    product = catalog.add_product(registry, name="starter", panel="opterius", group_name="web",
                                  package="basic", config={"disk_limit_mb": 2048,
                                                           "bandwidth_limit_mb": 20480})
    return server, product


def squat(sim: OpteriusSimulator, username: str, domain: str) -> Account:
    """An account put on the panel behind provisiond's back."""
    account = Account(sim._next_id, username, domain, "basic", f"x@{domain}", "Zz3!squatter-long", 0, 0)
    sim._next_id += 1
    sim.accounts[username] = account
    return account


def test_account_lifecycle_end_to_end(opterius_setup, registry, vault, opterius, worker, settings):
    service, job = lifecycle.order(registry, vault, product="starter", domain="shop.example.com",
                                   email="owner@shop.example.com", ref="INV-100")
    job = settle(worker, job)
    service = Service.get_by_id(service.id)
    assert job.status == "succeeded", job.last_error
    account = opterius.accounts["shop"]
    assert service.status == "active" and service.remote_id == str(account.id)
    assert (account.domain, account.package, account.email) == ("shop.example.com", "basic", "owner@shop.example.com")
    assert (account.disk_limit_mb, account.bandwidth_limit_mb) == (2048, 20480)
    password = vault.decrypt(service.password)
    assert account.password == password

    for action, kwargs, status, on_panel in [
            ("suspend", {"reason": "overdue"}, "suspended", "suspended"),
            ("unsuspend", {}, "active", "active")]:
        job = settle(worker, lifecycle.request(registry, vault, "INV-100", action, **kwargs))
        assert job.status == "succeeded", (action, job.last_error)
        assert Service.get_by_id(service.id).status == status
        assert opterius.accounts["shop"].status == on_panel, action

    # The API cannot change a package or a password: the panel does not offer those actions.
    for action, kwargs in (("change_package", {"package": "pro"}), ("change_password", {})):
        with pytest.raises(PanelError, match="does not support"):
            lifecycle.request(registry, vault, "INV-100", action, **kwargs)

    job = settle(worker, lifecycle.request(registry, vault, "INV-100", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
    assert opterius.accounts == {}

    report = worker_module.test_server(settings, vault, registry, Server.get(Server.name == "opt1"))
    assert report["health"] == "ok", report
    assert report["reported"] == {"version": "1.0.0"}

    # Every call was signed (the simulator answers 401 otherwise) and nothing kept a secret.
    assert opterius.requests and all("x-signature" in r.headers for r in opterius.requests)
    logs = list(ProvisioningLog.select())
    assert len(logs) == 4 and all(row.status == "succeeded" for row in logs)
    for row in logs:
        assert (Path(row.artifacts_path) / "stdout.txt").exists()
        assert_no_secret(row, TOKEN, password)


def test_idempotent_actions_when_the_panel_already_agrees(opterius_setup, registry, vault, opterius, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="again.example.com",
                                   email="a@again.example.com", ref="INV-200")
    # An admin recorded the id of the account that is already there: the create confirms it.
    existing = squat(opterius, service.username, "again.example.com")
    Service.update(remote_id=str(existing.id)).where(Service.id == service.id).execute()
    assert settle(worker, job).status == "succeeded"
    assert len(opterius.accounts) == 1 and Service.get_by_id(service.id).remote_id == str(existing.id)
    assert not any(r.method == "POST" for r in opterius.requests)

    existing.status = "suspended"  # suspended behind our back: read first, nothing to do
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "suspend", reason="abuse"))
    assert job.status == "succeeded", job.last_error
    assert not any(r.path.endswith("/suspend") for r in opterius.requests)

    del opterius.accounts[service.username]  # removed behind our back: terminate is already done
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
    assert not any(r.method == "DELETE" for r in opterius.requests)


def test_create_whose_request_never_landed_is_repeated_at_once(opterius_setup, registry, vault,
                                                               opterius, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="flaky.example.com",
                                   email="me@flaky.example.com")
    opterius.fail_next(1, status=503)
    job = settle(worker, job)
    assert job.status == "succeeded" and job.attempts == 1, job.last_error
    assert [r.method for r in opterius.requests] == ["POST", "POST"]
    assert Service.get_by_id(service.id).remote_id == str(opterius.accounts["flaky"].id)


def test_create_whose_answer_was_lost_stops_for_a_human(opterius_setup, registry, vault, opterius,
                                                        worker, monkeypatch):
    service, job = lifecycle.order(registry, vault, product="starter", domain="lost.example.com",
                                   email="me@lost.example.com")
    handled = opterius.op_create

    def create_then_lose_the_answer(request):
        handled(request)
        monkeypatch.setattr(opterius, "op_create", handled)
        return Response(502, b"Bad Gateway", "text/plain")

    monkeypatch.setattr(opterius, "op_create", create_then_lose_the_answer)
    job = settle(worker, job)
    assert job.status == "needs_attention" and job.attempts == 1
    assert list(opterius.accounts) == ["lost"]  # created once, never twice
    service = Service.get_by_id(service.id)
    assert service.status == "pending" and service.remote_id is None
    log = last_log(job)
    assert log.status == "needs_attention"
    assert log.failed_task == "Refuse to guess the id of an account created without an answer"
    assert "HTTP 502" in log.message
    assert "Username or domain is already in use on this server." in log.message
    assert_no_secret(log, TOKEN, vault.decrypt(service.password))


@pytest.mark.parametrize("case", ["duplicate_domain", "bad_token", "unknown_package"])
def test_panel_refusals_fail_once_with_the_panel_message(case, opterius_setup, registry, vault,
                                                         opterius, worker):
    product = "starter"
    if case == "duplicate_domain":
        squat(opterius, "other", "taken.example.com")
        expected = "HTTP 409: Username or domain is already in use on this server."
    elif case == "bad_token":
        server = catalog.server("opt1")
        catalog.update_server_credentials(registry, vault, server, {"api_token": "wrong-token-123"})
        expected = "HTTP 401: Invalid signature."
    else:
        catalog.add_product(registry, name="ghost", panel="opterius", group_name="web", package="nosuch")
        product = "ghost"
        expected = "HTTP 422: Package not found."
    service, job = lifecycle.order(registry, vault, product=product, domain="taken.example.com",
                                   email="me@taken.example.com")
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    assert log.status == "failed" and log.failed_task == "Create the account (POST /api/accounts)"
    assert log.message == expected
    assert expected.split(": ", 1)[1] in log.panel_answer
    assert_no_secret(log, TOKEN, "wrong-token-123", vault.decrypt(service.password))
    assert len(opterius.accounts) == (1 if case == "duplicate_domain" else 0)


def test_accounts_that_are_not_the_services_are_left_alone(opterius_setup, registry, vault, opterius, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="mine.example.com",
                                   email="me@mine.example.com")
    assert settle(worker, job).status == "succeeded"
    opterius.accounts["mine"].domain = "someone-else.example.com"
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "needs_attention"
    assert "mine" in opterius.accounts
    assert "someone-else.example.com" in job.last_error
    assert Service.get_by_id(service.id).status == "active"

    del opterius.accounts["mine"]  # gone from the panel: a suspend cannot find it
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "suspend"))
    assert job.status == "failed" and job.attempts == 1
    log = last_log(job)
    assert log.failed_task == "Read the account (GET /api/accounts/{id})"
    assert log.message == "HTTP 404: No account with that ID exists."
    assert_no_secret(log, TOKEN)
