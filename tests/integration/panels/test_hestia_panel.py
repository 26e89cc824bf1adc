"""What only HestiaCP (/api/ v-* commands) shows, on its simulator, through real runs.

The simulator's key is of Hestia's billing permission preset only, as panel.yaml tells an
operator to make it: every playbook must pass with it. The lifecycle, refused credentials, a 5xx,
a taken username and a lost create answer are the conformance suite's (test_conformance.py,
HestiaAdapter).
"""

from __future__ import annotations

import dataclasses
import urllib.parse

import pytest

from provisiond import actions, catalog, lifecycle, queue, worker as worker_module
from provisiond.models import ProvisioningLog, Service, utcnow
from provisiond.sandbox.base import Request
from tests.helpers import last_log, settle
from tests.integration.panels.adapters import ACCESS_KEY, HESTIA_SECRET, hestia_commands as commands

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
    assert last_log(job).failed_task == "Refuse a user that does not match"
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


CHANGES = {"suspend": ({"reason": "overdue"}, "not suspended", lambda a: a.suspended),
           "unsuspend": ({}, "not unsuspended", lambda a: not a.suspended),
           "change_package": ({"package": "pro"}, "package not changed", lambda a: a.package == "pro"),
           "change_password": ({}, "password not changed", None)}


def _ready_for(action: str, service, registry, vault, hestia, worker) -> None:
    """The service's user as the action expects to find it (suspended before an unsuspend)."""
    if action == "unsuspend":
        job = settle(worker, lifecycle.request(registry, vault, service.ref, "suspend"))
        assert job.status == "succeeded", job.last_error
        assert hestia.accounts["mine"].suspended


@pytest.mark.parametrize("action", [*CHANGES, "terminate"])
def test_another_customers_user_of_that_name_is_left_alone(action, adapter, registry, vault, hestia, worker):
    """A user named like the service's but with another NAME/CONTACT is someone else's: every
    action stops for a human with the reason, and the panel is left exactly as it was."""
    service, job = order(registry, vault, "mine.example.com")
    assert settle(worker, job).status == "succeeded", job.last_error
    _ready_for(action, service, registry, vault, hestia, worker)
    status = Service.get_by_id(service.id).status
    stored_password = Service.get_by_id(service.id).password
    hestia.accounts["mine"].name, hestia.accounts["mine"].email = "theirs.example.com", "them@theirs.example.com"
    before = dataclasses.asdict(hestia.accounts["mine"])
    hestia.requests.clear()

    kwargs = CHANGES[action][0] if action in CHANGES else {}
    job = settle(worker, lifecycle.request(registry, vault, service.ref, action, **kwargs))
    assert (job.status, job.attempts) == ("needs_attention", 1)
    verb = CHANGES[action][1] if action in CHANGES else "not removed"
    assert job.last_error == (f"{verb}: mine on the panel is 'theirs.example.com' "
                              "<them@theirs.example.com>, not mine.example.com <owner@mine.example.com>")
    assert last_log(job).failed_task == "Refuse a user that does not match"
    assert commands(hestia) == ["v-list-user"]
    assert dataclasses.asdict(hestia.accounts["mine"]) == before
    service = Service.get_by_id(service.id)
    assert (service.status, service.password) == (status, stored_password)


@pytest.mark.parametrize("action", [*CHANGES, "terminate"])
def test_a_user_made_without_name_names_the_fix_then_works(action, adapter, registry, vault, hestia, worker):
    """Older playbooks left NAME empty: the job stops naming root's fix; once it is applied
    (v-change-user-name, which the billing key may not run), a retry does the action."""
    service, job = order(registry, vault, "mine.example.com")
    assert settle(worker, job).status == "succeeded", job.last_error
    _ready_for(action, service, registry, vault, hestia, worker)
    hestia.accounts["mine"].name = ""
    before = dataclasses.asdict(hestia.accounts["mine"])

    kwargs = CHANGES[action][0] if action in CHANGES else {}
    job = settle(worker, lifecycle.request(registry, vault, service.ref, action, **kwargs))
    assert job.status == "needs_attention"
    fix = "set it as root: v-change-user-name mine mine.example.com"
    if action == "unsuspend":  # v-change-user-name checks is_object_unsuspended
        fix += " (v-unsuspend-user first: Hestia renames no suspended user)"
    assert f"{fix}, then retry" in job.last_error
    assert dataclasses.asdict(hestia.accounts["mine"]) == before

    if action == "unsuspend":
        assert hestia.run("v-change-user-name", ["mine", "mine.example.com"])[0] == 5
        assert hestia.run("v-unsuspend-user", ["mine"])[0] == 0
        assert hestia.run("v-change-user-name", ["mine", "mine.example.com"]) == (0, "")
        assert hestia.run("v-suspend-user", ["mine"])[0] == 0
    else:
        assert hestia.run("v-change-user-name", ["mine", "mine.example.com"]) == (0, "")
    queue.retry(job.id, utcnow(), 1)
    job = settle(worker, job)
    assert job.status == "succeeded", job.last_error
    if action == "terminate":
        assert "mine" not in hestia.accounts
    elif CHANGES[action][2]:
        assert CHANGES[action][2](hestia.accounts["mine"])
    else:
        assert hestia.accounts["mine"].password == vault.decrypt(Service.get_by_id(service.id).password)
        assert hestia.accounts["mine"].password != before["password"]


def test_root_renames_a_user_but_the_billing_key_may_not(hestia):
    """v-change-user-name is outside the billing preset: only root applies the fix."""
    hestia.run("v-add-user", ["old", "Xx1!whatever", "o@old.example.com", "basic"])
    form = {"access_key": ACCESS_KEY, "secret_key": HESTIA_SECRET, "returncode": "no",
            "cmd": "v-change-user-name", "arg1": "old", "arg2": "old.example.com"}
    answer = hestia.handle(Request("POST", "/api/", {}, {}, urllib.parse.urlencode(form).encode()))
    assert answer.status == 401 and b"don't have permission" in answer.body
    assert hestia.run("v-change-user-name", ["old", "it's"])[0] == 2
    assert hestia.accounts["old"].name == ""


def test_list_accounts_gives_every_hosting_account_in_one_call(adapter, registry, vault, hestia, worker, settings):
    """One v-list-users (in the billing preset); the administrator is no hosting account, and a
    user whose NAME is no domain (made outside provisiond) shows domain null."""
    service, job = order(registry, vault, "shop.example.com", ref="INV-700")
    assert settle(worker, job).status == "succeeded"
    assert settle(worker, lifecycle.request(registry, vault, "INV-700", "suspend")).status == "succeeded"
    hestia.run("v-add-user", ["alice", "Xx1!whatever", "alice@elsewhere.example.org", "pro", "Alice", "Smith"])
    hestia.run("v-add-user", ["idn", "Xx1!whatever", "i@xn--fa-hia.de", "basic", "xn--fa-hia.de"])
    hestia.requests.clear()

    answer = actions.run(settings, vault, registry, action="list_accounts", server=catalog.server("hst1"))
    assert answer == {"accounts": [
        {"username": "alice", "domain": None, "package": "pro", "suspended": False,
         "email": "alice@elsewhere.example.org"},
        {"username": "idn", "domain": "xn--fa-hia.de", "package": "basic", "suspended": False,
         "email": "i@xn--fa-hia.de"},
        {"username": "shop", "domain": "shop.example.com", "package": "basic", "suspended": True,
         "email": "owner@shop.example.com"}]}
    assert commands(hestia) == ["v-list-users"]
    assert ProvisioningLog.select().count() == 2  # an admin action keeps no log row of its own
