"""What only Opterius (provisioning API v1, Bearer key) shows, on its simulator, through real
ansible-runner runs, on SQLite and PostgreSQL. The lifecycle, refused credentials, a 5xx, a taken
username and a lost create answer are the conformance suite's (test_conformance.py,
OpteriusAdapter)."""

from __future__ import annotations

import pytest

from provisiond import actions, catalog, lifecycle
from provisiond.errors import ValidationError
from provisiond.models import Job, Service
from tests.helpers import last_log, refused_order, settle

pytestmark = pytest.mark.parametrize("adapter", ["opterius"], indirect=True)


@pytest.fixture
def opterius(adapter):
    return adapter.sim


def order(registry, vault, domain: str, ref: str | None = None):
    return lifecycle.order(registry, vault, product="starter", domain=domain, email=f"owner@{domain}",
                           ref=ref)


@pytest.mark.parametrize("case", ["domain_taken", "unknown_package"])
def test_create_refusals_fail_once_with_the_panel_answer(case, adapter, registry, vault, opterius,
                                                         worker):
    product = "starter"
    if case == "domain_taken":
        opterius.add_account("other", "taken.example.com")
        expected, task = "HTTP 409: Domain 'taken.example.com' already exists.", "Create the account (POST /api/v1/accounts/create)"
    else:
        catalog.add_product(registry, name="ghost", panel="opterius", group_name="web", package="gold")
        product = "ghost"
        expected = "HTTP 404: Package 'gold' not found. Available: basic, pro"
        task = "Create the account (POST /api/v1/accounts/create)"
    service, job, log = refused_order(registry, vault, worker, product, task)
    assert log.message == expected
    assert expected.split(": ", 1)[1] in log.panel_answer
    adapter.assert_kept_clean(log, vault.decrypt(service.password))
    left = {"domain_taken": ["other"]}.get(case, [])
    assert [a.username for a in opterius.accounts.values()] == left


def test_an_agent_failure_on_suspend_is_a_transient_500(adapter, registry, vault, opterius, worker):
    service, job = order(registry, vault, "flaky.example.com", ref="INV-300")
    assert settle(worker, job).status == "succeeded"
    opterius.agent_error = "Could not connect to server agent"
    job = settle(worker, lifecycle.request(registry, vault, "INV-300", "suspend"))
    assert job.status == "queued" and job.attempts == 1 and job.run_after > job.updated_at
    assert job.last_error == "HTTP 500: Failed to suspend: Could not connect to server agent"
    assert last_log(job).status == "retrying"
    assert not opterius.accounts["flaky"].suspended
    adapter.assert_kept_clean(last_log(job))


def test_a_warning_stops_for_a_human_with_the_panel_message(adapter, registry, vault, opterius, worker):
    service, job = order(registry, vault, "half.example.com")
    opterius.agent_error = "Could not connect to server agent"
    job = settle(worker, job)
    assert job.status == "needs_attention" and job.attempts == 1
    log = last_log(job)
    assert log.status == "needs_attention"
    assert "Account saved but server setup failed: Could not connect to server agent" in log.message
    assert f"account {opterius.accounts['half'].id} (half)" in log.message
    assert Service.get_by_id(service.id).status == "pending"
    adapter.assert_kept_clean(log, vault.decrypt(service.password))

    # Fixed on the panel, the retried job finds the account and does not create it twice.
    opterius.agent_error = None
    lifecycle.retry_job(job.id, 1)
    assert settle(worker, Job.get_by_id(job.id)).status == "succeeded"
    assert adapter.paths().count("/api/v1/accounts/create") == 1
    assert Service.get_by_id(service.id).status == "active"


def test_terminate_of_an_account_that_is_not_the_services_removes_nothing(adapter, registry, vault,
                                                                         opterius, worker):
    service, job = order(registry, vault, "mine.example.com")
    assert settle(worker, job).status == "succeeded"
    opterius.accounts["mine"].domain = "someone-else.example.com"
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "needs_attention"
    assert "mine" in opterius.accounts and "someone-else.example.com" in job.last_error
    assert "/api/v1/accounts/terminate" not in adapter.paths()
    assert Service.get_by_id(service.id).status == "active"


def test_the_panel_offers_no_account_list(adapter, registry, vault, settings, opterius):
    """Opterius's API has no route that lists accounts (routes/api.php): list_accounts is not
    declared, and asking for it is refused before anything is sent."""
    server = catalog.server(adapter.server_name)
    with pytest.raises(ValidationError) as refused:
        actions.run(settings, vault, registry, action="list_accounts", server=server)
    assert refused.value.field == "action"
    assert str(refused.value) == ("action: panel opterius has no action 'list_accounts' "
                                  "(it declares: list_packages)")
    assert opterius.requests == []
