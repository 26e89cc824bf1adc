"""Pure helpers of the panel_call action plugin (roles/panel_call/action_plugins/panel_call.py)."""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import threading
import urllib.parse

import pytest

from provisiond.config import bundled_dir

PLUGIN = bundled_dir("roles") / "panel_call" / "action_plugins" / "panel_call.py"
_spec = importlib.util.spec_from_file_location("panel_call_plugin", PLUGIN)
pc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pc)

WHM_OK = {"metadata": {"command": "createacct", "result": 1, "reason": "Account Creation Ok",
                       "output": {"raw": "done\n"}},
          "data": {"acct": [{"user": "bob", "suspended": 0}, {"user": "amy"}]}}
WHM_FAIL = {"metadata": {"command": "createacct", "result": 0,
                         "reason": "Sorry, a group for that username already exists."}}


@pytest.mark.parametrize("path, expected", [
    ("metadata.result", 1),
    ("metadata.output.raw", "done\n"),
    ("data.acct.0.user", "bob"),
    ("data.acct.1.user", "amy"),
    ("data.acct.2.user", None),           # index past the end
    ("data.acct.x", None),                # not an index
    ("metadata.missing.deeper", None),
    ("metadata.result.deeper", None),     # through a scalar
    (".", WHM_OK),
    ("", WHM_OK),
])
def test_lookup(path, expected):
    assert pc._lookup(WHM_OK, path) == expected


@pytest.mark.parametrize("answer, rule, fails", [
    (WHM_FAIL, {"path": "metadata.result", "in": [0]}, True),
    (WHM_OK, {"path": "metadata.result", "in": [0]}, False),
    ({"metadata": {"result": "0"}}, {"path": "metadata.result", "in": [0]}, True),   # "0" is 0
    ({"metadata": {"result": " 0 "}}, {"path": "metadata.result", "in": ["0"]}, True),
    (WHM_FAIL, {"path": "metadata.result", "not_in": [1]}, True),
    (WHM_OK, {"path": "metadata.result", "not_in": [1]}, False),
    ({"metadata": {"result": "1"}}, {"path": "metadata.result", "not_in": [1]}, False),
    ({"status": "error"}, {"path": "status", "in": ["error", "failed"]}, True),
    ({"status": "success"}, {"path": "status", "not_in": ["success"]}, False),
    ({}, {"path": "metadata.result", "not_in": [1]}, True),    # missing field: not a success
    ({}, {"path": "metadata.result", "in": [0]}, False),
    ("error: no such user", {"path": ".", "in": ["error: no such user"]}, True),
    (WHM_FAIL, {"path": "metadata.result"}, False),            # no in/not_in: never fails
])
def test_rule_fails(answer, rule, fails):
    assert pc._rule_fails(answer, rule) is fails


@pytest.mark.parametrize("text, how, expected", [
    ('{"a": 1, "b": [1, 2]}', "json", {"a": 1, "b": [1, 2]}),
    ("  ", "json", None),
    ("a=1&b=two+words&c=%26", "form", {"a": "1", "b": "two words", "c": "&"}),
    ("list[]=a&list[]=b", "form", {"list": ["a", "b"]}),
    ("list[]=a", "form", {"list": ["a"]}),
    ("x=1&x=2", "form", {"x": ["1", "2"]}),
    ("error=0&text=&details=\n", "form", {"error": "0", "text": "", "details": ""}),
    # a key that begins like an entity without its ";" stays a key (DirectAdmin's quota, ...)
    ("bandwidth=2048.25&quota=512.5&ampm=1&lt=2", "form",
     {"bandwidth": "2048.25", "quota": "512.5", "ampm": "1", "lt": "2"}),
    ("text=&quot;x&quot;&details=&lt;b&gt;", "form", {"text": '"x"', "details": "<b>"}),
    ("plain answer", "raw", "plain answer"),
])
def test_parse(text, how, expected):
    assert pc._parse(text, how) == expected


def test_parse_bad_json_raises_value_error():
    with pytest.raises(ValueError):
        pc._parse("<html>login</html>", "json")


SECRET = 'p@ss w/rd&"+1é'
FORMS = [SECRET, urllib.parse.quote(SECRET, safe=""), urllib.parse.quote_plus(SECRET),
         json.dumps(SECRET)[1:-1]]


def test_needles_cover_every_encoding_longest_first():
    needles = pc._needles([SECRET, "abc", "", 12345])
    assert set(FORMS) | {"12345"} == set(needles)
    assert [len(n) for n in needles] == sorted((len(n) for n in needles), reverse=True)
    assert pc._needles(None) == []


