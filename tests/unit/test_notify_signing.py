"""Webhook signatures (HMAC-SHA256 over timestamp + body, as Opterius Commerce signs) and the outbox backoff."""

from __future__ import annotations

import datetime
import json

import pytest

from provisiond import notify
from tests.helpers import hmac_reference

SECRET = "canary-billing-secret-4Hk2"
BODY = json.dumps({"event": "service.suspended", "service": {"ref": "INV-1"}},
                  separators=(",", ":")).encode()
SENT_AT = 1_700_000_000


def signed(body: bytes = BODY, timestamp: int = SENT_AT) -> tuple[str, bytes, str]:
    return str(timestamp), body, notify.sign(SECRET, str(timestamp), body)


def test_signature_is_hmac_sha256_over_timestamp_and_body():
    assert notify.sign(SECRET, str(SENT_AT), BODY) == hmac_reference(SECRET, str(SENT_AT), BODY)
    signature = notify.sign(SECRET, str(SENT_AT), BODY)
    assert len(signature) == 64 and signature == signature.lower()


@pytest.mark.parametrize("skew, ok", [
    (0, True), (299, True), (-299, True), (300, True), (-300, True),
    (301, False), (-301, False), (3600, False),
])
def test_timestamp_window(skew, ok):
    timestamp, body, signature = signed()
    assert notify.verify_signature(SECRET, timestamp, body, signature, now=SENT_AT + skew) is ok


def test_now_may_be_a_naive_utc_datetime():
    timestamp, body, signature = signed()
    now = datetime.datetime.fromtimestamp(SENT_AT + 299, datetime.timezone.utc).replace(tzinfo=None)
    assert notify.verify_signature(SECRET, timestamp, body, signature, now=now)
    stale = datetime.datetime.fromtimestamp(SENT_AT + 301, datetime.timezone.utc).replace(tzinfo=None)
    assert not notify.verify_signature(SECRET, timestamp, body, signature, now=stale)


def test_a_body_changed_by_one_byte_is_refused():
    timestamp, body, signature = signed()
    for index in (0, len(body) // 2, len(body) - 1):
        changed = bytearray(body)
        changed[index] ^= 0x01
        assert not notify.verify_signature(SECRET, timestamp, bytes(changed), signature, now=SENT_AT)
    assert not notify.verify_signature(SECRET, timestamp, body + b" ", signature, now=SENT_AT)
    assert notify.verify_signature(SECRET, timestamp, body, signature, now=SENT_AT)


@pytest.mark.parametrize("signature", [
    "", "0" * 64, notify.sign("another-secret", str(SENT_AT), BODY),
    notify.sign(SECRET, str(SENT_AT + 1), BODY),       # signed for another timestamp
    notify.sign(SECRET, str(SENT_AT), BODY).upper(),   # the contract says lowercase hex
    notify.sign(SECRET, str(SENT_AT), BODY)[:-1], "é" * 64,
])
def test_bad_signatures_are_refused(signature):
    assert not notify.verify_signature(SECRET, str(SENT_AT), BODY, signature, now=SENT_AT)


@pytest.mark.parametrize("timestamp", ["", "abc", f" {SENT_AT}", f"+{SENT_AT}", "1_700_000_000", "-5"])
def test_malformed_timestamps_are_refused(timestamp):
    signature = notify.sign(SECRET, timestamp, BODY)  # correctly signed, still refused
    assert not notify.verify_signature(SECRET, timestamp, BODY, signature, now=SENT_AT)


def test_the_timestamp_is_covered_by_the_signature():
    _, body, signature = signed()
    assert not notify.verify_signature(SECRET, str(SENT_AT + 10), body, signature, now=SENT_AT)


@pytest.mark.parametrize("attempts, delay", [
    (1, 30), (2, 60), (3, 120), (4, 240), (7, 1920), (8, 3600), (9, 3600), (20, 3600),
])
def test_outbox_backoff_doubles_from_30_seconds_up_to_an_hour(attempts, delay):
    assert notify.retry_delay(attempts) == delay
