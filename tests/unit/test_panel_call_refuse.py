"""panel_call's ``refuse`` and ``report``: the read decides and the call reports, in one task.

One real ansible-playbook run (execute.run) over four hosts, each reading its own account from a
small HTTP server: a match reports, a mismatch is refused under the check's name, a mismatch
whose check asks for it stops for a human (outcome needs_attention), and a failed call neither
refuses nor reports. The argument errors are driven directly, without a run.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading

import pytest

from provisiond import execute
from provisiond.config import bundled_dir
from provisiond.crypto import Redactor

PLUGIN = bundled_dir("roles") / "panel_call" / "action_plugins" / "panel_call.py"
_spec = importlib.util.spec_from_file_location("panel_call_refuse_plugin", PLUGIN)
pc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pc)

ACCOUNTS = {"match": "match.example", "other": "else.example", "held": "else.example"}
SECRET = "s3cret-Token-x1"

PLAYBOOK = """
- name: Read and decide
  hosts: all
  gather_facts: false
  tasks:
    - name: Read the account
      panel_call:
        url: "{{ panel_url }}/account?user={{ account.username }}"
        fail_when: {path: found, in: [false]}
        message: reason
        refuse:
          - name: Refuse an account of another domain
            when:
              - read.answer.domain != account.domain
              - not account.hold
            msg: >-
              {{ account.username }} is on the panel for
              {{ read.answer.domain }}, not {{ account.domain }} ({{ panel_token }})
          - name: Stop for a human
            when: read.answer.domain != account.domain
            outcome: needs_attention
            msg: "held: {{ read.answer.domain }}"
        report: {remote_id: "id-{{ read.answer.domain }}", username: "{{ account.username }}"}
      register: read

    - name: Count what follows
      ansible.builtin.debug: {msg: after}
"""


class _Panel(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        user = self.path.rsplit("=", 1)[-1]
        found = user in ACCOUNTS
        body = json.dumps({"found": found, "domain": ACCOUNTS.get(user), "reason": f"no {user}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Panel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hosts = {name: {"account": {"username": name, "domain": "match.example", "hold": name == "held"}}
             for name in ("match", "other", "held", "missing")}
    spec = execute.RunSpec(
        playbook=PLAYBOOK, timeout=120, redactor=Redactor([SECRET]),
        inventory={"all": {"vars": {"ansible_connection": "local",
                                    "panel_url": f"http://127.0.0.1:{server.server_address[1]}"},
                           "hosts": hosts}},
        secrets={"panel_token": SECRET, "redact_values": [SECRET]},
        runs_dir=tmp_path_factory.mktemp("runs"))
    try:
        yield execute.run(spec)
    finally:
        server.shutdown()
        server.server_close()


def test_a_call_whose_checks_pass_reports_and_the_play_goes_on(outcome):
    host = outcome.host("match")
    assert host.ok and host.stats == {"remote_id": "id-match.example", "username": "match"}
    assert [e["event_data"]["task"] for e in host.events] == ["Read the account", "Count what follows"]


def test_a_refusal_fails_the_call_under_the_checks_name_with_its_message(outcome):
    host = outcome.host("other")
    assert not host.ok and host.failed_task == "Refuse an account of another domain"
    assert host.message == "other is on the panel for else.example, not match.example (********)"
    assert host.transient is False and host.stats == {}          # neither a retry nor a report
    assert [e["event_data"]["task"] for e in host.events] == ["Read the account"]


def test_a_check_may_stop_the_job_for_a_human(outcome):
    host = outcome.host("held")
    assert not host.ok and host.failed_task == "Stop for a human"
    assert host.message == "held: else.example" and host.stats == {"outcome": "needs_attention"}


def test_a_failed_call_neither_refuses_nor_reports(outcome):
    host = outcome.host("missing")
    assert not host.ok and host.failed_task == "Read the account"
    assert host.message == "no missing" and host.stats == {}


@pytest.mark.parametrize("refuse, expected", [
    ({"name": "x"}, "refuse must be a list of checks {name, when, msg[, outcome]}"),
    ([{"name": "x", "when": "true"}], "every refuse check needs name, when and msg"),
    ([{"name": "x", "when": "true", "msg": "m", "why": 1}], "refuse check 'x' has unknown keys: ['why']"),
    ([{"name": "x", "when": "true", "msg": "m", "outcome": "failed"}],
     "refuse check 'x': outcome may only be needs_attention"),
    ([{"name": "x", "when": "true", "msg": "m"}], ""),
])
def test_a_bad_refuse_argument_is_named(refuse, expected):
    assert pc._check_problem(refuse) == expected
