"""What only Virtualmin (remote.cgi, JSON) shows, on its simulator, through real ansible-runner runs.

One provisiond account on Virtualmin is a top-level virtual server (the service's domain) whose
Unix user is the service's username; see playbooks/virtualmin/. The lifecycle, refused
credentials, a 5xx, a taken username and a lost create answer are the conformance suite's
(test_conformance.py, VirtualminAdapter).
"""

from __future__ import annotations

import json

import pytest

from provisiond import catalog, lifecycle
from provisiond.models import Service
from tests.helpers import last_log, refused_order, settle

pytestmark = pytest.mark.parametrize("adapter", ["virtualmin"], indirect=True)


@pytest.fixture
def virtualmin(adapter):
    return adapter.sim


def test_idempotent_actions_when_the_panel_already_agrees(adapter, registry, vault, virtualmin, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="again.example.com",
                                   email="a@again.example.com", ref="INV-200")
    adapter.squat("again", "again.example.com")  # a create whose answer was lost
    assert settle(worker, job).status == "succeeded"
    assert "create-domain" not in adapter.programs()
    assert Service.get_by_id(service.id).remote_id == virtualmin.accounts["again"].id

    # Disabled behind provisiond's back: the suspend reads, then changes nothing.
    virtualmin.accounts["again"].suspended = True
    virtualmin.requests.clear()
    assert settle(worker, lifecycle.request(registry, vault, "INV-200", "suspend")).status == "succeeded"
    assert adapter.programs() == ["list-domains", "list-domains"]
    virtualmin.accounts["again"].suspended = False
    virtualmin.requests.clear()
    assert settle(worker, lifecycle.request(registry, vault, "INV-200", "unsuspend")).status == "succeeded"
    assert adapter.programs() == ["list-domains", "list-domains"]
    virtualmin.accounts["again"].plan = "pro"
    virtualmin.requests.clear()
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "change_package", package="pro"))
    assert job.status == "succeeded"
    assert adapter.programs() == ["list-domains", "list-domains"]
    # Deleted behind its back: the terminate is already done.
    del virtualmin.accounts["again"]
    virtualmin.requests.clear()
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "terminate"))
    assert job.status == "succeeded"
    assert Service.get_by_id(service.id).status == "terminated"
    assert adapter.programs() == ["list-domains"]


@pytest.mark.parametrize("case", ["unknown_package", "duplicate_domain"])
def test_panel_refusals_fail_once_with_the_reason(case, adapter, registry, vault, virtualmin, worker):
    product = "starter"
    if case == "unknown_package":
        catalog.add_product(registry, name="ghost", panel="virtualmin", group_name="web", package="nosuch")
        product = "ghost"
        task, expected = "Check that the plan exists (list-plans)", "No plan with name nosuch was found"
    else:
        adapter.squat("other", "taken.example.com")
        task, expected = ("Refuse a domain hosted for another user",
                          "the domain taken.example.com is already a virtual server on the panel, of the user other")
    before = dict(virtualmin.accounts)
    service, job, log = refused_order(registry, vault, worker, product, task)
    assert expected in log.message and expected in job.last_error
    if case != "duplicate_domain":
        assert json.loads(log.panel_answer)["error"] == expected
    assert virtualmin.accounts == before
    adapter.assert_kept_clean(log, vault.decrypt(service.password))


def test_refusals_on_an_existing_account(adapter, registry, vault, virtualmin, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="mine.example.com",
                                   email="me@mine.example.com", ref="INV-400")
    assert settle(worker, job).status == "succeeded"

    # modify-domain would ignore the unknown plan and answer success: the playbook looks it up.
    job = settle(worker, lifecycle.request(registry, vault, "INV-400", "change_package", package="nosuch"))
    assert job.status == "failed"
    log = last_log(job)
    assert log.failed_task == "Check that the plan exists (list-plans)"
    assert "No plan with name nosuch was found" in log.message
    assert json.loads(log.panel_answer)["status"] == "failure"
    assert "modify-domain" not in adapter.programs()
    assert virtualmin.accounts["mine"].plan == "basic"
    assert Service.get_by_id(service.id).package == "basic"

    # The domain now belongs to another Unix user: terminating must not delete it.
    del virtualmin.accounts["mine"]
    adapter.squat("intruder", "mine.example.com")
    job = settle(worker, lifecycle.request(registry, vault, "INV-400", "terminate"))
    assert job.status == "needs_attention"
    assert "intruder" in job.last_error
    assert last_log(job).failed_task == "Refuse to delete a virtual server that does not match"
    assert "delete-domain" not in adapter.programs()
    assert Service.get_by_id(service.id).status == "active"
    adapter.assert_kept_clean(last_log(job))

    del virtualmin.accounts["intruder"]
    job = settle(worker, lifecycle.request(registry, vault, "INV-400", "suspend"))
    assert job.status == "failed"
    log = last_log(job)
    assert log.failed_task == "Look the domain up (list-domains)"
    assert "Virtual server mine.example.com does not exist" in log.message
    assert Service.get_by_id(service.id).status == "active"
