"""panel_call: one HTTP call to a control panel, made in the controller (see the role's README).

Running in the controller avoids a module subprocess per call (about 0.5 CPU-s each with
ansible.builtin.uri). The result never carries a value listed in ``redact_values`` nor the
``sign`` key. A signed request's body is serialized once and those very bytes are signed and
sent: a panel that recomputes the HMAC over what it received must find the same bytes.

``refuse`` and ``report`` let the call that reads decide and report, instead of a ``fail`` and a
``set_stats`` task after it: every such task is a forked worker per host (25-70 ms of CPU,
skipped or not; panel_call itself runs in a thread under provisiond_linear), so a create is two
tasks (read, create) rather than four. Their conditions and
templates are evaluated after the call, with the task's ``register`` name bound to its result.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import html
import json
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from ansible.plugins.action import ActionBase

MASK = "********"
MAX_ANSWER = 1024 * 1024  # bytes of an answer read at most; a panel's JSON is far smaller
MAX_ANSWER_CEILING = 64 * MAX_ANSWER  # what ``max_answer`` may raise it to (a whole server's accounts)
EXCERPT = 2000            # characters of a failed call's answer kept in the result
ARGS = {"url", "method", "params", "form", "json", "body", "headers", "parse", "ok_status",
        "fail_when", "message", "html_is_auth_failure", "timeout", "validate_certs", "sign",
        "basic_auth", "return_headers", "follow_redirects", "max_answer", "refuse", "report"}
SIGN_ARGS = {"key", "timestamp_header", "signature_header"}
CHECK_ARGS = {"name", "when", "msg", "outcome"}
DEFERRED = {"refuse", "report"}  # templated after the call, with its result in scope


def signature(key, timestamp: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 keyed by ``key`` over ``<timestamp><body bytes>``."""
    return hmac.new(str(key).encode("utf-8"), timestamp.encode("ascii") + body, hashlib.sha256).hexdigest()


def json_bytes(value) -> bytes:
    """The one serialization of a JSON body: compact and with sorted keys, so it is deterministic."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _sign_problem(sign) -> str:
    """Why the ``sign`` argument is unusable ('' when fine); never quotes a value, only names."""
    if not isinstance(sign, dict):
        return "sign must be a mapping with key, timestamp_header and signature_header"
    unknown = sorted(str(k) for k in set(sign) - SIGN_ARGS)
    if unknown:
        return f"sign has unknown keys: {unknown}"
    if sign.get("key") in (None, ""):
        return "sign.key is missing or empty"
    return ""


def _redact(value, needles):
    """``value`` with every needle masked. Only the needles found in its text are replaced: a
    run's needles are every secret of its batch, hundreds, and an answer holds none of them."""
    texts = []
    _texts(value, texts)
    text = "\0".join(texts)
    return _masked(value, [needle for needle in needles if needle in text])


def _texts(value, into):
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            into.append(str(k))
            _texts(v, into)
    elif isinstance(value, list):
        for v in value:
            _texts(v, into)


def _masked(value, needles):
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, MASK)
        return value
    if isinstance(value, dict):
        return {_masked(str(k), needles): _masked(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, needles) for v in value]
    return value


def _needles(secrets) -> list[str]:
    """Each secret as it may appear in an answer (plain, URL-encoded, JSON-escaped), longest
    first; made once per run's secrets, not once per call."""
    return _needles_of(tuple(str(secret) for secret in secrets or ()))


@functools.lru_cache(maxsize=32)
def _needles_of(secrets: tuple[str, ...]) -> list[str]:
    found = set()
    for secret in secrets:
        if len(secret) >= 4:
            found.update({secret, urllib.parse.quote(secret, safe=""),
                          urllib.parse.quote_plus(secret), json.dumps(secret)[1:-1]})
    return sorted(found, key=len, reverse=True)


def _lookup(answer, path):
    if path in (".", ""):
        return answer
    value = answer
    for part in str(path).split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _same(a, b):
    return a == b or str(a).strip() == str(b).strip()


# Whole entities only (with their ";"), as PHP's html_entity_decode reads them: html.unescape
# also takes HTML5's legacy entities without ";", and so turned "&quota=512" into '"a=512'.
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _unescape_entities(text):
    return _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)


def _parse(text, how):
    if how == "json":
        return json.loads(text) if text.strip() else None
    if how == "form":  # DirectAdmin: HTML-unescape, then parse as a query string
        parsed = urllib.parse.parse_qs(_unescape_entities(text.strip()), keep_blank_values=True)
        return {k.removesuffix("[]"): (v if k.endswith("[]") or len(v) > 1 else v[0])
                for k, v in parsed.items()}
    return text


