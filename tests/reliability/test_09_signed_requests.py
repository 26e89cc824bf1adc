"""Guarantee 9: signed requests (outbound Opterius calls and billing webhooks).

HMAC-SHA256 over ``<timestamp><raw body>``, lowercase hex, compared in constant time
(``hmac.compare_digest``), timestamps within ±300 s. The requests of a real Opterius create run
are replayed at the simulator: as sent they pass; with any one byte of the body, the signature
or the timestamp changed they are refused; 301 s later they are refused. Billing webhooks leave
the outbox signed the same way; the bytes received verify, any changed byte does not, and a
delivered notification is never sent again. There are no inbound signed webhooks (the API uses
bearer tokens).

Within the window, the Opterius contract says identical signatures must both be accepted (two
body-less GETs in one second sign alike), so replay protection there is the window itself:
a captured request is worthless 300 s later. Billing webhooks carry a unique ``id`` under the
signature, so a receiver can drop a replay inside the window.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from provisiond import catalog, lifecycle, notify
from provisiond.models import Job, Notification, utcnow
from provisiond.sandbox import opterius as opterius_module
from provisiond.sandbox.base import Request
from provisiond.sandbox.opterius import OpteriusSimulator, sign
from provisiond.worker import Worker

TOKEN = "canary-opterius-token-9Rt5Wq"
SECRET = "canary-billing-secret-2Mx8Pz"
WINDOW = 300


class Clock:
    """The panel's clock: real time unless ``fixed``."""

    def __init__(self):
        self.fixed: float | None = None

    def __call__(self) -> float:
        return time.time() if self.fixed is None else self.fixed


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def opterius(clock):
    with OpteriusSimulator(api_token=TOKEN, clock=clock) as simulator:
        yield simulator


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


def changed(request: Request, **fields) -> Request:
    headers = dict(request.headers)
    headers.update(fields.pop("headers", {}))
    return dataclasses.replace(request, headers=headers, **fields)


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def test_a_real_runs_requests_verify_and_no_altered_byte_does(database, registry, vault, settings, opterius,
                                                               clock, compare_spy):
    catalog.add_group("web")
    catalog.add_server(registry, vault, name="opt-signed", panel="opterius", host=opterius.host,
                       port=opterius.port, group_name="web", credentials={"api_token": TOKEN, "scheme": "http"})
    catalog.add_product(registry, name="starter", panel="opterius", group_name="web", package="basic")
    _, job = lifecycle.order(registry, vault, product="starter", domain="signed.example.com",
                             email="me@signed.example.com")
    worker = Worker(settings, vault)
    try:
        worker.tick(wait=True)
    finally:
        worker.shutdown()
    assert Job.get_by_id(job.id).status == "succeeded", Job.get_by_id(job.id).last_error
    [create] = [r for r in opterius.requests if r.method == "POST" and r.path == "/api/accounts"]
    assert compare_spy, "the simulator did not use the constant-time compare"

    # As sent: every request of the run verifies.
    assert [opterius.signature_problem(r) for r in opterius.requests] == [""] * len(opterius.requests)
    signature, stamp = create.headers["x-signature"], create.headers["x-timestamp"]
    assert signature == sign(TOKEN, stamp, create.body) and len(signature) == 64 and signature.islower()

    # Byte by byte: any one changed byte of the body, the signature or the timestamp is refused.
    for index in range(len(create.body)):
        assert opterius.signature_problem(changed(create, body=flip(create.body, index))) == "Invalid signature."
    for index in range(len(signature)):
        other = "0" if signature[index] != "0" else "1"
        forged = signature[:index] + other + signature[index + 1:]
        assert opterius.signature_problem(changed(create, headers={"x-signature": forged})) == "Invalid signature."
    for bad in (signature.upper(), signature[:-1], signature + "0", "", sign("wrong", stamp, create.body)):
        assert opterius.signature_problem(changed(create, headers={"x-signature": bad})) != ""
    assert opterius.signature_problem(changed(create, body=create.body + b" ")) == "Invalid signature."
    later = str(int(stamp) + 1)
    assert opterius.signature_problem(changed(create, headers={"x-timestamp": later})) == "Invalid signature."

    # The window: ±300 s of the panel's clock is accepted, 301 s is not.
    sent_at = int(stamp)
    for skew, ok in ((WINDOW, True), (-WINDOW, True), (WINDOW + 1, False), (-(WINDOW + 1), False)):
        clock.fixed = sent_at + skew
        problem = opterius.signature_problem(create)
        assert (problem == "") is ok, (skew, problem)

    # A captured request replayed over the wire 301 s later is refused before it is handled.
    clock.fixed = sent_at + WINDOW + 1
    before = dict(opterius.accounts)
    replay = urllib.request.Request(f"{opterius.url}/api/accounts", data=create.body, method="POST",
                                    headers={"Content-Type": "application/json", "X-Timestamp": stamp,
                                             "X-Signature": signature})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(replay, timeout=10)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["message"] == "Request timestamp is outside the allowed window."
    assert opterius.accounts == before


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
    assert signature == sign(SECRET, stamp, body)  # the simulator's separate implementation agrees
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
    for function in (opterius_module.OpteriusSimulator.signature_problem, notify.verify_signature):
        source = inspect.getsource(function)
        assert "compare_digest" in source and "signature ==" not in source and "== signature" not in source
