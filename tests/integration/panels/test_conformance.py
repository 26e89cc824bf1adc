"""One conformance suite for every panel folder, through real ansible-runner runs against the
panel's simulator (or an sshd), on SQLite and PostgreSQL.

Every panel passes the same cases: the lifecycle with each step asked twice (the second request
really reaches the panel, past the state machine, as ``panels verify`` sends it) and, on the
same account, change_package and change_password where panel.yaml declares them (one lifecycle
run serves them: about 32 fewer runs in CI), refused credentials, a 5xx, a username the
panel holds for another domain, and a create whose answer was lost. No secret is in any kept
text. What a panel shows of its own is checked by its adapter (adapters.py) on the same runs;
what needs runs of its own is in the panel's file beside this one (test_<panel>_panel.py).
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from provisiond import catalog, lifecycle, queue
from provisiond.models import Job, ProvisioningLog, Server, Service
from provisiond.worker import test_server as check_server
from tests.helpers import last_log, settle


def again(job: Job) -> Job:
    """The same request once more, whatever the state machine says (as provisiond.verify sends it)."""
    return queue.enqueue(job.action, service=job.service, server=job.server, params=job.params)[0]


def order(registry, vault, domain: str, ref: str | None = None, product: str = "starter"):
    return lifecycle.order(registry, vault, product=product, domain=domain, email=f"owner@{domain}", ref=ref)


def context(adapter, registry, vault, worker, service: Service, job: Job | None = None, **extra):
    """What an adapter's own checks may look at, and how they may run a job of this service."""
    return types.SimpleNamespace(
        service=Service.get_by_id(service.id), job=job, log=job and last_log(job), vault=vault,
        registry=registry, **extra,
        settle=lambda queued: settle(worker, queued),
        request=lambda action, **kw: lifecycle.request(registry, vault, service.ref, action, **kw))


def assert_no_secret(adapter, vault, *more: str) -> None:
    """No panel credential, service password or requested password in any log row or kept artifact."""
    secrets = [*more, *(vault.decrypt(s.password) for s in Service.select() if s.password)]
    secrets += [vault.decrypt_json(j.secret_params, "test")["password"] for j in Job.select() if j.secret_params]
    for row in ProvisioningLog.select():
        adapter.assert_kept_clean(row, *secrets)


def created(registry, vault, worker, domain: str, ref: str | None = None) -> Service:
    service, job = order(registry, vault, domain, ref)
    assert settle(worker, job).status == "succeeded", Job.get_by_id(job.id).last_error
    return Service.get_by_id(service.id)


def changed(adapter, registry, vault, worker, service: Service, first_password: str) -> None:
    """change_package, then change_password, where panel.yaml declares them: the account keeps
    its state, and only what was asked changes (the package keeps the password, and back)."""
    panel = registry.panels[adapter.panel]
    for action in ("change_package", "change_password"):
        if not panel.supports(action):
            continue  # cloudpanel has no packages: the lifecycle goes on without it
        before, package_before = vault.decrypt(Service.get_by_id(service.id).password), adapter.state("shop").package
        job = settle(worker, lifecycle.request(registry, vault, service.ref, action, package=adapter.other_package))
        assert job.status == "succeeded", (action, job.last_error)
        now = Service.get_by_id(service.id)
        assert now.status == "active" and not adapter.state("shop").suspended, action
        if action == "change_package":
            assert now.package == adapter.state("shop").package == adapter.other_package
            assert adapter.password_is("shop", before) and before == first_password
        else:
            after = vault.decrypt(now.password)
            assert after != before and adapter.password_is("shop", after)
            assert adapter.state("shop").package == package_before
        adapter.after(action, context(adapter, registry, vault, worker, now, job))


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_lifecycle_with_every_step_asked_twice(adapter, registry, vault, worker, settings):
    report = check_server(settings, vault, registry, catalog.server(adapter.server_name))
    assert report["health"] == "ok", report
    assert Server.get(Server.name == adapter.server_name).health == "ok"
    service, job = order(registry, vault, "shop.example.com", ref="INV-100")
    assert service.username == "shop" and job.action == "create"
    adapter.after("connected", context(adapter, registry, vault, worker, service, report=report, settings=settings))
    first_password = vault.decrypt(service.password)

    def step(queued: Job, name: str, status: str, suspended: bool | None) -> Job:
        job = settle(worker, queued)
        assert job.status == "succeeded", (name, job.last_error)
        assert Service.get_by_id(service.id).status == status, name
        seen = adapter.state("shop")
        if suspended is None:
            assert seen is None and adapter.count() == 0, name
        else:
            assert (seen.domain, seen.suspended) == ("shop.example.com", suspended), name
            assert adapter.count() == 1, name   # never a second account
            assert adapter.password_is("shop", vault.decrypt(Service.get_by_id(service.id).password)), name
        adapter.after(name, context(adapter, registry, vault, worker, service, job))
        return job

    job = step(job, "created", "active", False)
    assert Service.get_by_id(service.id).remote_id == adapter.remote_id("shop")
    assert adapter.state("shop").package == adapter.package_seen
    step(again(job), "created again", "active", False)
    changed(adapter, registry, vault, worker, service, first_password)
    for action, status, suspended in (("suspend", "suspended", True), ("unsuspend", "active", False),
                                      ("terminate", "terminated", None)):
        job = step(lifecycle.request(registry, vault, "INV-100", action, reason="overdue"), action, status, suspended)
        step(again(job), action + " again", status, suspended)

    logs = list(ProvisioningLog.select())
    assert len(logs) == Job.select().count() >= 8 and all(row.status == "succeeded" for row in logs)
    for row in logs:
        assert (Path(row.artifacts_path) / "stdout.txt").exists(), row.action
    assert_no_secret(adapter, vault, first_password)