def _check_problem(refuse) -> str:
    """Why the ``refuse`` argument is unusable ('' when fine)."""
    if not isinstance(refuse, list):
        return "refuse must be a list of checks {name, when, msg[, outcome]}"
    for check in refuse:
        if not isinstance(check, dict) or not {"name", "when", "msg"} <= set(check):
            return "every refuse check needs name, when and msg"
        unknown = sorted(str(k) for k in set(check) - CHECK_ARGS)
        if unknown:
            return f"refuse check {check.get('name')!r} has unknown keys: {unknown}"
        if check.get("outcome") not in (None, "needs_attention"):
            return f"refuse check {check.get('name')!r}: outcome may only be needs_attention"
    return ""


def _stats(data: dict) -> dict:
    """What ``set_stats: {data: ..., per_host: true}`` puts in its result (execute.py reads it)."""
    return {"data": data, "per_host": True, "aggregate": True}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    @classmethod
    def finalize_task_arg(cls, name, value, templar, context):
        """``refuse`` and ``report`` read the call's own result: they are templated after it."""
        if name in DEFERRED:
            return value
        return super().finalize_task_arg(name, value, templar, context)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        sign = args.get("sign")
        key = [sign.get("key")] if isinstance(sign, dict) and sign.get("key") else []
        needles = _needles([*(task_vars.get("redact_values") or ()), *key])
        unknown = set(args) - ARGS
        if unknown or "url" not in args:
            result.update(failed=True, msg=f"panel_call: unknown or missing arguments: {sorted(unknown) or ['url']}")
            return _redact(result, needles)
        if sign is not None and _sign_problem(sign):  # sign: null (or omitted) sends unsigned
            result.update(failed=True, msg=f"panel_call: {_sign_problem(sign)}")
            return _redact(result, needles)
        problem = _check_problem(args["refuse"]) if args.get("refuse") is not None else ""
        if not problem and (args.get("refuse") or args.get("report")) and not self._task.register:
            problem = "refuse and report read the call's result by its register name: add register"
        if not problem and args.get("report") is not None and not isinstance(args["report"], dict):
            problem = "report must be a mapping of what to report"
        if problem:
            result.update(failed=True, msg=f"panel_call: {problem}")
            return _redact(result, needles)
        try:
            result.update(self._call(args))
            if not result.get("failed") and (args.get("refuse") or args.get("report")):
                result.update(self._decide(args, result, task_vars))
        except Exception as exc:  # a panel call must always end as a result, never a traceback
            result.update(failed=True, transient=False, msg=f"panel_call: {type(exc).__name__}: {exc}")
        result.setdefault("changed", not result.get("failed") and str(args.get("method", "GET")).upper() != "GET")
        return _redact(result, needles)

    def _decide(self, args, result, task_vars):
        """The first ``refuse`` check that holds fails the call (not transient), named as the
        check (execute.py records it as the failing step); otherwise ``report`` is reported."""
        own = {k: v for k, v in result.items() if k != "ansible_stats"}
        own.setdefault("changed", str(args.get("method", "GET")).upper() != "GET")
        templar = self._templar.copy_with_new_env(
            available_variables={**task_vars, self._task.register: {**own, "failed": False}})
        for check in args.get("refuse") or ():
            conditions = check["when"] if isinstance(check["when"], list) else [check["when"]]
            if all(templar.evaluate_conditional(c) for c in conditions):
                refused = {"failed": True, "transient": False, "check": str(check["name"]),
                           "msg": str(templar.template(check["msg"])).strip()}
                if check.get("outcome"):
                    refused["ansible_stats"] = _stats({"outcome": check["outcome"]})
                return refused
        if args.get("report"):
            return {"ansible_stats": _stats(templar.template(args["report"]))}
        return {}

    def _request(self, args):
        url = args["url"]
        if args.get("params"):
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(args["params"])
        headers = {str(k): str(v) for k, v in (args.get("headers") or {}).items()}
        data = None
        if args.get("form") is not None:
            data = urllib.parse.urlencode(args["form"]).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif args.get("json") is not None:
            data = json_bytes(args["json"])
            headers.setdefault("Content-Type", "application/json")
        elif args.get("body") is not None:
            data = str(args["body"]).encode()
        sign = args.get("sign")
        if sign:  # over the bytes sent; a request without a body signs the timestamp alone
            stamp = str(int(time.time()))
            headers[str(sign.get("timestamp_header") or "X-Timestamp")] = stamp
            headers[str(sign.get("signature_header") or "X-Signature")] = signature(sign["key"], stamp, data or b"")
        basic = args.get("basic_auth")
        if basic:
            pair = f"{basic['user']}:{basic['password']}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return urllib.request.Request(url, data=data, headers=headers,
                                      method=str(args.get("method", "GET")).upper())

    def _call(self, args):
        request = self._request(args)
        opener = _opener(request.full_url.startswith("https") and not _truthy(args.get("validate_certs", True)),
                         not _truthy(args.get("follow_redirects", True)))
        limit = min(int(args.get("max_answer") or MAX_ANSWER), MAX_ANSWER_CEILING)
        started = time.monotonic()
        try:
            with opener.open(
                    request, timeout=float(args.get("timeout", 30))) as response:
                status, answer_headers, raw = response.status, response.headers, response.read(limit + 1)
        except urllib.error.HTTPError as exc:
            status, answer_headers, raw = exc.code, exc.headers, exc.read(limit + 1)
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            return {"failed": True, "transient": True, "status": None,
                    "msg": f"cannot reach the panel at {_origin(request.full_url)}: {reason}"}
        text = raw[:limit].decode("utf-8", "replace")
        ctype = answer_headers.get("Content-Type", "")
        outcome = {"status": status, "elapsed": round(time.monotonic() - started, 3)}
        if args.get("return_headers"):  # e.g. Hestia's exit code travels in Hestia-Exit-Code
            outcome["headers"] = {str(n): answer_headers.get(str(n)) for n in args["return_headers"]}
        retry = status >= 500 or status == 429
        if len(raw) > limit:  # read no further: a cut answer cannot be parsed anyway
            return {**outcome, "failed": True, "transient": retry and status not in _statuses(args),
                    "answer": text[:EXCERPT],
                    "msg": f"HTTP {status}: the panel's answer is larger than {limit} bytes "
                           f"(it begins: {text.strip()[:300]})"}
        if _truthy(args.get("html_is_auth_failure")) and "html" in ctype.lower():
            return {**outcome, "failed": True, "transient": False, "answer": text[:500],
                    "msg": "the panel refused the login (it answered with its HTML login page)"}
        try:
            answer = _parse(text, args.get("parse", "json"))
        except ValueError:
            answer = text
            if status in _statuses(args):
                return {**outcome, "failed": True, "transient": status >= 500, "answer": text[:EXCERPT],
                        "msg": f"the panel answered HTTP {status} with a body that is not {args.get('parse', 'json')}"}
        # A failed call keeps an excerpt: a huge answer would swell the task's event past what
        # ansible-runner keeps (MAX_EVENT_RES), and the message and transient flag with it.
        failed_answer = answer if len(text) <= EXCERPT else text[:EXCERPT]
        outcome["answer"] = answer
        if status not in _statuses(args):
            message = _message(answer, args) or (text.strip()[:300] or "no body")
            if 300 <= status < 400:  # e.g. Laravel's answer to a validation error without Accept: json
                message = f"redirected to {answer_headers.get('Location') or 'nowhere'}"
            return {**outcome, "failed": True, "transient": retry, "answer": failed_answer,
                    "msg": f"HTTP {status}: {str(message)[:2000]}"}
        rules = args.get("fail_when") or []
        for rule in rules if isinstance(rules, list) else [rules]:
            if _rule_fails(answer, rule):
                # A rule may name where its own message is (a two-level answer such as WHM's
                # uapi_cpanel: WHM's metadata.reason, or the UAPI call's data.uapi.errors).
                said = _message(answer, rule if "message" in rule else args)
                return {**outcome, "failed": True, "transient": False, "answer": failed_answer,
                        "msg": str(said or f"the panel reported a failure ({rule['path']})")[:2000]}
        return outcome


