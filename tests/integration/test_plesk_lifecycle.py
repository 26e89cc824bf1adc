"""A service's whole life on the Plesk REST API v2 simulator, through real ansible-runner runs.

One provisiond account on Plesk is a customer (login = the service's username) owning one
subscription (the service's domain); see playbooks/plesk/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisiond import actions, catalog, lifecycle, panels
from provisiond.models import Job, ProvisioningLog, Server, Service
from provisiond.sandbox.base import Response
from provisiond.sandbox.plesk import PleskSimulator
from provisiond.worker import test_server as check_server
from tests.helpers import last_log, settle

PLESK_KEY = "canary-plesk-key-4Hn8Wq1Zt"
STRONG = "Squatter!Pass-42"
IP = "203.0.113.10"


@pytest.fixture
def plesk():
    with PleskSimulator(api_key=PLESK_KEY, plans=("basic", "pro"), ip_addresses=(IP,)) as simulator:
        yield simulator


@pytest.fixture
def plesk_setup(database, registry, vault, plesk):
    """A group 'web' with server 'plesk1' on the simulator and product 'starter' (plan basic)."""
    catalog.add_group("web")
    server = catalog.add_server(registry, vault, name="plesk1", panel="plesk", host=plesk.host,
                                port=plesk.port, group_name="web", max_accounts=50,
                                credentials={"api_key": PLESK_KEY, "scheme": "http"})
    product = catalog.add_product(registry, name="starter", panel="plesk", group_name="web",
                                  package="basic")
    return server, product


def squat(plesk: PleskSimulator, login: str, domain: str | None, external_id: str = "",
          plan: str = "basic") -> None:
    """Put a customer (and a subscription) on the panel behind provisiond's back."""
    status, _ = plesk.op_create_client(None, {"name": login, "login": login, "password": STRONG,
                                              "email": f"{login}@example.org", "type": "customer",
                                              "external_id": external_id})
    assert status == 201
    if domain:
        status, _ = plesk.op_create_domain(None, {
            "name": domain, "hosting_type": "virtual", "owner_client": {"login": login},
            "hosting_settings": {"ftp_login": login, "ftp_password": STRONG},
            "ip_addresses": [IP], "plan": {"name": plan}})
        assert status == 201


def add_site(plesk: PleskSimulator, name: str, **ref) -> None:
    """Add an additional domain (base_domain=) or a subdomain (parent_domain=) behind provisiond's back."""
    status, _ = plesk.op_create_domain(None, {"name": name, "hosting_type": "virtual", **ref})
    assert status == 201


def calls(plesk: PleskSimulator, method: str, suffix: str) -> list:
    return [r for r in plesk.requests if r.method == method and r.path.endswith(suffix)]


def assert_no_secret(rows, secrets) -> None:
    for row in rows:
        assert not any(s in json.dumps([row.message, row.panel_answer, row.stdout_excerpt]) for s in secrets)
        if row.artifacts_path:
            for path in Path(row.artifacts_path).iterdir():
                text = path.read_text()
                assert not any(s in text for s in secrets), path


