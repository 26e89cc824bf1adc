"""A service's whole life on the Virtualmin remote.cgi simulator, through real ansible-runner runs.

One provisiond account on Virtualmin is a top-level virtual server (the service's domain) whose
Unix user is the service's username; see playbooks/virtualmin/.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from provisiond import catalog, lifecycle, panels
from provisiond.models import ProvisioningLog, Server, Service
from provisiond.sandbox.base import Response
from provisiond.sandbox.virtualmin import DEFAULT_FEATURES, VirtualminSimulator
from provisiond.worker import test_server as check_server
from tests.helpers import last_log, settle

VM_PASSWORD = "canary-webmin-pass-8Tz3Kd"
BASIC = base64.b64encode(f"root:{VM_PASSWORD}".encode()).decode()
SQUATTER = "Squatter!Pass-42"


@pytest.fixture
def virtualmin():
    with VirtualminSimulator(username="root", password=VM_PASSWORD, plans=("basic", "pro")) as simulator:
        yield simulator


@pytest.fixture
def virtualmin_setup(database, registry, vault, virtualmin):
    """A group 'web' with server 'vm1' on the simulator and product 'starter' (plan basic)."""
    catalog.add_group("web")
    server = catalog.add_server(registry, vault, name="vm1", panel="virtualmin", host=virtualmin.host,
                                port=virtualmin.port, group_name="web", max_accounts=50,
                                credentials={"password": VM_PASSWORD, "scheme": "http"})
    product = catalog.add_product(registry, name="starter", panel="virtualmin", group_name="web",
                                  package="basic")
    return server, product


def squat(virtualmin: VirtualminSimulator, user: str, domain: str, plan: str = "basic") -> None:
    """Put a virtual server on the panel behind provisiond's back."""
    virtualmin.run_create_domain(["--domain", domain, "--user", user, "--pass", SQUATTER,
                                  "--plan", plan, "--features-from-plan"])


def programs(virtualmin: VirtualminSimulator) -> list[str]:
    return [r.form().get("program") for r in virtualmin.requests]


def assert_no_secret(rows, secrets) -> None:
    for row in rows:
        assert not any(s in json.dumps([row.message, row.panel_answer, row.stdout_excerpt]) for s in secrets)
        if row.artifacts_path:
            for path in Path(row.artifacts_path).iterdir():
                text = path.read_text()
                assert not any(s in text for s in secrets), path


def test_account_lifecycle_end_to_end(virtualmin_setup, settings, registry, vault, virtualmin, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="shop.example.com",
                                   email="owner@shop.example.com", ref="INV-100")
    assert service.username == "shop" and job.action == "create"

    job = settle(worker, job)
    service = Service.get_by_id(service.id)
    assert job.status == "succeeded", job.last_error
    account = virtualmin.accounts["shop"]
    assert service.status == "active" and service.remote_id == account.id
    assert (account.domain, account.plan, account.email) == ("shop.example.com", "basic", "owner@shop.example.com")
    assert account.features == DEFAULT_FEATURES  # the plan's features
    first_password = account.password
    assert first_password == vault.decrypt(service.password)

    steps = [("suspend", {"reason": "overdue"}, "suspended", lambda a: a.suspended and a.why == "overdue"),
             ("unsuspend", {}, "active", lambda a: not a.suspended),
             ("change_package", {"package": "pro"}, "active", lambda a: a.plan == "pro"),
             ("change_password", {}, "active", lambda a: a.password != first_password)]
    for action, kwargs, status, on_panel in steps:
        job = settle(worker, lifecycle.request(registry, vault, "INV-100", action, **kwargs))
        service = Service.get_by_id(service.id)
        assert job.status == "succeeded", (action, job.last_error)
        assert service.status == status
        assert on_panel(virtualmin.accounts["shop"]), action
    assert service.package == "pro" and service.status_reason is None
    new_password = virtualmin.accounts["shop"].password
    assert vault.decrypt(service.password) == new_password

    health = check_server(settings, vault, panels.discover(settings.panel_dirs()), catalog.server("vm1"))
    assert health["health"] == "ok", health
    assert Server.get(Server.name == "vm1").health == "ok"

    job = settle(worker, lifecycle.request(registry, vault, "INV-100", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
    assert virtualmin.accounts == {}

    # Passwords go in POST bodies, never in a URL a web server would log.
    assert not any("pass" in r.query for r in virtualmin.requests)
    logs = list(ProvisioningLog.select())
    assert len(logs) == 6 and all(row.status == "succeeded" for row in logs)
    # The multiline listings show the account's password; the change_password run read the old
    # one, which is no secret provisiond redacts any more: only no_log keeps it out.
    assert_no_secret(logs, [VM_PASSWORD, BASIC, first_password, new_password])
    for row in logs:
        assert (Path(row.artifacts_path) / "stdout.txt").exists()


def test_idempotent_actions_when_the_panel_already_agrees(virtualmin_setup, registry, vault, virtualmin, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="again.example.com",
                                   email="a@again.example.com", ref="INV-200")
    squat(virtualmin, "again", "again.example.com")  # a create whose answer was lost
    assert settle(worker, job).status == "succeeded"
    assert "create-domain" not in programs(virtualmin)
    assert Service.get_by_id(service.id).remote_id == virtualmin.accounts["again"].id

    # Disabled behind provisiond's back: the suspend reads, then changes nothing.
    virtualmin.accounts["again"].suspended = True
    virtualmin.requests.clear()
    assert settle(worker, lifecycle.request(registry, vault, "INV-200", "suspend")).status == "succeeded"
    assert programs(virtualmin) == ["list-domains", "list-domains"]
    virtualmin.accounts["again"].suspended = False
    virtualmin.requests.clear()
    assert settle(worker, lifecycle.request(registry, vault, "INV-200", "unsuspend")).status == "succeeded"
    assert programs(virtualmin) == ["list-domains", "list-domains"]
    virtualmin.accounts["again"].plan = "pro"
    virtualmin.requests.clear()
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "change_package", package="pro"))
    assert job.status == "succeeded"
    assert programs(virtualmin) == ["list-domains", "list-domains"]
    # Deleted behind its back: the terminate is already done.
    del virtualmin.accounts["again"]
    virtualmin.requests.clear()
    job = settle(worker, lifecycle.request(registry, vault, "INV-200", "terminate"))
    assert job.status == "succeeded"
    assert Service.get_by_id(service.id).status == "terminated"
    assert programs(virtualmin) == ["list-domains"]


