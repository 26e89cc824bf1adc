"""The console's service page (/ui/services/REF): one timeline of what happened to a service
(jobs, attempts, state changes, notifications, payments, admin actions), the panel's state from
the last sync, and suspend / unsuspend / terminate / login link; with real runs on the WHM
simulator through Worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import re

import pytest
from fastapi.testclient import TestClient

from provisiond import api, catalog, lifecycle, notify, renew, sync, variants
from provisiond.models import AuditEntry, Job, Service, ServerSync, utcnow
from provisiond.ui import timeline as timeline_module
from provisiond.worker import Worker
from tests.conftest import WHM_TOKEN
from tests.helpers import assert_kept_nowhere, refused_order, settle
from tests.integration.test_notify import Receiver

HOOK_SECRET = "canary-hook-secret-4Tz8Wq"
NAME = "<script>alert('pwned')</script> Ltd"


@pytest.fixture
def notifying(settings):
    """The test's settings with billing webhooks sent to a local receiver (test_notify's)."""
    hooks = Receiver()
    hooks.thread.start()
    yield dataclasses.replace(settings, billing_webhook_url=f"{hooks.url}/billing", billing_webhook_secret=HOOK_SECRET)
    hooks.server.shutdown()
    hooks.server.server_close()


@pytest.fixture
def worker(notifying, vault):
    w = Worker(notifying, vault, owner="ui-service-worker")
    yield w
    w.shutdown()


def ordered(registry, vault, ref="WEB-1", domain="shop.example.com") -> tuple[Service, Job]:
    return lifecycle.order(registry, vault, product="starter", domain=domain, email="jane@example.com",
                           ref=ref, name=NAME)


def timeline(html: str) -> list[tuple[str, str]]:
    """(data-kind, text without its leading time) of each timeline entry, in page order."""
    block = re.search(r'<ol id="timeline".*?</ol>', html, re.S).group(0)
    return [(kind, " ".join(re.sub(r"<[^>]+>", "", re.sub(r"<time.*?</time>", "", text, count=1)).split()))
            for kind, text in re.findall(r'<li data-kind="(\w+)"[^>]*>(.*?)</li>', block, re.S)]


def flash_after(console, answer) -> str:
    assert answer.status_code == 303, answer.text
    page = console.get(answer.headers["location"])
    return re.search(r'class="flash"[^>]*>(.*?)</p>', page.text, re.S).group(1)


def test_the_timeline_tells_what_happened_newest_first(cpanel_setup, console, registry, vault, worker,
                                                         notifying, settings, whm, caplog):
    caplog.set_level(logging.DEBUG)
    service, create = ordered(registry, vault)
    assert settle(worker, create).status == "succeeded"
    assert notify.deliver(notifying, vault) == 1   # service.created, to the billing receiver
    page = console.get("/ui/services/WEB-1")
    assert page.status_code == 200
    assert "No sync yet" in re.search(r'id="panel-state".*?</section>', page.text, re.S).group(0)
    assert 'action="/ui/services/WEB-1/suspend"' in page.text and "/unsuspend" not in page.text

    suspended = console.post("/ui/services/WEB-1/suspend")
    suspend = Job.get((Job.service == service.id) & (Job.action == "suspend"))
    assert flash_after(console, suspended) == f"Suspend of WEB-1 queued as job {suspend.id}."
    assert suspend.params == {"reason": "admin"}
    assert settle(worker, suspend).status == "succeeded"
    paid = console.client.post("/v1/services/WEB-1/payments", json={"paid_until": "2031-01-31"},
                               headers={"Authorization": f"Bearer {console.token}"})
    assert paid.status_code == 200 and paid.json()["job"] is None   # an admin's suspension stays
    sync.check(settings, vault, registry, cpanel_setup[0])

    page = console.get("/ui/services/WEB-1")
    entries = timeline(page.text)
    kinds = [kind for kind, _ in entries]
    assert kinds[0] == "payment" and "paid until 2031-01-31" in entries[0][1]
    assert kinds.count("job") == 2 and kinds.count("attempt") == 2
    assert kinds.index("audit") < kinds.index("job")   # the admin's suspend, then its job
    jobs = [text for kind, text in entries if kind == "job"]
    assert jobs[0].startswith(f"job {suspend.id} suspend created") and "succeeded" in jobs[0]
    assert jobs[1].startswith(f"job {create.id} create created") and "finished" in jobs[1]
    assert f'href="/ui/jobs/{create.id}"' in page.text and f'href="/ui/jobs/{create.id}?attempt=1"' in page.text
    states = [text for kind, text in entries if kind == "state"]
    assert [s.split(" (")[0] for s in states] == ["state active → suspended", "state pending → active"]
    notes = [text for kind, text in entries if kind == "notification"]
    assert "billing webhook: service.suspended (was active) pending" in notes[0]
    assert "billing webhook: service.created (was pending) sent" in notes[1] and "(1 attempt)" in notes[1]
    [audit] = [text for kind, text in entries if kind == "audit"]
    assert audit.startswith("service.suspend") and f"job {suspend.id}" in audit and "by ui:ops" in audit

    state = re.search(r'id="panel-state".*?</section>', page.text, re.S).group(0)
    assert "agreed with provisiond" in state and "From the last sync of whm1" in state
    header = page.text.split('id="timeline"')[0]
    assert 'class="badge suspended"' in header and "reason admin" in header and "2031-01-31" in header

    assert "<script>alert" not in page.text and "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; Ltd" in page.text
    password = vault.decrypt(Service.get_by_id(service.id).password)
    for secret in (WHM_TOKEN, password, HOOK_SECRET):
        assert secret not in page.text

    # An admin may open a suspended account: the link is shown once, and kept nowhere.
    assert 'action="/ui/services/WEB-1/login-link"' in page.text
    shown = console.post("/ui/services/WEB-1/login-link")
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    link = re.search(r'id="open-login-link" href="([^"]+)"', shown.text).group(1).replace("&amp;", "&")
    session = re.fullmatch(r"https?://[^/]+:2083/cpsess\d{10}/login/\?session=(\S+)", link).group(1)
    assert session in whm.sessions   # the panel made it
    secret = session.split(":")[-1]
    assert_kept_nowhere(secret, settings, caplog.text)
    assert secret not in console.get("/ui/services/WEB-1").text
    assert [e.action for e in AuditEntry.select().where(AuditEntry.subject == "service:WEB-1")][-1] == "service.login_link"


def active(registry, vault, ref="WEB-2", domain="shop.example.com") -> Service:
    """An order marked active without a run: for what only queues a job or reads rows."""
    service, _ = ordered(registry, vault, ref=ref, domain=domain)
    Job.update(status="succeeded", finished_at=utcnow()).where(Job.service == service.id).execute()
    Service.update(status="active").where(Service.id == service.id).execute()
    return Service.get_by_id(service.id)


def test_terminate_queues_a_job_only_when_the_domain_is_typed_exactly(cpanel_setup, console, registry, vault):
    service = active(registry, vault)
    confirm = console.get("/ui/services/WEB-2/terminate")
    assert confirm.status_code == 200 and 'name="domain"' in confirm.text and "shop.example.com" in confirm.text
    assert 'action="/ui/services/WEB-2/terminate"' in confirm.text
    for typed in ("", "SHOP.example.com", "shop.example.com ", "other.example.com"):
        refused = console.post("/ui/services/WEB-2/terminate", {"domain": typed})
        assert refused.status_code == 422 and 'class="problem"' in refused.text
        assert "nothing was done" in refused.text or "Type the service" in refused.text
    assert Job.select().where(Job.action == "terminate").count() == 0
    assert AuditEntry.select().count() == 0 and Service.get_by_id(service.id).status == "active"

    done = console.post("/ui/services/WEB-2/terminate", {"domain": "shop.example.com"})
    [job] = Job.select().where(Job.action == "terminate")
    assert (job.status, job.service_id) == ("queued", service.id)
    assert flash_after(console, done) == f"Terminate of WEB-2 queued as job {job.id}."
    [entry] = AuditEntry.select()
    assert (entry.actor, entry.action, entry.subject, entry.detail) == (
        "ui:ops", "service.terminate", "service:WEB-2", {"job": job.id})


def test_a_state_that_forbids_the_action_is_a_flash_and_unknown_refs_a_404_page(cpanel_setup, console,
                                                                               registry, vault):
    active(registry, vault)
    flash = flash_after(console, console.post("/ui/services/WEB-2/unsuspend"))
    assert flash == "Unsuspend not queued: service WEB-2 is active; unsuspend needs it suspended"
    assert Job.select().where(Job.action == "unsuspend").count() == 0
    for answer in (console.get("/ui/services/NOPE-1"), console.get("/ui/services/NOPE-1/terminate"),
                   console.post("/ui/services/NOPE-1/suspend"),
                   console.post("/ui/services/NOPE-1/terminate", {"domain": "x.example.com"}),
                   console.get("/ui/services/%3Cscript%3E"), console.get("/ui/services/" + "A" * 300)):
        assert answer.status_code == 404 and "<h1>No such service</h1>" in answer.text
        assert "<script>" not in answer.text


def test_forms_without_csrf_are_refused_and_pages_need_a_session(cpanel_setup, console, registry, vault,
                                                                 settings):
    service = active(registry, vault)
    for path, data in (("suspend", {}), ("unsuspend", {}), ("terminate", {"domain": "shop.example.com"}),
                       ("login-link", {})):
        assert console.post(f"/ui/services/WEB-2/{path}", data, csrf=False).status_code == 403
        assert console.post(f"/ui/services/WEB-2/{path}", {**data, "csrf": "forged"}, csrf=False).status_code == 403
    assert Job.select().count() == 1 and AuditEntry.select().count() == 0
    assert Service.get_by_id(service.id).status == "active"
    with TestClient(api.create_app(settings, vault), follow_redirects=False) as stranger:
        for path in ("/ui/services/WEB-2", "/ui/services/WEB-2/terminate"):
            answer = stranger.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next=")
        answer = stranger.post("/ui/services/WEB-2/terminate", data={"domain": "shop.example.com"})
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")
    assert Job.select().count() == 1


def test_the_panel_state_names_the_drift_the_last_sync_found(cpanel_setup, console, registry, vault):
    service = active(registry, vault)
    report = sync.compare("whm1", [{"username": service.username, "domain": "old.example.com",
                                    "package": "gold", "suspended": True, "email": "x@example.com"}],
                          sync.services_of(cpanel_setup[0]), utcnow() + datetime.timedelta(seconds=1))
    sync.store(cpanel_setup[0], report)
    state = re.search(r'id="panel-state".*?</section>', console.get("/ui/services/WEB-2").text, re.S).group(0)
    assert "From the last sync of whm1" in state
    for line in ("State: the panel had it suspended, provisiond active.",
                 "Package: the panel had gold, provisiond basic.",
                 "Domain: the panel had old.example.com, provisiond shop.example.com."):
        assert line in state
    Service.update(status="terminated").where(Service.id == service.id).execute()
    sync.store(cpanel_setup[0], sync.compare("whm1", [{"username": service.username, "domain": "shop.example.com",
                                                       "package": "basic", "suspended": False, "email": ""}],
                                             sync.services_of(cpanel_setup[0]), utcnow() + datetime.timedelta(seconds=1)))
    state = re.search(r'id="panel-state".*?</section>', console.get("/ui/services/WEB-2").text, re.S).group(0)
    assert f"The panel had account {service.username} (shop.example.com, package basic, active)" in state
    assert ServerSync.select().count() == 1


@pytest.mark.parametrize("bytewise", [True, False], ids=["index-range", "scan"])
def test_a_services_notifications_are_found_by_their_keys_and_no_others(cpanel_setup, console, registry, vault,
                                                                        settings, monkeypatch, bytewise):
    monkeypatch.setattr(timeline_module, "bytewise_order", lambda: bytewise)
    noisy = dataclasses.replace(settings, smtp_host="127.0.0.1", alert_emails=("ops@example.com",),
                                alert_webhook_url="http://127.0.0.1:9/alerts",
                                billing_webhook_url="http://127.0.0.1:9/billing", billing_webhook_secret=HOOK_SECRET)
    mine = active(registry, vault)
    other = active(registry, vault, ref="WEB-2:20260101120000", domain="other.example.com")
    for service in (mine, other):
        notify.billing_event(noisy, service, "service.created", "pending", change_id=f"job{service.id}")
        notify.welcome(noisy, service)
        notify.alert(noisy, f"{service.ref}: disk at 90 % of its limit", "...", f"usage:{service.id}:disk:90:1")
        notify.alert(noisy, f"account of service {service.ref} is missing", "...",
                     f"sync:missing:{service.ref}:20261128000000")
    notify.alert(noisy, "drift on server whm1 changed", "...", "sync:whm1:changed:2026-11-28T00:00:00Z")
    page = console.get("/ui/services/WEB-2")
    notes = [text for kind, text in timeline(page.text) if kind == "notification"]
    assert sorted(notes) == sorted([
        "billing webhook: service.created (was pending) pending (0 attempts)",
        "welcome email: welcome mail to the client pending (0 attempts)",
        *[f"alert {channel}: WEB-2: disk at 90 % of its limit pending (0 attempts)" for channel in ("email", "webhook")],
        *[f"alert {channel}: account of service WEB-2 is missing pending (0 attempts)" for channel in ("email", "webhook")]])


def test_a_waiting_order_and_a_failed_create_are_shown_as_they_are(cpanel_setup, console, registry, vault):
    waiting = Service.create(ref="WAIT-1", product=cpanel_setup[1], domain="wait.example.com", email="w@example.com",
                             package="basic", pending_reason="no capacity in group web")
    page = console.get("/ui/services/WAIT-1")
    assert page.status_code == 200 and "not placed: no capacity in group web" in page.text
    assert "No sync yet" in page.text and timeline(page.text) == [] and "Nothing yet." in page.text
    assert "/suspend" not in page.text and "/terminate" not in page.text and "login-link" not in page.text

    service, job = ordered(registry, vault, ref="FAIL-1", domain="fail.example.com")
    Job.update(status="failed", attempts=6, finished_at=utcnow(), last_error="whm said: no\nmore").where(
        Job.id == job.id).execute()
    Service.update(status="failed", last_error="whm said: no").where(Service.id == service.id).execute()
    entries = timeline(console.get("/ui/services/FAIL-1").text)
    assert entries[0] == ("state", f"state pending → failed (job {job.id} create failed)")
    assert entries[1][0] == "job" and "failed" in entries[1][1] and "whm said: no" in entries[1][1]
    assert "more" not in entries[1][1] and waiting.status == "pending"


def test_a_retried_create_shows_its_failure_and_the_service_pending_again(cpanel_setup, console, registry,
                                                                          vault, worker, whm):
    whm.op_createacct({"username": "other", "domain": "taken.example.com", "plan": "basic",
                       "password": "Yy2!another-long", "contactemail": "x@taken.example.com"})
    service, create, log = refused_order(registry, vault, worker, "starter", "Create the account (createacct)")
    failed_at = Job.get_by_id(create.id).finished_at
    assert flash_after(console, console.post(f"/ui/jobs/{create.id}/retry",
                                             {"next": f"/ui/services/{service.ref}"})) == f"Job {create.id} queued again"
    assert Service.get_by_id(service.id).status == "pending"
    shown = timeline(console.get(f"/ui/services/{service.ref}").text)
    states = [text for kind, text in shown if kind == "state"]
    # Newest first: the retry made the service pending again; before it, the create had failed.
    assert states == ["state failed → pending (job.retry by ui:ops)",
                      f"state pending → failed (job {create.id} create queued)"]
    retry = AuditEntry.get(AuditEntry.action == "job.retry")
    assert (retry.actor, retry.subject) == ("ui:ops", f"job:{create.id}")
    assert retry.detail == {"job_action": "create", "service_from": "failed", "service_to": "pending",
                            "failed_at": failed_at.isoformat()}
    # The failure is placed when the job had failed, before the retry cleared its finish.
    failure = next(e for e in timeline_module.build(Service.get_by_id(service.id)).entries
                   if e.kind == "state" and e.facts["to"] == "failed")
    assert failure.at == failed_at and failure.at >= log.finished_at


def test_the_page_shows_the_variant_the_fields_a_renew_and_a_move_to_another_variant(cpanel_setup, console,
                                                                                    registry, vault):
    catalog.add_product(registry, name="hosting", panel="cpanel", group_name="web", package="basic",
                        checkout={"mailbox": {"pattern": "[a-z]{1,20}", "required": True},
                                  "note": {"label": "A note"}})
    variants.add(registry, "hosting", "pro", {"quota": 8192}, actor="test")
    variants.add(registry, "hosting", "lite", {"quota": 512}, package="gold", actor="test")
    service, create = lifecycle.order(registry, vault, product="hosting", domain="shop.example.com",
                                      email="jane@example.com", ref="VAR-1", variant="pro",
                                      fields={"mailbox": "info", "note": "<b>call</b> me & 'you'"})
    Job.update(status="succeeded", finished_at=utcnow()).where(Job.id == create.id).execute()
    Service.update(status="active").where(Service.id == service.id).execute()
    renewed = renew.renew("VAR-1", datetime.date(2031, 1, 31), datetime.date.today(), registry=registry,
                          vault=vault, actor="billing")
    assert renewed.job is None   # the bundled cPanel folder has no renew.yml
    move = lifecycle.request(registry, vault, service.id, "change_package", variant="lite")

    page = console.get("/ui/services/VAR-1")
    assert page.status_code == 200
    facts = re.search(r'class="facts".*?</dl>', page.text, re.S).group(0)
    assert re.search(r'id="service-variant">pro</dd>', facts)
    fields = re.search(r'id="service-fields">(.*?)</dd>', facts, re.S).group(1)
    assert re.sub(r"<[^>]+>", "", fields) == "mailbox = info; note = &lt;b&gt;call&lt;/b&gt; me &amp; &#39;you&#39;"
    assert "<b>call</b>" not in page.text
    entries = timeline(page.text)
    assert entries[0][0] == "job"
    assert entries[0][1].startswith(f"job {move.id} change_package to package gold, variant lite created, queued")
    [renewal] = [text for kind, text in entries if kind == "renew"]
    assert renewal == "renewed: paid until 2031-01-31; nothing to run on the panel by billing"
    assert not [text for kind, text in entries if kind == "audit"]

    plain = active(registry, vault, ref="PLAIN-1", domain="plain.example.com")
    facts = re.search(r'class="facts".*?</dl>', console.get(f"/ui/services/{plain.ref}").text, re.S).group(0)
    assert "id=\"service-variant\">— (the product&#39;s own settings)</dd>" in facts
    assert 'id="service-fields">—</dd>' in facts
