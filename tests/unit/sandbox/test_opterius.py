"""OpteriusSimulator against shared/panels/opterius.md: HMAC-signed requests sent with `requests`."""

import hashlib
import hmac
import json
import time

import pytest
import requests

from provisiond.sandbox.opterius import OpteriusSimulator, sign

TOKEN = "opterius-test-token"
ACCOUNT = {"username": "alice", "password": "s3cur3p@ss", "domain": "alice.example.com",
           "package": "basic", "email": "alice@example.com", "disk_limit_mb": 1024,
           "bandwidth_limit_mb": 10240}


@pytest.fixture
def sim():
    with OpteriusSimulator(api_token=TOKEN, packages=("basic", "pro")) as sim:
        yield sim


def send(sim, method, path, body=None, token=TOKEN, timestamp=None, raw=None, signed_body=None):
    """Serialize once, sign those bytes, send those bytes (``signed_body`` forges a mismatch)."""
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"X-Timestamp": stamp,
               "X-Signature": sign(token, stamp, data if signed_body is None else signed_body)}
    if data:
        headers["Content-Type"] = "application/json"
    return requests.request(method, sim.url + path, data=data, headers=headers, timeout=5)


def create(sim, **changes):
    return send(sim, "POST", "/api/accounts", dict(ACCOUNT, **changes))


# -- signing ---------------------------------------------------------------------------------
def test_sign_is_hex_hmac_sha256_over_timestamp_and_raw_body():
    body = b'{"a": 1}'
    expected = hmac.new(TOKEN.encode(), b"1700000000" + body, hashlib.sha256).hexdigest()
    assert sign(TOKEN, "1700000000", body) == expected
    assert sign(TOKEN, "1700000000", b"") == hmac.new(TOKEN.encode(), b"1700000000", hashlib.sha256).hexdigest()


def test_connection_test_with_good_signature(sim):
    answer = send(sim, "GET", "/api/server/stats")
    assert answer.status_code == 200 and "data" in answer.json()


def test_wrong_token_is_401(sim):
    answer = send(sim, "GET", "/api/server/stats", token="not-the-token")
    assert answer.status_code == 401
    assert "error" in answer.json() and answer.json()["message"]


def test_missing_headers_are_401(sim):
    assert requests.get(sim.url + "/api/server/stats", timeout=5).status_code == 401
    stamp = str(int(time.time()))
    only_stamp = requests.get(sim.url + "/api/server/stats", headers={"X-Timestamp": stamp}, timeout=5)
    assert only_stamp.status_code == 401
    bad_stamp = requests.get(sim.url + "/api/server/stats", timeout=5,
                             headers={"X-Timestamp": "soon", "X-Signature": sign(TOKEN, "soon", b"")})
    assert bad_stamp.status_code == 401


def test_body_reserialized_after_signing_is_401(sim):
    signed = json.dumps(ACCOUNT).encode()                        # what the client signed
    sent = json.dumps(ACCOUNT, separators=(",", ":")).encode()   # same JSON, other bytes
    assert signed != sent and json.loads(signed) == json.loads(sent)
    answer = send(sim, "POST", "/api/accounts", raw=sent, signed_body=signed)
    assert answer.status_code == 401
    assert sim.accounts == {}
    assert send(sim, "POST", "/api/accounts", raw=sent).status_code == 201


def test_signature_covers_every_byte(sim):
    body = json.dumps(ACCOUNT).encode()
    answer = send(sim, "POST", "/api/accounts", raw=body + b" ", signed_body=body)
    assert answer.status_code == 401


def test_uppercase_hex_signature_is_refused(sim):
    stamp = str(int(time.time()))
    headers = {"X-Timestamp": stamp, "X-Signature": sign(TOKEN, stamp, b"").upper()}
    assert requests.get(sim.url + "/api/server/stats", headers=headers, timeout=5).status_code == 401


@pytest.mark.parametrize("age, status", [(301, 401), (299, 200), (-301, 401), (-299, 200)])
def test_timestamp_window(sim, age, status):
    answer = send(sim, "GET", "/api/server/stats", timestamp=int(time.time()) - age)
    assert answer.status_code == status


def test_window_edges_with_a_fixed_clock():
    with OpteriusSimulator(api_token=TOKEN, clock=lambda: 1_700_000_000) as sim:
        for stamp, status in [(1_699_999_700, 200), (1_699_999_699, 401), (1_700_000_300, 200),
                              (1_700_000_301, 401)]:
            assert send(sim, "GET", "/api/server/stats", timestamp=stamp).status_code == status, stamp


