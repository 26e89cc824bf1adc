"""Guarantee 9: signed requests (billing webhooks).

HMAC-SHA256 over ``<timestamp><raw body>``, lowercase hex, compared in constant time
(``hmac.compare_digest``), timestamps within ±300 s. Billing webhooks leave the outbox signed
that way; the bytes received verify, any changed byte does not, and a delivered notification
is never sent again. There are no inbound signed webhooks (the API uses bearer tokens), and no
panel call is signed: the Opterius Panel authenticates its provisioning API with a Bearer key
and does not check an HMAC (github.com/opterius/panel, app/Http/Middleware/ApiKeyAuth.php; the
HMAC scheme is what the Opterius Commerce module sends).

Billing webhooks carry a unique ``id`` under the signature, so a receiver can drop a replay
inside the window.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from provisiond import lifecycle, notify
from provisiond.models import Job, Notification, utcnow
from provisiond.worker import Worker
from tests.helpers import hmac_reference

SECRET = "canary-billing-secret-2Mx8Pz"
WINDOW = 300


@pytest.fixture
def compare_spy(monkeypatch):
    """Counts calls of hmac.compare_digest (the constant-time compare) while delegating."""
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


class Receiver:
    """A billing system's endpoint: keeps the raw bytes and headers of each POST."""

    def __init__(self):
        self.posts: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/billing"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_billing_webhooks_are_signed_byte_for_byte_and_sent_once(shop, registry, vault, settings, compare_spy):
    receiver = Receiver()
    try:
        settings = dataclasses.replace(settings, billing_webhook_url=receiver.url, billing_webhook_secret=SECRET)
        service, job = lifecycle.order(registry, vault, product="starter", domain="hook.example.com",
                                       email="me@hook.example.com", settings=settings)
        worker = Worker(settings, vault)
        try:
            worker.tick(wait=True)
        finally:
            worker.shutdown()
        assert Job.get_by_id(job.id).status == "succeeded"
        now = utcnow()
        assert notify.deliver(settings, vault, now) >= 1
        assert notify.deliver(settings, vault, now) == 0  # a delivered notification is not sent again
    finally:
        receiver.close()
    hooks = [(h, b) for h, b in receiver.posts if json.loads(b).get("event") == "service.created"]
    assert len(hooks) == 1
    headers, body = hooks[0]
    stamp, signature = headers["x-timestamp"], headers["x-signature"]
    assert Notification.get(Notification.kind == "billing_webhook").status == "sent"
    assert signature == hmac_reference(SECRET, stamp, body)  # a separate implementation agrees
    sent_at = int(stamp)
    assert notify.verify_signature(SECRET, stamp, body, signature, now=sent_at)
    compare_spy.clear()
    for index in range(len(body)):
        assert not notify.verify_signature(SECRET, stamp, flip(body, index), signature, now=sent_at)
    assert len(compare_spy) == len(body)  # each check went through the constant-time compare
    for index in range(len(signature)):
        forged = signature[:index] + ("0" if signature[index] != "0" else "1") + signature[index + 1:]
        assert not notify.verify_signature(SECRET, stamp, body, forged, now=sent_at)
    for skew, ok in ((WINDOW, True), (-WINDOW, True), (WINDOW + 1, False), (-(WINDOW + 1), False)):
        assert notify.verify_signature(SECRET, stamp, body, signature, now=sent_at + skew) is ok
    assert not notify.verify_signature(SECRET, str(sent_at + 1), body, signature, now=sent_at)
    assert json.loads(body)["id"]  # a unique id under the signature: a receiver drops replays
    assert SECRET.encode() not in body and SECRET not in json.dumps(headers)


def test_signature_checks_use_the_constant_time_compare():
    """``==`` on strings stops at the first differing byte; the checks must not use it."""
    import inspect
    source = inspect.getsource(notify.verify_signature)
    assert "compare_digest" in source and "signature ==" not in source and "== signature" not in source
