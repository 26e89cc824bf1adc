"""Every way a job ends moves its service the same way (provisiond.outcomes): run outcome,
refusal, reap, cancel and an admin's resolve give the same status, reason, alert and webhook."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from provisiond import audit, lifecycle, outcomes, queue
from provisiond.errors import StateError, ValidationError
from provisiond.models import AuditEntry, Job, Notification, Service, utcnow
from provisiond.worker import Worker
from tests.helpers import hold

ADMIN = "cli:admin@ops"


@pytest.fixture
def noisy(settings):
    """Settings that queue admin alerts and billing webhooks (nothing is sent: the outbox is read)."""
    return dataclasses.replace(settings, alert_webhook_url="http://127.0.0.1:9/alerts",
                               billing_webhook_url="http://127.0.0.1:9/billing",
                               billing_webhook_secret="outcome-test-secret")


def ordered(registry, vault, noisy, domain="held.example.com"):
    return lifecycle.order(registry, vault, product="starter", domain=domain, email=f"me@{domain}",
                           settings=noisy)


def billing_events(service) -> list[str]:
    return [n.payload["event"] for n in Notification.select().where(Notification.kind == "billing_webhook")
            .order_by(Notification.id) if n.payload["service"]["id"] == service.id]


def alerts() -> list[str]:
    return [n.dedup_key for n in Notification.select().where(Notification.kind == "alert_webhook")]


# -- the reaper goes through the outcome path ------------------------------------------------------

def test_a_create_whose_attempts_the_reaper_used_up_fails_the_service_alerts_and_tells_billing(
        cpanel_setup, registry, vault, noisy):
    service, job = ordered(registry, vault, noisy, "reaped.example.com")
    Job.update(max_attempts=1).where(Job.id == job.id).execute()
    queue.claim("dead-worker", utcnow(), 1, 60)
    Job.update(lease_expires_at=queue.clock() - datetime.timedelta(seconds=1)).where(Job.id == job.id).execute()
    worker = Worker(noisy, vault, owner="reaper-node")
    try:
        assert worker.tick(wait=True) == []  # the tick reaps first, as the daemon's reaper does
    finally:
        worker.shutdown()
    assert Job.get_by_id(job.id).status == "failed"
    after = Service.get_by_id(service.id)
    assert after.status == "failed" and "stopped renewing its lease" in after.last_error
    assert f"job:{job.id}:failed:webhook" in alerts()
    assert billing_events(service) == ["service.failed"]


def test_cancelling_a_queued_create_says_on_the_service_how_to_go_on(cpanel_setup, registry, vault, noisy):
    service, job = ordered(registry, vault, noisy, "cancel.example.com")
    assert outcomes.cancel(job.id, noisy).status == "cancelled"
    after = Service.get_by_id(service.id)
    assert after.status == "pending" and after.last_error == "cancelled by an admin"
    assert f"provisiond service close {service.ref}" in after.pending_reason
    assert f"provisiond job retry {job.id}" in after.pending_reason
    lifecycle.retry_job(job.id, 3)  # retried after all: the reason goes with the cancel
    assert Service.get_by_id(service.id).pending_reason is None


# -- job resolve -----------------------------------------------------------------------------------

def test_resolving_a_held_create_as_succeeded_activates_the_service_as_a_run_would(
        cpanel_setup, registry, vault, noisy):
    service, job = ordered(registry, vault, noisy)
    assert hold(job).status == "needs_attention"
    done = outcomes.resolve(job.id, True, actor=ADMIN, note="account is there, domain fixed by hand",
                            settings=noisy, vault=vault)
    assert (done.status, done.last_error) == ("succeeded", None)
    after = Service.get_by_id(service.id)
    assert (after.status, after.remote_id, after.last_error) == ("active", after.username, None)
    assert billing_events(service) == ["service.created"]
    [entry] = audit.entries(f"job:{job.id}")
    assert (entry.actor, entry.action) == (ADMIN, "job.resolve")
    assert entry.detail == {"outcome": "succeeded", "job_action": "create", "attempts": 1,
                            "note": "account is there, domain fixed by hand", "service": service.ref}


def test_resolving_a_held_create_as_failed_fails_the_service_alerts_and_tells_billing(
        cpanel_setup, registry, vault, noisy):
    service, job = ordered(registry, vault, noisy)
    hold(job)
    done = outcomes.resolve(job.id, False, actor=ADMIN, note="no such account", settings=noisy, vault=vault)
    assert (done.status, done.last_error) == ("failed", "resolved as failed by an admin: no such account")
    after = Service.get_by_id(service.id)
    assert (after.status, after.last_error) == ("failed", done.last_error)
    assert f"job:{job.id}:failed:webhook" in alerts()
    assert billing_events(service) == ["service.failed"]


def test_only_a_held_job_can_be_resolved_and_a_refusal_writes_nothing(cpanel_setup, registry, vault, noisy):
    service, job = ordered(registry, vault, noisy)
    with pytest.raises(StateError, match="only needs_attention jobs can be resolved"):
        outcomes.resolve(job.id, True, actor=ADMIN, settings=noisy, vault=vault)
    hold(job)
    with pytest.raises(ValidationError) as refused:
        outcomes.resolve(job.id, True, actor=ADMIN, note="x" * 1001, settings=noisy, vault=vault)
    assert refused.value.field == "note"
    assert Job.get_by_id(job.id).status == "needs_attention"
    assert Service.get_by_id(service.id).status == "pending"
    assert AuditEntry.select().count() == 0


# -- service close ---------------------------------------------------------------------------------

def test_a_service_whose_create_was_cancelled_can_be_closed_and_it_is_audited(cpanel_setup, registry,
                                                                               vault, noisy):
    service, job = ordered(registry, vault, noisy, "closing.example.com")
    with pytest.raises(StateError, match=f"job {job.id} \\(create\\) queued; cancel it first"):
        lifecycle.close(service.ref, actor=ADMIN, settings=noisy)
    outcomes.cancel(job.id, noisy)
    closed, may_exist = lifecycle.close(service.ref, actor=ADMIN, settings=noisy)
    assert (closed.status, closed.pending_reason, may_exist) == ("closed", None, False)
    [entry] = audit.entries(f"service:{service.ref}")
    assert (entry.actor, entry.action, entry.detail) == (
        ADMIN, "service.close", {"previous_status": "pending", "account_may_exist": False})
    assert billing_events(service) == ["service.closed"]
    assert alerts() == []
    with pytest.raises(StateError, match="is closed; close needs it pending or failed"):
        lifecycle.close(service.ref, actor=ADMIN, settings=noisy)


def test_closing_a_service_whose_create_outcome_is_unknown_alerts_an_admin_to_check_the_panel(
        cpanel_setup, registry, vault, noisy):
    service, job = ordered(registry, vault, noisy, "unknown.example.com")
    queue.claim("dead-worker", utcnow(), 1, 60)
    queue.cancel(job.id, utcnow())  # asked to stop; then its worker died mid-run
    Job.update(lease_expires_at=queue.clock() - datetime.timedelta(seconds=1)).where(Job.id == job.id).execute()
    assert outcomes.reap(noisy) == [job.id]
    closed, may_exist = lifecycle.close(service.ref, actor=ADMIN, settings=noisy)
    assert closed.status == "closed" and may_exist
    assert f"service:{service.id}:closed-unknown:webhook" in alerts()


def test_a_held_create_must_be_resolved_before_its_service_is_closed(cpanel_setup, registry, vault, noisy):
    service, job = ordered(registry, vault, noisy)
    hold(job)
    with pytest.raises(StateError, match="needs_attention; resolve it first"):
        lifecycle.close(service.ref, actor=ADMIN, settings=noisy)
    assert Service.get_by_id(service.id).status == "pending"
    assert AuditEntry.select().count() == 0
