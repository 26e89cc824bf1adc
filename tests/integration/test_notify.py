"""Alerts, welcome mail and billing webhooks, end to end: real ansible-runner runs on the WHM
simulator, a real SMTP server (aiosmtpd) and a real HTTP receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime
import email
import email.policy
import http.server
import json
import os
import socket
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from provisiond import lifecycle, notify
from provisiond.daemon import Daemon
from provisiond.errors import Conflict
from provisiond.models import Notification, Product, Server, Service, utcnow
from provisiond.worker import Worker
from tests.conftest import WHM_TOKEN
from tests.helpers import settle

BILLING_SECRET = "canary-billing-secret-8Rt3Vw"
SMTP_PASSWORD = "canary-smtp-password-2Gh7"
ADMINS = ("ops@hosting.example", "oncall@hosting.example")


# -- a real SMTP server and a real HTTP receiver ---------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self):
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.original_content or envelope.content,
                                          policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpt, m in self.messages if address in rcpt]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


class Receiver:
    """A loopback HTTP server that records each POST (path, headers, exact body bytes)."""

    def __init__(self):
        self.requests: list[tuple[str, dict, bytes]] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def posts(self, path: str) -> list[tuple[dict, bytes]]:
        return [(headers, body) for p, headers, body in self.requests if p == path]


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def notifying(settings, smtp, receiver):
    """The test settings, with mail and every webhook pointed at the local servers."""
    return dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=smtp.port,
                               mail_from="provisiond@hosting.example", alert_emails=ADMINS,
                               alert_webhook_url=f"{receiver.url}/alerts",
                               billing_webhook_url=f"{receiver.url}/billing",
                               billing_webhook_secret=BILLING_SECRET)


@pytest.fixture
def worker(notifying, vault):
    w = Worker(notifying, vault, owner="notify-test-worker")
    yield w
    w.shutdown()


def body_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def assert_no_secret(secrets, receiver: Receiver) -> None:
    stored = json.dumps([row.payload for row in Notification.select()])
    sent = b"".join(body for _, _, body in receiver.requests).decode()
    for secret in secrets:
        assert secret not in stored
        assert secret not in sent


# -- welcome mail ----------------------------------------------------------------------------

@pytest.mark.parametrize("with_password, chosen", [(False, None), (True, None), (True, "Shop2026-spring")])
def test_welcome_mail_names_the_account_and_its_password_only_when_the_product_says_so(
        with_password, chosen, cpanel_setup, notifying, vault, registry, whm, worker, smtp, receiver):
    # A password the billing system chose is never mailed: it showed it to the client already.
    Product.update(welcome_password=with_password).where(Product.name == "starter").execute()
    service, job = lifecycle.order(registry, vault, product="starter", domain="shop.example.com",
                                   email="owner@shop.example.com", ref="INV-1", password=chosen,
                                   settings=notifying)
    assert settle(worker, job).status == "succeeded"
    row = Notification.get(Notification.kind == "welcome_email")
    assert row.payload == {"service_id": service.id, "ref": "INV-1"}   # nothing to render, nothing secret

    assert notify.deliver(notifying, vault, utcnow()) >= 1
    [mail] = smtp.to("owner@shop.example.com")
    body = body_of(mail)
    password = vault.decrypt(Service.get_by_id(service.id).password)
    assert mail["Subject"] == "Your hosting account for shop.example.com is ready"
    assert mail["From"] == "provisiond@hosting.example"
    assert "Username:      shop" in body and "shop.example.com" in body
    assert f"http://{whm.host}:{whm.port}" in body
    assert (password in body) is (with_password and chosen is None)
    assert password == whm.accounts["shop"].password
    assert_no_secret([WHM_TOKEN, password, BILLING_SECRET], receiver)
    assert Notification.get_by_id(row.id).status == "sent"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_welcome_mail_from_an_admin_template_with_smtp_login(
        cpanel_setup, notifying, vault, registry, whm, tmp_path, receiver):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == SMTP_PASSWORD.encode())

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        template = tmp_path / "welcome.j2"
        template.write_text("Subject: Welcome to {{ domain }}\n\nLog in at {{ panel_url }} as {{ username }}"
                            " on {{ server }}.{% if password %} Secret: {{ password }}{% endif %}\n")
        settings = dataclasses.replace(notifying, smtp_port=controller.port, smtp_user="provisiond",
                                       smtp_password=SMTP_PASSWORD, welcome_template=str(template))
        service, job = lifecycle.order(registry, vault, product="starter", domain="tpl.example.com",
                                       email="me@tpl.example.com", settings=settings)
        w = Worker(settings, vault, owner="template-worker")
        try:
            assert settle(w, job).status == "succeeded"
        finally:
            w.shutdown()
        notify.deliver(settings, vault, utcnow())
        [mail] = inbox.to("me@tpl.example.com")
        assert mail["Subject"] == "Welcome to tpl.example.com"
        assert body_of(mail).strip() == f"Log in at http://{whm.host}:{whm.port} as tpl on {whm.host}."
        assert logins == [(b"provisiond", SMTP_PASSWORD.encode())]
        assert_no_secret([SMTP_PASSWORD], receiver)
    finally:
        controller.stop()


# -- alerts ----------------------------------------------------------------------------------

def test_a_permanently_failed_create_alerts_once_by_mail_and_by_webhook(
        cpanel_setup, notifying, vault, registry, whm, worker, smtp, receiver):
    whm.op_createacct({"username": "other", "domain": "taken.example.com", "plan": "basic",
                       "password": "Yy2!another-long", "contactemail": "x@taken.example.com"})
    service, job = lifecycle.order(registry, vault, product="starter", domain="taken.example.com",
                                   email="me@taken.example.com", settings=notifying)
    job = settle(worker, job)
    assert job.status == "failed" and Service.get_by_id(service.id).status == "failed"
    # The same failure reported again (a second recorder, a replay) alerts no one a second time.
    lifecycle.apply_failure(job, job.last_error, final=True, settings=notifying)
    notify.deliver(notifying, vault, utcnow())
    notify.deliver(notifying, vault, utcnow())

    alerts = [m for _, m in smtp.messages if m["Subject"].startswith("create of service")]
    assert len(alerts) == 1
    rcpt, mail = next((r, m) for r, m in smtp.messages if m is alerts[0])
    assert sorted(rcpt) == sorted(ADMINS)
    assert f"Job {job.id}" in body_of(mail) and "already configured" in body_of(mail)
    assert smtp.to("me@taken.example.com") == []          # no welcome for a failed create

    [(headers, body)] = receiver.posts("/alerts")
    alert = json.loads(body)
    assert alert["event"] == "alert" and alert["id"] == f"job:{job.id}:failed"
    assert notify.verify_signature(BILLING_SECRET, headers["X-Timestamp"], body, headers["X-Signature"], time.time())
    [(_, billing)] = receiver.posts("/billing")
    event = json.loads(billing)
    assert (event["event"], event["previous_status"], event["service"]["status"]) == ("service.failed", "pending", "failed")
    assert_no_secret([WHM_TOKEN, vault.decrypt(service.password), BILLING_SECRET], receiver)


def test_no_capacity_alerts_once_per_waiting_service_until_it_is_placed(
        cpanel_setup, notifying, vault, registry, worker, smtp, receiver):
    Server.update(max_accounts=0).execute()
    service, job = lifecycle.order(registry, vault, product="starter", domain="wait.example.com",
                                   email="me@wait.example.com", settings=notifying)
    assert job is None and Service.get_by_id(service.id).pending_reason == "no capacity in group web"
    worker.tick(wait=True)   # tries to place it again: no room, no second alert
    worker.tick(wait=True)
    rows = list(Notification.select().order_by(Notification.kind))
    assert [(r.kind, r.dedup_key) for r in rows] == [
        ("alert_email", f"capacity:web:{service.id}:email"),
        ("alert_webhook", f"capacity:web:{service.id}:webhook")]
    assert notify.deliver(notifying, vault, utcnow()) == 2
    [(_, mail)] = smtp.messages
    assert mail["Subject"] == "no capacity in group web" and "wait.example.com" in body_of(mail)

    Server.update(max_accounts=5).execute()   # room appears: it is placed, created, welcomed
    worker.tick(wait=True)
    worker.tick(wait=True)
    assert Service.get_by_id(service.id).status == "active"
    assert Notification.select().where(Notification.kind.startswith("alert")).count() == 2


# -- billing webhooks ------------------------------------------------------------------------

def test_every_state_change_of_a_real_lifecycle_is_posted_to_billing_signed(
        cpanel_setup, notifying, vault, registry, whm, worker, smtp, receiver):
    service, job = lifecycle.order(registry, vault, product="starter", domain="life.example.com",
                                   email="me@life.example.com", ref="INV-7", settings=notifying)
    assert settle(worker, job).status == "succeeded"
    passwords = [vault.decrypt(Service.get_by_id(service.id).password)]
    for action, kwargs in [("suspend", {"reason": "overdue"}), ("unsuspend", {}),
                           ("change_package", {"package": "pro"}), ("change_password", {}),
                           ("terminate", {})]:
        job = settle(worker, lifecycle.request(registry, vault, "INV-7", action, **kwargs))
        assert job.status == "succeeded", (action, job.last_error)
        passwords.append(vault.decrypt(Service.get_by_id(service.id).password))
        notify.deliver(notifying, vault, utcnow())

    posts = receiver.posts("/billing")
    events = [json.loads(body) for _, body in posts]
    assert [(e["event"], e["previous_status"], e["service"]["status"]) for e in events] == [
        ("service.created", "pending", "active"),
        ("service.suspended", "active", "suspended"),
        ("service.unsuspended", "suspended", "active"),
        ("service.terminated", "active", "terminated")]   # package and password changes keep the status
    assert events[1]["service"]["status_reason"] == "overdue"
    assert {e["service"]["ref"] for e in events} == {"INV-7"}
    assert len({e["id"] for e in events}) == 4

    for headers, body in posts:
        assert headers["Content-Type"] == "application/json"
        assert notify.verify_signature(BILLING_SECRET, headers["X-Timestamp"], body, headers["X-Signature"], time.time())
        flipped = bytearray(body)
        flipped[-2] ^= 0x01
        assert not notify.verify_signature(BILLING_SECRET, headers["X-Timestamp"], bytes(flipped),
                                           headers["X-Signature"], time.time())
        stored = Notification.get(Notification.dedup_key == json.loads(body)["id"])
        assert json.loads(body) == stored.payload and stored.status == "sent"
    assert_no_secret([WHM_TOKEN, BILLING_SECRET, *passwords], receiver)


def test_a_failing_receiver_is_retried_later_and_never_blocks_the_job(
        cpanel_setup, notifying, vault, registry, whm, worker, smtp, receiver):
    receiver.status = 500
    service, job = lifecycle.order(registry, vault, product="starter", domain="slow.example.com",
                                   email="me@slow.example.com", settings=notifying)
    assert settle(worker, job).status == "succeeded"
    assert Service.get_by_id(service.id).status == "active"

    now = utcnow()
    notify.deliver(notifying, vault, now)
    row = Notification.get(Notification.kind == "billing_webhook")
    assert (row.status, row.attempts) == ("pending", 1)
    assert "500" in row.last_error
    assert row.next_attempt_at == now + datetime.timedelta(seconds=30)
    assert len(smtp.to("me@slow.example.com")) == 1   # the mail went; only the webhook waits

    notify.deliver(notifying, vault, now + datetime.timedelta(seconds=10))   # not due yet
    assert Notification.get_by_id(row.id).attempts == 1 and len(receiver.posts("/billing")) == 1

    later = now + datetime.timedelta(seconds=31)
    notify.deliver(notifying, vault, later)
    row = Notification.get_by_id(row.id)
    assert row.attempts == 2 and row.next_attempt_at == later + datetime.timedelta(seconds=60)

    receiver.status = 200
    notify.deliver(notifying, vault, later + datetime.timedelta(seconds=60))
    row = Notification.get_by_id(row.id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    bodies = [body for _, body in receiver.posts("/billing")]
    assert len(bodies) == 3 and len(set(bodies)) == 1   # the same event, byte for byte, each time


def test_a_receiver_that_never_answers_well_ends_failed_after_ten_attempts(database, notifying, vault, receiver):
    receiver.status = 500
    notify.alert(notifying, "disk full", "whm1 is out of disk", "disk:whm1")
    Notification.delete().where(Notification.kind == "alert_email").execute()
    now = utcnow()
    for _ in range(notify.MAX_ATTEMPTS + 2):
        notify.deliver(notifying, vault, now)
        now += datetime.timedelta(hours=2)
    row = Notification.get(Notification.dedup_key == "disk:whm1:webhook")
    assert (row.status, row.attempts) == ("failed", notify.MAX_ATTEMPTS)
    assert len(receiver.posts("/alerts")) == notify.MAX_ATTEMPTS


def test_nothing_is_queued_without_settings_or_channels(cpanel_setup, settings, vault, registry, worker):
    # Without settings (old callers) and with no channel configured, the outbox stays empty.
    notify.alert(settings, "s", "b", "k")
    Server.update(max_accounts=0).execute()
    lifecycle.order(registry, vault, product="starter", domain="quiet.example.com", email="q@quiet.example.com")
    assert Notification.select().count() == 0


def test_the_daemon_sends_the_outbox_on_its_schedule(database, notifying, vault, receiver):
    notify.alert(notifying, "disk full", "whm1 is out of disk", "disk:whm1")
    daemon = Daemon(dataclasses.replace(notifying, tick_seconds=3600, notify_seconds=0.2), vault,
                    owner="notify-daemon")
    daemon.start()
    try:
        assert daemon.scheduler.get_job("notify").max_instances == 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not receiver.posts("/alerts"):
            time.sleep(0.1)
    finally:
        daemon.stop()
    assert len(receiver.posts("/alerts")) == 1


def test_run_once_also_sends_the_outbox_and_removes_old_run_folders(
        cpanel_setup, notifying, vault, registry, whm, smtp, receiver):
    """Cron mode (`run --once`) is a whole daemon: a deployment without one still mails and
    tells billing, and its artifacts do not grow forever."""
    from provisiond.daemon import run_once
    old = notifying.artifacts_dir / "20240101T000000-whm1-create-1-abcdef"
    old.mkdir(parents=True)
    month_ago = time.time() - (notifying.artifacts_keep_days + 1) * 86400
    os.utime(old, (month_ago, month_ago))
    lifecycle.order(registry, vault, product="starter", domain="cron.example.com",
                    email="me@cron.example.com", ref="INV-CRON", settings=notifying)

    done = run_once(notifying, vault)

    assert done == {"runs": 1, "notifications": 2, "pruned": 1}
    [(_, body)] = receiver.posts("/billing")
    assert json.loads(body)["event"] == "service.created"
    assert len(smtp.to("me@cron.example.com")) == 1  # the welcome mail
    assert not old.exists()
    assert [p.name for p in notifying.artifacts_dir.iterdir()] != []  # this run's folder stays


def test_a_waiting_order_keeps_its_chosen_username_until_it_is_placed(
        cpanel_setup, notifying, vault, registry, worker, whm):
    Server.update(max_accounts=0).execute()
    service, job = lifecycle.order(registry, vault, product="starter", domain="chosen.example.com",
                                   email="me@chosen.example.com", username="mychoice", ref="W-1",
                                   settings=notifying)
    assert job is None
    with pytest.raises(Conflict, match="username"):  # a replay is compared with the kept choice
        lifecycle.order(registry, vault, product="starter", domain="chosen.example.com",
                        email="me@chosen.example.com", username="other", ref="W-1")
    Server.update(max_accounts=5).execute()
    worker.tick(wait=True)
    worker.tick(wait=True)
    service = Service.get_by_id(service.id)
    assert (service.status, service.username) == ("active", "mychoice")
    assert "mychoice" in whm.accounts


def test_a_waiting_order_whose_username_was_taken_meanwhile_keeps_waiting_and_says_why(
        cpanel_setup, notifying, vault, registry, worker):
    Server.update(max_accounts=0).execute()
    waiting, _ = lifecycle.order(registry, vault, product="starter", domain="late.example.com",
                                 email="me@late.example.com", username="sameuser", settings=notifying)
    Server.update(max_accounts=5).execute()
    lifecycle.order(registry, vault, product="starter", domain="early.example.com",
                    email="me@early.example.com", username="sameuser")
    worker.tick(wait=True)
    waiting = Service.get_by_id(waiting.id)
    assert waiting.server is None and waiting.status == "pending"
    assert "'sameuser' cannot be used" in waiting.pending_reason and "already used" in waiting.pending_reason
    worker.tick(wait=True)  # tried again each tick, alerted once
    assert Notification.select().where(Notification.dedup_key.startswith(f"username:{waiting.id}")).count() == 2
