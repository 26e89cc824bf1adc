"""What only Plesk (REST API v2, XML API) shows, on its simulator, through real ansible-runner runs.

One provisiond account on Plesk is a customer (login = the service's username) owning one
subscription (the service's domain); see playbooks/plesk/. The lifecycle, refused credentials,
a 5xx, a taken login and lost create answers are the conformance suite's (test_conformance.py,
PleskAdapter).
"""

from __future__ import annotations

import json

import pytest

from provisiond import actions, catalog, lifecycle
from provisiond.models import Job, Service
from provisiond.sandbox.base import Response
from tests.helpers import last_log, refused_order, settle
from tests.integration.panels.adapters import PLESK_IP as IP, PLESK_KEY, STRONG, plesk_calls as calls

pytestmark = pytest.mark.parametrize("adapter", ["plesk"], indirect=True)


@pytest.fixture
def plesk(adapter):
    return adapter.sim


def test_idempotent_actions_when_the_panel_already_agrees(adapter, registry, vault, plesk, worker):
    done, done_job = lifecycle.order(registry, vault, product="starter", domain="again.example.com",
                                     email="a@again.example.com", ref="INV-200")
    half, half_job = lifecycle.order(registry, vault, product="starter", domain="half.example.com",
                                     email="h@half.example.com", ref="INV-201")
    adapter.squat("again", "again.example.com", external_id="INV-200")  # a create whose answer was lost
    adapter.squat("half", None, external_id="INV-201")                  # customer made, subscription not
    plesk.requests.clear()
    worker.tick(wait=True)
    assert Job.get_by_id(done_job.id).status == "succeeded"
    assert Job.get_by_id(half_job.id).status == "succeeded", Job.get_by_id(half_job.id).last_error
    assert calls(plesk, "POST", "/clients") == []
    assert [json.loads(r.body)["name"] for r in calls(plesk, "POST", "/domains")] == ["half.example.com"]
    assert plesk.subscriptions["half.example.com"].owner_login == "half"
    assert Service.get_by_id(half.id).remote_id == str(plesk.accounts["half"].id)

    # Suspended behind provisiond's back: the suspend reads, then changes nothing.
    plesk.accounts["again"].status = 16
    plesk.subscriptions["again.example.com"].status = "suspended"
    plesk.requests.clear()
    assert settle(worker, lifecycle.request(registry, vault, "INV-200", "suspend")).status == "succeeded"
    assert [r.method for r in plesk.requests] == ["GET", "GET", "GET"]
    # Active again behind its back: the unsuspend changes nothing either.
    plesk.accounts["again"].status = 0
    plesk.subscriptions["again.example.com"].status = "active"
    plesk.requests.clear()
    assert settle(worker, lifecycle.request(registry, vault, "INV-200", "unsuspend")).status == "succeeded"
    assert [r.method for r in plesk.requests] == ["GET", "GET", "GET"]
    # The XML API refuses (a key it does not take): the job fails quoting Plesk's own words.
    handle = plesk.handle
    plesk.handle = lambda request: (Response(200, (
        b'<?xml version="1.0"?><packet version="1.6.9.1"><system><status>error</status><errcode>1001'
        b'</errcode><errtext>Authentication failed - wrong password.</errtext></system></packet>'), "text/xml")
        if request.path.startswith("/enterprise/control/agent.php") else handle(request))
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "change_package", package="business"))
    plesk.handle = handle
    assert job.status == "failed" and "Authentication failed - wrong password." in job.last_error, job.last_error
    # Already on the plan (the XML API's plan-guid is the plan's guid): nothing reaches the CLI gate.
    plesk.subscriptions["again.example.com"].plan = "pro"
    plesk.requests.clear()
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "change_package", package="pro"))
    assert job.status == "succeeded", job.last_error
    assert calls(plesk, "POST", "/call") == []
    assert len(calls(plesk, "POST", "/enterprise/control/agent.php")) == 2
    # Removed behind its back: the terminate is already done.
    plesk.op_delete_client(None, None, plesk.accounts["again"].id)
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "terminate"))
    assert job.status == "succeeded"
    assert Service.get_by_id(done.id).status == "terminated"
    assert calls(plesk, "DELETE", "") == []


