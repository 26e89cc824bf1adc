"""panel_call's ``sign`` argument, byte for byte against a receiver that checks the HMAC.

The action is driven directly (no ansible-playbook run): a task stand-in carries the arguments,
the receiver records the bytes it received, and ``tests.helpers.hmac_reference`` says what their
signature must be. (No bundled panel checks an HMAC: the Opterius Panel takes a Bearer key; the
scheme is the one the Opterius Commerce module sends.)
"""

from __future__ import annotations

import hmac
import importlib.util
import json
import time
import types
from pathlib import Path

import pytest

from provisiond.sandbox.base import PanelSimulator, Response
from tests.helpers import hmac_reference as sign

PLUGIN = Path(__file__).resolve().parents[2] / "roles" / "panel_call" / "action_plugins" / "panel_call.py"
KEY = "canary-opterius-key-5Jw8Tq"
ACCOUNT = {"username": "alice", "password": "s3cur3p@ss", "domain": "alice.example.com",
           "package": "basic", "email": "alice@example.com", "disk_limit_mb": 1024,
           "bandwidth_limit_mb": 0}


def _load_plugin():
    spec = importlib.util.spec_from_file_location("panel_call_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


panel_call = _load_plugin()


def call(task_vars=None, **args) -> dict:
    """Run the action once with ``args``, as Ansible would in the controller."""
    task = types.SimpleNamespace(args=args, async_val=0, check_mode=False, action="panel_call")
    connection = types.SimpleNamespace(_shell=types.SimpleNamespace(tmpdir=None))
    return panel_call.ActionModule(task, connection, None, None, None).run(task_vars=task_vars or {})


def signing(key=KEY):
    return {"key": key, "timestamp_header": "X-Timestamp", "signature_header": "X-Signature"}


class SignedReceiver(PanelSimulator):
    """Checks X-Timestamp / X-Signature over the bytes received; echoes the JSON body as ``data``."""

    def handle(self, request):
        stamp, given = request.headers.get("x-timestamp", ""), request.headers.get("x-signature", "")
        if not stamp or not given:
            return Response(401, b'{"message":"Missing X-Timestamp or X-Signature header."}')
        if not hmac.compare_digest(sign(KEY, stamp, request.body), given):
            return Response(401, b'{"message":"Invalid signature."}')
        data = json.loads(request.body) if request.body.strip() else {}
        return Response(200, json.dumps({"data": data}).encode())


@pytest.fixture
def sim():
    with SignedReceiver() as simulator:
        yield simulator


def assert_signed_as_received(request) -> None:
    stamp = request.headers["x-timestamp"]
    assert stamp.isdigit() and abs(int(stamp) - time.time()) <= 5
    assert request.headers["x-signature"] == sign(KEY, stamp, request.body)


# -- the pure pieces -------------------------------------------------------------------------
@pytest.mark.parametrize("key, stamp, body", [
    (KEY, "1700000000", b""),
    (KEY, "1700000000", b'{"a":1}'),
    ("clé-ünïcode", "1", "{\"domain\":\"bücher.example\"}".encode()),
])
def test_signature_matches_the_simulator(key, stamp, body):
    assert panel_call.signature(key, stamp, body) == sign(key, stamp, body)
    assert panel_call.signature(key, stamp, body) == panel_call.signature(key, stamp, body).lower()


def test_json_body_is_compact_and_deterministic():
    assert panel_call.json_bytes({"b": [1, 2], "a": {"y": None, "x": True}}) == b'{"a":{"x":true,"y":null},"b":[1,2]}'
    assert panel_call.json_bytes(dict(reversed(list(ACCOUNT.items())))) == panel_call.json_bytes(ACCOUNT)
    assert panel_call.json_bytes({"d": "bücher"}) == b'{"d":"b\\u00fccher"}'


# -- on the wire -----------------------------------------------------------------------------
def test_signed_json_body_is_the_one_sent(sim):
    result = call(url=sim.url + "/api/accounts", method="POST", json=ACCOUNT, sign=signing())
    assert not result.get("failed"), result
    assert result["status"] == 200 and result["answer"]["data"] == ACCOUNT
    received = sim.requests[-1]
    assert received.body == panel_call.json_bytes(ACCOUNT)
    assert received.headers["content-type"] == "application/json"
    assert_signed_as_received(received)


def test_bodyless_requests_sign_the_timestamp_alone(sim):
    read = call(url=f"{sim.url}/api/accounts/7", sign=signing())
    suspended = call(url=f"{sim.url}/api/accounts/7/suspend", method="POST", sign=signing())
    assert not read.get("failed") and not suspended.get("failed"), (read, suspended)
    for received in sim.requests[-2:]:
        assert received.body == b""
        assert received.headers["x-signature"] == sign(KEY, received.headers["x-timestamp"], b"")


def test_raw_body_is_signed_and_sent_exactly(sim):
    raw = json.dumps(ACCOUNT, indent=2)  # not the compact form: the bytes given are the bytes sent
    result = call(url=sim.url + "/api/accounts", method="POST", body=raw, sign=signing(),
                  headers={"Content-Type": "application/json"})
    assert not result.get("failed"), result
    assert sim.requests[-1].body == raw.encode()
    assert_signed_as_received(sim.requests[-1])


class AnythingGoes(PanelSimulator):
    """Answers every request with an empty ``data``: to see headers the contract does not name."""

    def handle(self, request):
        return Response(200, b'{"data":{}}')


def test_header_names_default_to_the_contract_and_can_be_changed(sim):
    result = call(url=sim.url + "/api/server/stats", sign={"key": KEY})
    assert not result.get("failed"), result
    with AnythingGoes() as other:
        call(url=other.url + "/x", sign={"key": KEY, "timestamp_header": "X-Stamp",
                                          "signature_header": "X-Hmac"})
        received = other.requests[-1]
        assert received.headers["x-hmac"] == sign(KEY, received.headers["x-stamp"], b"")
        assert "x-signature" not in received.headers


def test_wrong_key_is_refused_with_the_panel_message(sim):
    result = call(url=sim.url + "/api/server/stats", sign=signing("not-the-key"), message="message")
    assert result["failed"] and result["status"] == 401 and not result["transient"]
    assert result["msg"] == "HTTP 401: Invalid signature."


# -- the key never comes back ----------------------------------------------------------------
def test_key_is_masked_when_the_panel_echoes_it(sim):
    sim.fail_next(1, status=500, body=f"debug: signing key {KEY} rejected".encode())
    result = call(url=sim.url + "/api/server/stats", sign=signing())
    assert result["failed"] and result["transient"]
    assert KEY not in json.dumps(result) and "********" in result["msg"]


def test_key_is_masked_in_error_messages(sim):
    # http.client quotes a bad header value in its exception; the message must not carry the key.
    result = call(url=sim.url + "/api/server/stats", sign=signing(),
                  headers={"Authorization": f"Bearer {KEY}\n"})
    assert result["failed"] and "ValueError" in result["msg"]
    assert KEY not in json.dumps(result)


@pytest.mark.parametrize("bad, expected", [
    ({"key": KEY, "algorithm": "sha1"}, "sign has unknown keys: ['algorithm']"),
    ({"key": "", "timestamp_header": "X-Timestamp"}, "sign.key is missing or empty"),
    (KEY, "sign must be a mapping"),
], ids=["unknown-key", "empty-key", "not-a-mapping"])
def test_bad_sign_argument_is_refused_without_quoting_it(sim, bad, expected):
    result = call(url=sim.url + "/api/server/stats", sign=bad, task_vars={"redact_values": [KEY]})
    assert result["failed"] and expected in result["msg"]
    assert KEY not in json.dumps(result)
    assert sim.requests == []


def test_unsigned_requests_carry_no_signature(sim):
    result = call(url=sim.url + "/api/server/stats", message="message")
    assert "x-signature" not in sim.requests[-1].headers
    assert result["failed"] and result["msg"] == "HTTP 401: Missing X-Timestamp or X-Signature header."


def test_basic_auth_and_returned_headers_against_hestia():
    """Hestia wants HTTP Basic only for its legacy mode; here the Hestia exit code header matters."""
    from provisiond.sandbox.hestia import HestiaSimulator
    with HestiaSimulator() as hestia:
        form = {"access_key": hestia.access_key, "secret_key": hestia.secret_key, "cmd": "v-list-user",
                "arg1": "nobody-here", "arg2": "json", "returncode": "yes"}
        result = call({"redact_values": [hestia.secret_key]}, url=f"{hestia.url}/api/", method="POST",
                      form=form, parse="text", ok_status=[200, 400], return_headers=["Hestia-Exit-Code"],
                      basic_auth={"user": "admin", "password": hestia.secret_key})
        assert result["headers"] == {"Hestia-Exit-Code": "3"}
        sent = hestia.requests[-1].headers["authorization"]
        assert sent.startswith("Basic ") and hestia.secret_key not in json.dumps(result)


# -- redirects (not signing, but the same harness) ----------------------------------------------
def test_a_redirect_is_reported_not_followed_when_asked():
    """Laravel answers a validation error without ``Accept: application/json`` with a 302."""
    from provisiond.sandbox.opterius import OpteriusSimulator
    with OpteriusSimulator(api_key="opt_redirect-test-key") as panel:
        args = dict(url=panel.url + "/api/v1/accounts/create", method="POST", json={"username": "a"},
                    headers={"Authorization": "Bearer opt_redirect-test-key"}, message="message")
        kept = call(follow_redirects=False, **args)
        assert kept["failed"] and not kept["transient"] and kept["status"] == 302
        assert kept["msg"] == f"HTTP 302: redirected to {panel.url}"
        assert [r.method for r in panel.requests] == ["POST"]
        followed = call(**args)  # the default follows, re-sending the POST as a GET to the site root
        assert [r.method for r in panel.requests] == ["POST", "POST", "GET"]
        assert followed["status"] == 404