@pytest.mark.parametrize("form", FORMS)
def test_redact_masks_each_form_in_nested_results(form):
    result = {"msg": f"HTTP 500: bad password {form}", "answer": {"echo": [form, 3, None]},
              form: "as a key", "status": 500}
    redacted = pc._redact(result, pc._needles([SECRET]))
    assert redacted == {"msg": f"HTTP 500: bad password {pc.MASK}",
                        "answer": {"echo": [pc.MASK, 3, None]}, pc.MASK: "as a key", "status": 500}
    assert not any(f in json.dumps(redacted, ensure_ascii=False) for f in FORMS)


def test_redact_leaves_short_secrets_alone():
    assert pc._redact({"msg": "abc ok"}, pc._needles(["abc"])) == {"msg": "abc ok"}


@pytest.mark.parametrize("paths, expected", [
    (["metadata.reason"], "Sorry, a group for that username already exists."),
    ("metadata.reason", "Sorry, a group for that username already exists."),
    (["metadata.command", "metadata.reason"],
     "createacct: Sorry, a group for that username already exists."),
    (["metadata.missing", "metadata.command", "metadata.empty"], "createacct"),
    (["metadata.result", "metadata.command"], "0: createacct"),
    ([], ""),
    (None, ""),
])
def test_message_joins_the_paths_that_have_a_value(paths, expected):
    answer = {"metadata": {**WHM_FAIL["metadata"], "empty": ""}}
    assert pc._message(answer, {"message": paths}) == expected


class _Endless(http.server.BaseHTTPRequestHandler):
    """Answers with ``status`` and a body of up to 64 MiB, sent until the client stops reading."""

    status = 503

    def do_GET(self):
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        chunk = b'{"pad": "' + b"x" * 65536
        with contextlib.suppress(OSError):
            for _ in range(1024):
                self.wfile.write(chunk)

    def log_message(self, *args):
        pass


@pytest.fixture
def endless():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status, transient", [(503, True), (200, False)])
def test_a_huge_answer_is_read_to_1_mib_and_kept_as_an_excerpt(endless, status, transient):
    endless.status = status
    module = pc.ActionModule.__new__(pc.ActionModule)  # _call needs no Ansible task
    result = module._call({"url": f"http://127.0.0.1:{endless.server_address[1]}/json-api/x", "timeout": 30})
    assert result["failed"] is True and result["transient"] is transient
    assert f"HTTP {status}: the panel's answer is larger than 1048576 bytes" in result["msg"]
    assert len(json.dumps(result)) < 5000  # message, flag and excerpt survive any event limit


def test_a_failed_call_keeps_an_excerpt_of_a_large_answer(endless):
    body = json.dumps({"error": "maintenance", "pad": "x" * 800_000})
    handler = type("Big", (_Endless,), {"do_GET": lambda self: (
        self.send_response(503), self.send_header("Content-Type", "application/json"),
        self.send_header("Content-Length", str(len(body))), self.end_headers(), self.wfile.write(body.encode()))})
    endless.RequestHandlerClass = handler
    module = pc.ActionModule.__new__(pc.ActionModule)
    result = module._call({"url": f"http://127.0.0.1:{endless.server_address[1]}/x", "message": "error"})
    assert (result["failed"], result["transient"], result["msg"]) == (True, True, "HTTP 503: maintenance")
    assert result["answer"] == body[:pc.EXCERPT]


def test_max_answer_raises_the_limit_for_a_whole_servers_listing(endless):
    body = json.dumps({"acct": [{"user": f"u{i:06d}"} for i in range(80_000)]})  # about 1.6 MB
    assert len(body) > pc.MAX_ANSWER
    handler = type("Listing", (_Endless,), {"do_GET": lambda self: (
        self.send_response(200), self.send_header("Content-Type", "application/json"),
        self.send_header("Content-Length", str(len(body))), self.end_headers(), self.wfile.write(body.encode()))})
    endless.RequestHandlerClass = handler
    module = pc.ActionModule.__new__(pc.ActionModule)
    url = f"http://127.0.0.1:{endless.server_address[1]}/json-api/listaccts"
    assert module._call({"url": url})["failed"] is True  # 1 MiB unless told
    result = module._call({"url": url, "max_answer": 4 * pc.MAX_ANSWER})
    assert not result.get("failed") and len(result["answer"]["acct"]) == 80_000