def test_refused_credentials_fail_for_good_after_one_attempt(adapter, registry, vault, worker, settings):
    wrong = adapter.break_login(registry, vault)
    service, job = order(registry, vault, "denied.example.com")
    job = settle(worker, job)
    expected = adapter.bad_login
    assert job.status == "failed" and job.attempts == 1
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    assert log.status == "failed" and log.failed_task == expected.task, (log.failed_task, log.message)
    assert log.message == expected.message if expected.exact else expected.message in log.message
    assert expected.message in job.last_error
    if expected.answer:   # the panel's own words
        assert expected.answer in log.panel_answer
    assert adapter.count() == 0
    report = check_server(settings, vault, registry, catalog.server(adapter.server_name))
    assert report["health"] == "failed", report
    if expected.health:
        assert (report["message"] == expected.health) if expected.exact else expected.health in report["message"]
    adapter.after("refused login", context(adapter, registry, vault, worker, service, job, report=report))
    assert_no_secret(adapter, vault, wrong)


def test_a_5xx_is_transient_and_retried_then_succeeds(adapter, registry, vault, worker):
    service, job = order(registry, vault, "flaky.example.com")
    with adapter.unavailable_once():
        job = settle(worker, job)
    assert job.status == "queued" and job.attempts == 1, job.last_error
    assert adapter.transient_words in job.last_error and job.run_after > job.updated_at
    assert last_log(job).status == "retrying"
    worker.tick(now=job.run_after, wait=True)   # the retry, when it is due
    job = Job.get_by_id(job.id)
    assert job.status == "succeeded" and job.attempts == 2, job.last_error
    assert adapter.state("flaky").domain == "flaky.example.com" and adapter.count() == 1
    assert Service.get_by_id(service.id).status == "active"
    assert_no_secret(adapter, vault)


def test_a_username_taken_for_another_domain_is_refused_untouched(adapter, registry, vault, worker):
    adapter.squat("taken", "elsewhere.example.com")
    before, accounts = adapter.state("taken"), adapter.count()
    service, job = order(registry, vault, "taken.example.com")
    assert service.username == "taken"
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1, job.last_error
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    expected = adapter.taken
    assert log.status == "failed" and log.failed_task == expected.task, (log.failed_task, log.message)
    assert log.message == expected.message if expected.exact else expected.message in log.message
    assert expected.message in job.last_error
    assert adapter.state("taken") == before and adapter.count() == accounts
    adapter.after("refused taken", context(adapter, registry, vault, worker, service, job))
    assert_no_secret(adapter, vault)


def test_a_create_whose_answer_was_lost_is_confirmed(adapter, registry, vault, worker, monkeypatch):
    if adapter.lost_answer_skip:
        pytest.skip(adapter.lost_answer_skip)
    lost_so_far = adapter.lose_create_answers(monkeypatch)
    service, job = order(registry, vault, "lost.example.com", product=adapter.lost_product(registry))
    job = settle(worker, job)
    lost = lost_so_far()
    assert lost, "no create answer was lost"
    assert job.status == "succeeded" and job.attempts == 1, job.last_error
    assert adapter.state("lost").domain == "lost.example.com" and adapter.count() == 1
    service = Service.get_by_id(service.id)
    assert service.status == "active" and service.remote_id == adapter.lost_remote_id("lost")
    adapter.after("lost", context(adapter, registry, vault, worker, service, job, lost=lost))
    assert_no_secret(adapter, vault)