@functools.lru_cache(maxsize=4)
def _opener(unverified: bool, keep_redirects: bool) -> urllib.request.OpenerDirector:
    """One opener per kind, shared by the run's calls and threads, as ``urlopen`` shares its
    own: building one per call (its ten handlers) cost more than reading the answer."""
    handlers = []
    if unverified:
        handlers.append(urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))
    if keep_redirects:
        handlers.append(_KeepRedirects())
    return urllib.request.build_opener(*handlers)


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """``follow_redirects: false``: a 3xx is the answer (urllib would re-send a POST as a GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _statuses(args):
    return [int(s) for s in (args.get("ok_status") or [200])]


def _truthy(value):
    return str(value).lower() in ("1", "true", "yes", "on")


def _origin(url):
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _rule_fails(answer, rule):
    value = _lookup(answer, rule.get("path", "."))
    if "in" in rule:
        return any(_same(value, v) for v in rule["in"])
    if "not_in" in rule:
        return not any(_same(value, v) for v in rule["not_in"])
    return False


def _message(answer, args):
    paths = args.get("message") or []
    if isinstance(paths, str):
        paths = [paths]
    parts = [_lookup(answer, p) for p in paths]
    parts = ["; ".join(map(str, p)) if isinstance(p, list) else p for p in parts]  # e.g. UAPI's errors
    return ": ".join(str(p) for p in parts if p not in (None, ""))