def test_a_create_whose_answer_was_lost_is_confirmed(virtualmin_setup, registry, vault, virtualmin, worker):
    """create-domain ran but its answer never came back (HTTP 503 after the fact)."""
    catalog.add_product(registry, name="lean", panel="virtualmin", group_name="web", package="basic",
                        config={"features": "unix dir web"})
    handle = virtualmin.handle
    lost = []

    def lossy(request):
        response = handle(request)
        if request.form().get("program") == "create-domain" and not lost:
            lost.append(json.loads(response.body)["status"])
            return Response(503, b"Service Unavailable", "text/plain")
        return response

    virtualmin.handle = lossy
    service, job = lifecycle.order(registry, vault, product="lean", domain="lost.example.com",
                                   email="me@lost.example.com", ref="INV-300")
    job = settle(worker, job)
    assert lost == ["success"]
    assert job.status == "succeeded" and job.attempts == 1, job.last_error
    account = virtualmin.accounts["lost"]
    assert account.features == ("unix", "dir", "web")  # the product's features, not the plan's
    assert Service.get_by_id(service.id).remote_id == account.id


@pytest.mark.parametrize("case", ["bad_password", "unknown_package", "duplicate_domain", "duplicate_user"])
def test_panel_refusals_fail_once_with_the_reason(case, virtualmin_setup, registry, vault, virtualmin, worker):
    product = "starter"
    if case == "bad_password":
        catalog.update_server_credentials(registry, vault, catalog.server("vm1"), {"password": "wrong-pass-123"})
        task, expected = "Look the domain up (list-domains)", "the panel refused the login"
    elif case == "unknown_package":
        catalog.add_product(registry, name="ghost", panel="virtualmin", group_name="web", package="nosuch")
        product = "ghost"
        task, expected = "Check that the plan exists (list-plans)", "No plan with name nosuch was found"
    elif case == "duplicate_domain":
        squat(virtualmin, "other", "taken.example.com")
        task, expected = ("Refuse a domain hosted for another user",
                          "the domain taken.example.com is already a virtual server on the panel, of the user other")
    else:
        squat(virtualmin, "taken", "elsewhere.example.com")
        task, expected = ("Create the virtual server (create-domain)",
                          "The specified administration user already exists")
    before = dict(virtualmin.accounts)
    service, job = lifecycle.order(registry, vault, product=product, domain="taken.example.com",
                                   email="me@taken.example.com")
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    assert log.status == "failed" and log.failed_task == task
    assert expected in log.message and expected in job.last_error
    if case == "bad_password":
        assert "Unauthorized" in log.panel_answer  # Webmin's own 401 page
    elif case != "duplicate_domain":
        assert json.loads(log.panel_answer)["error"] == expected
    assert virtualmin.accounts == before
    assert_no_secret([log], [VM_PASSWORD, BASIC, vault.decrypt(service.password), SQUATTER])

    if case == "bad_password":
        health = check_server(worker.settings, vault, registry, catalog.server("vm1"))
        assert health["health"] == "failed" and "refused the login" in health["message"]


def test_refusals_on_an_existing_account(virtualmin_setup, registry, vault, virtualmin, worker):
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
    assert "modify-domain" not in programs(virtualmin)
    assert virtualmin.accounts["mine"].plan == "basic"
    assert Service.get_by_id(service.id).package == "basic"

    # The domain now belongs to another Unix user: terminating must not delete it.
    del virtualmin.accounts["mine"]
    squat(virtualmin, "intruder", "mine.example.com")
    job = settle(worker, lifecycle.request(registry, vault, "INV-400", "terminate"))
    assert job.status == "needs_attention"
    assert "intruder" in job.last_error
    assert last_log(job).failed_task == "Refuse to delete a virtual server that does not match"
    assert "delete-domain" not in programs(virtualmin)
    assert Service.get_by_id(service.id).status == "active"
    assert_no_secret([last_log(job)], [SQUATTER, VM_PASSWORD, BASIC])

    del virtualmin.accounts["intruder"]
    job = settle(worker, lifecycle.request(registry, vault, "INV-400", "suspend"))
    assert job.status == "failed"
    log = last_log(job)
    assert log.failed_task == "Look the domain up (list-domains)"
    assert "Virtual server mine.example.com does not exist" in log.message
    assert Service.get_by_id(service.id).status == "active"