def test_repeated_identical_signature_is_accepted(sim):
    account_id = create(sim).json()["data"]["id"]
    stamp = int(time.time())
    first = send(sim, "GET", f"/api/accounts/{account_id}", timestamp=stamp)
    second = send(sim, "POST", f"/api/accounts/{account_id}/suspend", timestamp=stamp)
    assert first.request.headers["X-Signature"] == second.request.headers["X-Signature"]
    assert (first.status_code, second.status_code) == (200, 200)
    assert send(sim, "GET", f"/api/accounts/{account_id}", timestamp=stamp).status_code == 200


# -- operations ------------------------------------------------------------------------------
def test_create_returns_id_and_keeps_state(sim):
    answer = create(sim)
    assert answer.status_code == 201
    data = answer.json()["data"]
    assert isinstance(data["id"], int) and data["status"] == "active"
    account = sim.accounts["alice"]
    assert account.id == data["id"]
    assert (account.domain, account.package, account.email, account.password) == (
        "alice.example.com", "basic", "alice@example.com", "s3cur3p@ss")
    assert (account.disk_limit_mb, account.bandwidth_limit_mb) == (1024, 10240)
    assert not account.suspended


def test_account_info(sim):
    account_id = create(sim).json()["data"]["id"]
    data = send(sim, "GET", f"/api/accounts/{account_id}").json()["data"]
    assert data["username"] == "alice" and data["status"] == "active" and data["package"] == "basic"


def test_duplicate_username_or_domain_is_409(sim):
    assert create(sim).status_code == 201
    for changes in ({}, {"domain": "other.example.com"}, {"username": "bob"}):
        answer = create(sim, **changes)
        assert answer.status_code == 409 and answer.json()["error"] == "conflict"
    assert list(sim.accounts) == ["alice"]


@pytest.mark.parametrize("changes", [
    {"package": "Unlimited"}, {"username": "Al"}, {"username": "alice_1"}, {"password": "short"},
    {"domain": "not a domain"}, {"email": "nope"}, {"disk_limit_mb": "1024"}, {"extra": 1},
])
def test_invalid_create_is_422(sim, changes):
    answer = create(sim, **changes)
    assert answer.status_code == 422
    assert answer.json()["error"] == "validation_failed" and answer.json()["message"]
    assert sim.accounts == {}


@pytest.mark.parametrize("field", ["username", "password", "domain", "package", "email"])
def test_missing_field_is_422(sim, field):
    body = dict(ACCOUNT)
    del body[field]
    assert send(sim, "POST", "/api/accounts", body).status_code == 422


def test_unparsable_body_is_400(sim):
    assert send(sim, "POST", "/api/accounts", raw=b"{oops").status_code == 400


def test_suspend_and_unsuspend(sim):
    account_id = create(sim).json()["data"]["id"]
    answer = send(sim, "POST", f"/api/accounts/{account_id}/suspend")
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "suspended"
    assert sim.accounts["alice"].suspended
    again = send(sim, "POST", f"/api/accounts/{account_id}/suspend")
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert send(sim, "POST", f"/api/accounts/{account_id}/unsuspend").json()["data"]["status"] == "active"
    assert not sim.accounts["alice"].suspended
    assert send(sim, "POST", f"/api/accounts/{account_id}/unsuspend").status_code == 409


def test_terminate(sim):
    account_id = create(sim).json()["data"]["id"]
    answer = send(sim, "DELETE", f"/api/accounts/{account_id}")
    assert answer.status_code == 204 and answer.content == b""
    assert sim.accounts == {}
    assert send(sim, "GET", f"/api/accounts/{account_id}").status_code == 404


def test_terminate_with_data_answer_when_configured():
    with OpteriusSimulator(api_token=TOKEN, delete_no_content=False) as sim:
        account_id = create(sim).json()["data"]["id"]
        answer = send(sim, "DELETE", f"/api/accounts/{account_id}")
        assert answer.status_code == 200 and answer.json()["data"]["id"] == account_id


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/accounts/99"), ("DELETE", "/api/accounts/99"),
    ("POST", "/api/accounts/99/suspend"), ("POST", "/api/accounts/99/unsuspend"),
])
def test_unknown_account_is_404(sim, method, path):
    answer = send(sim, method, path)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_unknown_route_and_method(sim):
    assert send(sim, "GET", "/api/nothing").status_code == 404
    assert send(sim, "PUT", "/api/accounts").status_code == 405
