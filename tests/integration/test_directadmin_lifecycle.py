"""A service's whole life on the DirectAdmin simulator (legacy CMD_API), through real runs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from provisiond import catalog, lifecycle, worker as worker_module
from provisiond.models import ProvisioningLog, Server, Service
from provisiond.sandbox.base import Response
from provisiond.sandbox.directadmin import DirectAdminSimulator
from tests.helpers import kept_texts, last_log, settle

DA_PASSWORD = "canary-da-password-4Hq8Wm"
DA_BASIC = base64.b64encode(f"admin:{DA_PASSWORD}".encode()).decode()


def assert_no_secret(row: ProvisioningLog, *secrets: str) -> None:
    texts = kept_texts(row)
    for text in texts:
        for secret in (DA_PASSWORD, DA_BASIC, *secrets):
            assert secret not in text, row.action


@pytest.fixture
def da():
    with DirectAdminSimulator(password=DA_PASSWORD) as simulator:
        yield simulator


@pytest.fixture
def da_setup(database, registry, vault, da):
    """Group 'web', server 'da1' on the simulator, product 'starter' (package basic)."""
    catalog.add_group("web")
    server = catalog.add_server(registry, vault, name="da1", panel="directadmin", host=da.host,
                                port=da.port, group_name="web", max_accounts=50,
                                credentials={"password": DA_PASSWORD, "scheme": "http"})
    product = catalog.add_product(registry, name="starter", panel="directadmin", group_name="web",
                                  package="basic")
    return server, product


def test_account_lifecycle_end_to_end(da_setup, registry, vault, da, worker, settings):
    report = worker_module.test_server(settings, vault, registry, Server.get(Server.name == "da1"))
    assert report["health"] == "ok", report
    assert report["reported"] == {"login": "Login OK"}

    service, job = lifecycle.order(registry, vault, product="starter", domain="shop.example.com",
                                   email="owner@shop.example.com", ref="INV-100")
    assert service.username == "shop" and job.action == "create"
    job = settle(worker, job)
    service = Service.get_by_id(service.id)
    assert job.status == "succeeded", job.last_error
    assert service.status == "active" and service.remote_id == "shop"
    account = da.accounts["shop"]
    assert (account.domain, account.package, account.email, account.ip) == (
        "shop.example.com", "basic", "owner@shop.example.com", "127.0.0.1")
    first_password = account.password
    assert first_password == vault.decrypt(service.password)

    steps = [("suspend", {"reason": "overdue"}, "suspended",
              lambda a: a.suspended and a.suspend_reason == "billing"),
             ("unsuspend", {}, "active", lambda a: not a.suspended and not a.suspend_reason),
             ("suspend", {"reason": "abuse"}, "suspended",
              lambda a: a.suspended and a.suspend_reason == "other"),
             ("change_package", {"package": "pro"}, "suspended", lambda a: a.package == "pro"),
             ("change_password", {}, "suspended", lambda a: a.password != first_password)]
    for action, kwargs, status, on_panel in steps:
        job = settle(worker, lifecycle.request(registry, vault, "INV-100", action, **kwargs))
        service = Service.get_by_id(service.id)
        assert job.status == "succeeded", (action, job.last_error)
        assert service.status == status, action
        assert on_panel(da.accounts["shop"]), action
    assert service.package == "pro"
    assert vault.decrypt(service.password) == da.accounts["shop"].password

    job = settle(worker, lifecycle.request(registry, vault, "INV-100", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
    assert "shop" not in da.accounts

    # Every attempt left a log row and kept artifacts that never contain a secret.
    logs = list(ProvisioningLog.select())
    assert len(logs) == 7 and all(row.status == "succeeded" for row in logs)
    for row in logs:
        assert (Path(row.artifacts_path) / "stdout.txt").exists()
        assert_no_secret(row, first_password, account.password)


def test_idempotent_actions_when_the_panel_already_agrees(da_setup, registry, vault, da, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="again.example.com",
                                   email="a@again.example.com", ref="INV-200")
    # The account exists already (a create whose answer was lost): the create confirms it.
    da.op_account_user({"action": "create", "add": "Submit", "username": "again",
                        "email": "a@again.example.com", "passwd": "Xx1!whatever", "passwd2": "Xx1!whatever",
                        "domain": "again.example.com", "package": "basic", "ip": "shared"})
    assert settle(worker, job).status == "succeeded"
    assert len(da.accounts) == 1 and Service.get_by_id(service.id).remote_id == "again"

    # Suspended behind our back: DirectAdmin would refuse a second suspend; nothing is sent.
    da.accounts["again"].suspended = True
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "suspend", reason="abuse"))
    assert job.status == "succeeded", job.last_error
    # Already on the package: nothing to change.
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "change_package", package="basic"))
    assert job.status == "succeeded", job.last_error
    mutations = [r for r in da.requests if r.path in ("/CMD_API_SELECT_USERS", "/CMD_API_MODIFY_USER")]
    assert mutations == []

    del da.accounts["again"]  # removed behind our back: terminate is already done
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"


def test_a_create_whose_answer_was_lost_is_confirmed_by_a_read(da_setup, registry, vault, da, worker,
                                                              monkeypatch):
    real_handle = da.handle

    def lose_the_create_answer(request):
        answered = real_handle(request)
        if request.path == "/CMD_API_ACCOUNT_USER":
            return Response(503, b"Service Unavailable", "text/plain")
        return answered
    monkeypatch.setattr(da, "handle", lose_the_create_answer)
    service, job = lifecycle.order(registry, vault, product="starter", domain="lost.example.com",
                                   email="me@lost.example.com")
    job = settle(worker, job)
    assert job.status == "succeeded" and job.attempts == 1, job.last_error
    assert da.accounts["lost"].domain == "lost.example.com"
    assert Service.get_by_id(service.id).status == "active"


@pytest.mark.parametrize("case", ["bad_password", "duplicate_domain", "unknown_package"])
def test_create_refusals_fail_once_with_the_panel_reason(case, da_setup, registry, vault, da,
                                                         worker, settings):
    product = "starter"
    if case == "bad_password":
        catalog.update_server_credentials(registry, vault, catalog.server("da1"),
                                          {"password": "wrong-password-123"})
        task, expected = "List the accounts (CMD_API_SHOW_USERS)", "DirectAdmin Login"
    elif case == "duplicate_domain":
        da.op_account_user({"action": "create", "add": "Submit", "username": "other",
                            "email": "x@taken.example.com", "passwd": "Yy2!another", "passwd2": "Yy2!another",
                            "domain": "taken.example.com", "package": "basic", "ip": "shared"})
        task, expected = ("Create the account (CMD_API_ACCOUNT_USER)",
                          "Unable to Create User: The domain taken.example.com already exists")
    else:
        catalog.add_product(registry, name="ghost", panel="directadmin", group_name="web", package="nosuch")
        product = "ghost"
        task, expected = ("Create the account (CMD_API_ACCOUNT_USER)",
                          "Unable to Create User: The package nosuch does not exist")
    service, job = lifecycle.order(registry, vault, product=product, domain="taken.example.com",
                                   email="me@taken.example.com")
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    assert log.status == "failed" and log.failed_task == task
    if case == "bad_password":
        assert "refused the login" in log.message and expected in log.panel_answer
        report = worker_module.test_server(settings, vault, registry, catalog.server("da1"))
        assert report["health"] == "failed" and "refused the login" in report["message"]
        assert report["failed_task"] == "Log in (CMD_API_LOGIN_TEST)"
    else:
        assert expected in log.message and expected.split(": ")[1] in log.panel_answer
    assert set(da.accounts) <= {"other"}
    assert_no_secret(log, vault.decrypt(Service.get_by_id(service.id).password))


def test_actions_on_an_account_gone_from_the_panel_fail_with_its_reason(da_setup, registry, vault,
                                                                        da, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="gone.example.com",
                                   email="me@gone.example.com")
    assert settle(worker, job).status == "succeeded"
    del da.accounts["gone"]
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "suspend", reason="overdue"))
    assert job.status == "failed" and job.attempts == 1
    log = last_log(job)
    assert log.failed_task == "Read the account (CMD_API_SHOW_USER_CONFIG)"
    assert log.message == "Unable to show user: User gone does not exist"
    assert Service.get_by_id(service.id).status == "active"


def test_terminate_of_a_mismatched_account_deletes_nothing(da_setup, registry, vault, da, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="mine.example.com",
                                   email="me@mine.example.com")
    assert settle(worker, job).status == "succeeded"
    da.accounts["mine"].domain = "someone-else.example.com"
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "needs_attention"
    assert "mine" in da.accounts
    assert "someone-else.example.com" in job.last_error
    assert last_log(job).failed_task == "Refuse to remove an account that does not match"
    assert Service.get_by_id(service.id).status == "active"


def test_the_server_username_length_is_honoured(da_setup, registry, vault, da, worker, monkeypatch):
    monkeypatch.setattr(da, "max_username_length", 6)
    catalog.update_server_credentials(registry, vault, catalog.server("da1"), {"username_max_length": 6})
    service, job = lifecycle.order(registry, vault, product="starter", domain="longershop.example.com",
                                   email="me@longershop.example.com")
    assert service.username == "longer"
    assert settle(worker, job).status == "succeeded", job.last_error
    assert da.accounts["longer"].domain == "longershop.example.com"


@pytest.mark.parametrize("level, words", [
    ("admin", "not removed: theirs on the panel was created by reseller2, not by admin"),
    ("reseller", "not removed: the panel does not show theirs to admin "
                 "(Unable to show user: You do not own that user)")])
def test_terminate_tells_another_resellers_user_from_an_absent_one(level, words, da_setup, registry,
                                                                 vault, da, worker, monkeypatch):
    service, job = lifecycle.order(registry, vault, product="starter", domain="theirs.example.com",
                                   email="me@theirs.example.com")
    assert settle(worker, job).status == "succeeded"
    monkeypatch.setattr(da, "level", level)
    # The user now belongs to another reseller: this login's CMD_API_SHOW_USERS no longer lists it.
    da.accounts["theirs"].creator = "reseller2"
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "needs_attention", job.last_error
    assert words in job.last_error
    assert "theirs" in da.accounts and Service.get_by_id(service.id).status == "active"
    assert not [r for r in da.requests if r.path == "/CMD_API_SELECT_USERS"]

    # Really gone: the same terminate is a success, for a reseller login too.
    del da.accounts["theirs"]
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
