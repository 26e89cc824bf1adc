"""What only HestiaCP (/api/ v-* commands) shows, on its simulator, through real runs.

The simulator's key is of Hestia's billing permission preset only, as panel.yaml tells an
operator to make it: every playbook must pass with it. The lifecycle, refused credentials, a 5xx,
a taken username and a lost create answer are the conformance suite's (test_conformance.py,
HestiaAdapter).
"""

from __future__ import annotations

import pytest

from provisiond import catalog, lifecycle, worker as worker_module
from provisiond.models import Service
from tests.helpers import last_log, settle
from tests.integration.panels.adapters import ACCESS_KEY, hestia_commands as commands

pytestmark = pytest.mark.parametrize("adapter", ["hestia"], indirect=True)


@pytest.fixture
def hestia(adapter):
    return adapter.sim


def order(registry, vault, domain: str, ref: str | None = None, product: str = "starter"):
    return lifecycle.order(registry, vault, product=product, domain=domain,
                           email=f"owner@{domain}", ref=ref)


def test_idempotent_actions_and_repeat_codes_count_as_done(adapter, registry, vault, hestia,
                                                           worker, monkeypatch):
    service, job = order(registry, vault, "again.example.com", ref="INV-200")
    # The account exists already (a create whose answer was lost): the create confirms it.
    hestia.run("v-add-user", ["again", "Xx1!whatever", "owner@again.example.com", "basic",
                              "again.example.com"])
    hestia.run("v-add-domain", ["again", "again.example.com"])
    assert settle(worker, job).status == "succeeded"
    assert len(hestia.accounts) == 1 and "v-add-user" not in commands(hestia)

    # Already on the package: nothing is sent.
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "change_package", package="basic"))
    assert job.status == "succeeded", job.last_error
    assert "v-change-user-package" not in commands(hestia)

    # Suspended by someone else between our read and our v-suspend-user: code 5 counts as done.
    hestia.accounts["again"].suspended = True
    real_list_user, reads = hestia.cmd_list_user, []

    def stale_first_read(user, fmt="shell"):
        reads.append(user)
        listed = real_list_user(user, fmt)
        return listed.replace('"SUSPENDED": "yes"', '"SUSPENDED": "no"') if len(reads) == 1 else listed
    monkeypatch.setattr(hestia, "cmd_list_user", stale_first_read)
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "suspend", reason="abuse"))
    assert job.status == "succeeded", job.last_error
    assert "v-suspend-user" in commands(hestia) and len(reads) == 2
    assert hestia.run("v-suspend-user", ["again"])[0] == 5  # what the playbook was answered
    monkeypatch.undo()

    # Removed by someone else between our read and our v-delete-user: code 3 counts as done.
    real_list_user = hestia.cmd_list_user

    def then_gone(user, fmt="shell"):
        listed = real_list_user(user, fmt)
        hestia.accounts.pop(user, None)
        return listed
    monkeypatch.setattr(hestia, "cmd_list_user", then_gone)
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert "v-delete-user" in commands(hestia)
    assert Service.get_by_id(service.id).status == "terminated"


def test_create_finishes_a_user_left_without_its_domain(adapter, registry, vault, hestia, worker):
    service, job = order(registry, vault, "half.example.com")
    hestia.run("v-add-user", ["half", "Xx1!whatever", "owner@half.example.com", "basic",
                              "half.example.com"])
    assert settle(worker, job).status == "succeeded", job.last_error
    assert hestia.accounts["half"].domains == ["half.example.com"]
    assert hestia.accounts["half"].mail_domains == ["half.example.com"]
    assert commands(hestia).count("v-add-user") == 0


@pytest.mark.parametrize("case", ["duplicate_domain", "unknown_package"])
def test_create_refusals_fail_once_with_the_panel_reason(case, adapter, registry, vault, hestia,
                                                         worker, settings):
    product = "starter"
    if case == "duplicate_domain":
        hestia.run("v-add-user", ["other", "Yy2!another", "x@taken.example.com", "basic"])
        hestia.run("v-add-domain", ["other", "taken.example.com"])
        task, expected = ("Add the web, DNS and mail domain (v-add-domain)",
                          "HTTP 400: Error: Web domain taken.example.com exists\n"
                          "Error: can't add web domain")
    elif case == "unknown_package":
        catalog.add_product(registry, name="ghost", panel="hestia", group_name="web", package="nosuch")
        product = "ghost"
        task, expected = "Create the user (v-add-user)", "HTTP 400: Error: package nosuch doesn't exist"
    service, job = order(registry, vault, "taken.example.com", product=product)
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    assert log.status == "failed" and log.failed_task == task
    assert expected in log.message
    assert expected.split(": ", 1)[1] in log.panel_answer
    # Nothing half-made is left behind: a refused domain takes back the user this run made.
    assert set(hestia.accounts) <= {"other", "taken"}
    adapter.assert_kept_clean(log, vault.decrypt(Service.get_by_id(service.id).password))


def test_refusals_on_an_existing_account_quote_the_panel(adapter, registry, vault, hestia, worker):
    service, job = order(registry, vault, "full.example.com")
    assert settle(worker, job).status == "succeeded"
    hestia.accounts["full"].disk_used = 50
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "change_package", package="tiny"))
    assert job.status == "failed" and job.attempts == 1
    log = last_log(job)
    assert log.failed_task == "Change the package (v-change-user-package)"
    assert log.message == "HTTP 400: Error: Package doesn't cover DISK usage"
    assert hestia.accounts["full"].package == "basic"

    assert settle(worker, lifecycle.request(registry, vault, service.ref, "suspend")).status == "succeeded"
    old_password = hestia.accounts["full"].password
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "change_password"))
    assert job.status == "failed" and job.attempts == 1
    log = last_log(job)
    assert log.failed_task == "Set the password (v-change-user-password)"
    assert log.message == "HTTP 401: Error: user full is suspended"
    assert hestia.accounts["full"].password == old_password
    assert vault.decrypt(Service.get_by_id(service.id).password) == old_password
    adapter.assert_kept_clean(log, old_password)


def test_terminate_of_a_mismatched_account_deletes_nothing(adapter, registry, vault, hestia, worker):
    service, job = order(registry, vault, "mine.example.com")
    assert settle(worker, job).status == "succeeded"
    hestia.accounts["mine"].name = "someone-else.example.com"
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "needs_attention"
    assert "mine" in hestia.accounts
    assert "someone-else.example.com" in job.last_error
    assert last_log(job).failed_task == "Refuse to remove a user that does not match"
    assert Service.get_by_id(service.id).status == "active"


def test_a_key_without_the_billing_preset_is_refused_as_hestia_refuses(adapter, registry, vault,
                                                                      hestia, worker, settings,
                                                                      monkeypatch):
    monkeypatch.setattr(hestia, "permissions", "purge-nginx-cache")
    refusal = f"HTTP 401: Error: Key {ACCESS_KEY} don't have permission to run the command "
    service, job = order(registry, vault, "denied.example.com")
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1  # a refused key is not retried
    log = last_log(job)
    assert log.failed_task == "Look the user up (v-list-user)"
    assert log.message == refusal + "v-list-user"
    assert hestia.accounts == {}

    report = worker_module.test_server(settings, vault, registry, catalog.server("hst1"))
    assert report["health"] == "failed" and refusal + "v-list-users" in report["message"]