@pytest.mark.parametrize("case", ["unknown_package", "duplicate_domain"])
def test_panel_refusals_fail_once_with_the_reason(case, adapter, registry, vault, plesk, worker):
    product = "starter"
    if case == "unknown_package":
        catalog.add_product(registry, name="ghost", panel="plesk", group_name="web", package="nosuch")
        product = "ghost"
        task, expected = "Create the subscription (POST /domains)", "HTTP 400: Service plan 'nosuch' does not exist."
    else:
        adapter.squat("other", "taken.example.com")
        task, expected = ("Refuse a domain that another customer hosts",
                          "the domain taken.example.com is already on the panel, and not as a subscription")
    before = {login: c.id for login, c in plesk.accounts.items()}
    service, job, log = refused_order(registry, vault, worker, product, task)
    assert expected in log.message and expected in job.last_error
    if case == "unknown_package":
        assert json.loads(log.panel_answer)["message"] in expected
    else:  # refused before anything was written
        assert {login: c.id for login, c in plesk.accounts.items()} == before
    adapter.assert_kept_clean(log, vault.decrypt(service.password))


def test_refusals_on_an_existing_account(adapter, registry, vault, plesk, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="mine.example.com",
                                   email="me@mine.example.com", ref="INV-400")
    assert settle(worker, job).status == "succeeded"

    job = settle(worker, lifecycle.request(registry, vault, "INV-400", "change_package", package="nosuch"))
    assert job.status == "failed"
    log = last_log(job)
    assert log.failed_task == "Switch the service plan (subscription --switch-subscription)"
    assert "Unable to find service plan 'nosuch'." in log.message
    assert json.loads(log.panel_answer)["code"] == 1
    assert plesk.subscriptions["mine.example.com"].plan == "basic"

    plesk.op_delete_client(None, None, plesk.accounts["mine"].id)
    job = settle(worker, lifecycle.request(registry, vault, "INV-400", "suspend"))
    assert job.status == "failed"
    log = last_log(job)
    assert log.failed_task == "Stop when the panel has no customer with this login"
    assert "the panel has no customer with the login mine" in log.message
    assert Service.get_by_id(service.id).status == "active"