def test_account_lifecycle_end_to_end(plesk_setup, settings, registry, vault, plesk, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="shop.example.com",
                                   email="owner@shop.example.com", ref="INV-100")
    assert service.username == "shop" and job.action == "create"

    job = settle(worker, job)
    service = Service.get_by_id(service.id)
    assert job.status == "succeeded", job.last_error
    customer = plesk.accounts["shop"]
    assert service.status == "active" and service.remote_id == str(customer.id)
    assert (customer.email, customer.external_id, customer.type) == ("owner@shop.example.com", "INV-100", "customer")
    subscription = plesk.subscriptions["shop.example.com"]
    assert (subscription.owner_login, subscription.plan, subscription.ftp_login) == ("shop", "basic", "shop")
    assert subscription.ip_addresses == [IP] and subscription.status == "active"
    first_password = customer.password
    assert first_password == vault.decrypt(service.password) == subscription.ftp_password

    steps = [("suspend", {"reason": "overdue"}, "suspended",
              lambda c, s: c.suspended and s.status == "suspended"),
             ("unsuspend", {}, "active", lambda c, s: c.status == 0 and s.status == "active"),
             ("change_package", {"package": "pro"}, "active", lambda c, s: s.plan == "pro"),
             ("change_password", {}, "active",
              lambda c, s: c.password != first_password and s.ftp_password == c.password)]
    for action, kwargs, status, on_panel in steps:
        job = settle(worker, lifecycle.request(registry, vault, "INV-100", action, **kwargs))
        service = Service.get_by_id(service.id)
        assert job.status == "succeeded", (action, job.last_error)
        assert service.status == status
        assert on_panel(plesk.accounts["shop"], plesk.subscriptions["shop.example.com"]), action
    assert service.package == "pro" and service.status_reason is None
    new_password = plesk.accounts["shop"].password
    assert vault.decrypt(service.password) == new_password
    # the subscription's system user (FTP, SSH) got it too, through PUT /domains/{id}
    assert plesk.subscriptions["shop.example.com"].ftp_password == new_password
    assert [json.loads(r.body) for r in calls(plesk, "PUT", f"/domains/{subscription.id}")][-1] == {
        "hosting_settings": {"ftp_login": "shop", "ftp_password": new_password}}

    health = check_server(settings, vault, panels.discover(settings.panel_dirs()), catalog.server("plesk1"))
    assert health["health"] == "ok" and health["reported"] == {"version": plesk.panel_version}
    assert Server.get(Server.name == "plesk1").health == "ok"

    # The customer added a domain and a subdomain to the subscription: they are not subscriptions,
    # so this was its last one, and the customer goes with it.
    add_site(plesk, "shop.example.net", base_domain={"name": "shop.example.com"})
    add_site(plesk, "blog.shop.example.com", parent_domain={"name": "shop.example.com"})
    job = settle(worker, lifecycle.request(registry, vault, "INV-100", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
    assert plesk.accounts == {} and plesk.subscriptions == {} and plesk.sites == {}

    logs = list(ProvisioningLog.select())
    assert len(logs) == 6 and all(row.status == "succeeded" for row in logs)
    assert_no_secret(logs, [PLESK_KEY, first_password, new_password])
    for row in logs:
        assert (Path(row.artifacts_path) / "stdout.txt").exists()


def test_idempotent_actions_when_the_panel_already_agrees(plesk_setup, registry, vault, plesk, worker):
    done, done_job = lifecycle.order(registry, vault, product="starter", domain="again.example.com",
                                     email="a@again.example.com", ref="INV-200")
    half, half_job = lifecycle.order(registry, vault, product="starter", domain="half.example.com",
                                     email="h@half.example.com", ref="INV-201")
    squat(plesk, "again", "again.example.com", external_id="INV-200")  # a create whose answer was lost
    squat(plesk, "half", None, external_id="INV-201")                  # customer made, subscription not
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


def test_a_create_whose_answers_were_lost_is_confirmed(plesk_setup, registry, vault, plesk, worker):
    """The panel made the customer and the subscription, but neither answer came back (HTTP 503
    after the fact): each is confirmed by a read, in the same run."""
    handle = plesk.handle
    lost = []

    def lossy(request):
        response = handle(request)
        if request.method == "POST" and request.path.endswith(("/clients", "/domains")):
            lost.append((request.path.rsplit("/", 1)[1], response.status))
            return Response(503, b"Service Unavailable", "text/plain")
        return response

    plesk.handle = lossy
    service, job = lifecycle.order(registry, vault, product="starter", domain="lost.example.com",
                                   email="me@lost.example.com", ref="INV-300")
    job = settle(worker, job)
    assert lost == [("clients", 201), ("domains", 201)]
    assert job.status == "succeeded" and job.attempts == 1, job.last_error
    assert plesk.subscriptions["lost.example.com"].owner_login == "lost"
    assert Service.get_by_id(service.id).remote_id == str(plesk.accounts["lost"].id)


@pytest.mark.parametrize("case", ["bad_key", "unknown_package", "duplicate_domain", "duplicate_login"])
def test_panel_refusals_fail_once_with_the_reason(case, plesk_setup, registry, vault, plesk, worker):
    product = "starter"
    if case == "bad_key":
        catalog.update_server_credentials(registry, vault, catalog.server("plesk1"), {"api_key": "wrong-key-123"})
        task, expected = "List the customers (GET /clients)", "HTTP 401: Authentication failed"
    elif case == "unknown_package":
        catalog.add_product(registry, name="ghost", panel="plesk", group_name="web", package="nosuch")
        product = "ghost"
        task, expected = "Create the subscription (POST /domains)", "HTTP 400: Service plan 'nosuch' does not exist."
    elif case == "duplicate_domain":
        squat(plesk, "other", "taken.example.com")
        task, expected = ("Refuse a domain that another customer hosts",
                          "the domain taken.example.com is already on the panel, and not as a subscription")
    else:
        squat(plesk, "taken", "elsewhere.example.com")
        task, expected = ("Refuse a customer of this login that is not this service's",
                          "the customer taken exists on the panel with elsewhere.example.com")
    before = {login: c.id for login, c in plesk.accounts.items()}
    service, job = lifecycle.order(registry, vault, product=product, domain="taken.example.com",
                                   email="me@taken.example.com")
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    assert log.status == "failed" and log.failed_task == task
    assert expected in log.message and expected in job.last_error
    if case in ("bad_key", "unknown_package"):
        assert json.loads(log.panel_answer)["message"] in expected
    if case != "unknown_package":  # refused before anything was written
        assert {login: c.id for login, c in plesk.accounts.items()} == before
    assert_no_secret([log], [PLESK_KEY, vault.decrypt(service.password)])

    if case == "bad_key":
        health = check_server(worker.settings, vault, registry, catalog.server("plesk1"))
        assert health["health"] == "failed" and "Authentication failed" in health["message"]


def test_refusals_on_an_existing_account(plesk_setup, registry, vault, plesk, worker):
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


def test_terminate_judges_ownership_by_the_subscription(plesk_setup, registry, vault, plesk, worker):
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
    add_site(plesk, "shop.extra.example.com", parent_domain={"name": "extra.example.com"})
    add_site(plesk, "blog.mine.example.com", parent_domain={"name": "mine.example.com"})
    job = settle(worker, lifecycle.request(registry, vault, "INV-500", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(mine.id).status == "terminated"
    assert [s.name for s in plesk.accounts["mine"].subscriptions] == ["extra.example.com"]
    assert set(plesk.sites) == {"shop.extra.example.com"}
    assert calls(plesk, "DELETE", "/clients/" + str(plesk.accounts["mine"].id)) == []

    # other.example.com now belongs to another customer (moved in the panel): nothing is removed.
    plesk.op_delete_domain(None, None, plesk.subscriptions["other.example.com"].id)
    squat(plesk, "someone", "other.example.com")
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
def test_plesk_lists_every_subscription_with_customer_plan_and_state_in_two_calls(plesk_setup, registry, vault,
                                                                                 plesk, worker, settings):
    server, _ = plesk_setup
    for domain, ref in (("shop.example.com", "INV-1"), ("late.example.com", "INV-2")):
        _, job = lifecycle.order(registry, vault, product="starter", domain=domain,
                                 email=f"owner@{domain}", ref=ref)
        assert settle(worker, job).status == "succeeded", job.last_error
    assert settle(worker, lifecycle.request(registry, vault, "INV-2", "suspend", reason="overdue")).status == "succeeded"
    squat(plesk, "handmade", "hand.example.net", plan="pro")   # made in Plesk by hand
    add_site(plesk, "extra.example.net", base_domain={"name": "hand.example.net"})  # not a subscription
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
