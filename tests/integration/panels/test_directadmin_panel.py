"""What only DirectAdmin (legacy CMD_API) shows, on its simulator, through real runs.

The lifecycle, refused credentials, a 5xx, a taken username and a lost create answer are the
conformance suite's (test_conformance.py, DirectAdminAdapter)."""

from __future__ import annotations

import pytest

from provisiond import catalog, lifecycle
from provisiond.models import Service
from tests.helpers import last_log, refused_order, settle

pytestmark = pytest.mark.parametrize("adapter", ["directadmin"], indirect=True)


@pytest.fixture
def da(adapter):
    return adapter.sim


@pytest.mark.parametrize("case", ["duplicate_domain", "unknown_package"])
def test_create_refusals_fail_once_with_the_panel_reason(case, adapter, registry, vault, da,
                                                         worker, settings):
    product = "starter"
    if case == "duplicate_domain":
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
    service, job, log = refused_order(registry, vault, worker, product, task)
    assert expected in log.message and expected.split(": ")[1] in log.panel_answer
    assert set(da.accounts) <= {"other"}
    adapter.assert_kept_clean(log, vault.decrypt(Service.get_by_id(service.id).password))


def test_actions_on_an_account_gone_from_the_panel_fail_with_its_reason(adapter, registry, vault,
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


def test_terminate_of_a_mismatched_account_deletes_nothing(adapter, registry, vault, da, worker):
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


def test_the_server_username_length_is_honoured(adapter, registry, vault, da, worker, monkeypatch):
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
def test_terminate_tells_another_resellers_user_from_an_absent_one(level, words, adapter, registry,
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