def test_terminate_judges_ownership_by_the_subscription(adapter, registry, vault, plesk, worker):
    """The subscription named after the service's domain decides: ours (owned by the service's
    customer) is removed with its domains, and the customer only when it was its last one;
    another customer's subscription of that name is needs_attention with nothing removed."""
    mine, mine_job = lifecycle.order(registry, vault, product="starter", domain="mine.example.com",
                                     email="me@mine.example.com", ref="INV-500")
    other, other_job = lifecycle.order(registry, vault, product="starter", domain="other.example.com",
                                       email="me@other.example.com", ref="INV-501")
    worker.tick(wait=True)
    assert Job.get_by_id(mine_job.id).status == Job.get_by_id(other_job.id).status == "succeeded"

    # The customer of INV-500 also holds a second subscription (with a subdomain of its own) and a
    # subdomain in this one: only this subscription and its subdomain go; the customer stays.
    plesk.op_create_domain(None, {"name": "extra.example.com", "hosting_type": "virtual",
                                  "owner_client": {"login": "mine"}, "ip_addresses": [IP],
                                  "hosting_settings": {"ftp_login": "extra", "ftp_password": STRONG}})
    adapter.add_site("shop.extra.example.com", parent_domain={"name": "extra.example.com"})
    adapter.add_site("blog.mine.example.com", parent_domain={"name": "mine.example.com"})
    job = settle(worker, lifecycle.request(registry, vault, "INV-500", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(mine.id).status == "terminated"
    assert [s.name for s in plesk.accounts["mine"].subscriptions] == ["extra.example.com"]
    assert set(plesk.sites) == {"shop.extra.example.com"}
    assert calls(plesk, "DELETE", "/clients/" + str(plesk.accounts["mine"].id)) == []

    # other.example.com now belongs to another customer (moved in the panel): nothing is removed.
    plesk.op_delete_domain(None, None, plesk.subscriptions["other.example.com"].id)
    adapter.squat("someone", "other.example.com")
    before = (set(plesk.accounts), set(plesk.subscriptions), set(plesk.sites))
    plesk.requests.clear()
    job = settle(worker, lifecycle.request(registry, vault, "INV-501", "terminate"))
    assert job.status == "needs_attention"
    assert "belongs to the customer someone, not to other" in job.last_error
    assert last_log(job).failed_task == "Refuse to remove another customer's subscription"
    assert calls(plesk, "DELETE", "") == []
    assert (set(plesk.accounts), set(plesk.subscriptions), set(plesk.sites)) == before
    assert Service.get_by_id(other.id).status == "active"

    # Owned by no customer at all (the administrator's, GET /domains/{id}/client is 404): the same.
    plesk.op_delete_client(None, None, plesk.accounts["someone"].id)
    plesk.op_create_domain(None, {"name": "other.example.com", "hosting_type": "virtual",
                                  "ip_addresses": [IP],
                                  "hosting_settings": {"ftp_login": "adminsite", "ftp_password": STRONG}})
    job = settle(worker, lifecycle.request(registry, vault, "INV-501", "terminate"))
    assert job.status == "needs_attention"
    assert "belongs to the administrator, not to other" in job.last_error
    assert "other.example.com" in plesk.subscriptions and "other" in plesk.accounts


def by_user(accounts: list[dict]) -> list[dict]:
    """list_accounts' answer in a fixed order, for an exact comparison."""
    return sorted(accounts, key=lambda a: (a["username"], a["domain"] or ""))


# -- Plesk: REST GET /clients and one XML API packet -------------------------------------------
def test_plesk_lists_every_subscription_with_customer_plan_and_state_in_two_calls(adapter, registry, vault,
                                                                                 plesk, worker, settings):
    server = catalog.server(adapter.server_name)
    for domain, ref in (("shop.example.com", "INV-1"), ("late.example.com", "INV-2")):
        _, job = lifecycle.order(registry, vault, product="starter", domain=domain,
                                 email=f"owner@{domain}", ref=ref)
        assert settle(worker, job).status == "succeeded", job.last_error
    assert settle(worker, lifecycle.request(registry, vault, "INV-2", "suspend", reason="overdue")).status == "succeeded"
    adapter.squat("handmade", "hand.example.net", plan="pro")   # made in Plesk by hand
    adapter.add_site("extra.example.net", base_domain={"name": "hand.example.net"})  # not a subscription
    # A subscription of the administrator's own, with no service plan.
    status, _ = plesk.op_create_domain(None, {
        "name": "admin.example.org", "hosting_type": "virtual",
        "hosting_settings": {"ftp_login": "adminsite", "ftp_password": "Admin!Site-42"}, "ip_addresses": [IP]})
    assert status == 201
    plesk.requests.clear()

    answer = actions.run(settings, vault, registry, action="list_accounts", server=server)
    assert by_user(answer["accounts"]) == [
        {"username": "admin", "domain": "admin.example.org", "package": None, "suspended": False, "email": None},
        {"username": "handmade", "domain": "hand.example.net", "package": "pro", "suspended": False,
         "email": "handmade@example.org"},
        {"username": "late", "domain": "late.example.com", "package": "basic", "suspended": True,
         "email": "owner@late.example.com"},
        {"username": "shop", "domain": "shop.example.com", "package": "basic", "suspended": False,
         "email": "owner@shop.example.com"},
    ]
    assert [(r.method, r.path) for r in plesk.requests] == [
        ("GET", "/api/v2/clients"), ("POST", "/enterprise/control/agent.php")]
    assert PLESK_KEY not in json.dumps(answer)
