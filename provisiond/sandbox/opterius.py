"""A strict Opterius Panel simulator (shared/panels/opterius.md): HMAC-SHA256 signed JSON REST.

Every request must carry ``X-Timestamp`` (Unix seconds) and ``X-Signature``, the lowercase hex
HMAC-SHA256 keyed by the api token over ``<timestamp><raw body bytes>``. The simulator recomputes
it over the exact bytes it received (so a body re-serialized after signing fails), compares in
constant time, and answers 401 for a wrong signature or a timestamp more than ``window`` seconds
away from its clock. It keeps no replay cache: identical signatures (two body-less requests in the
same second) must both be accepted, as the contract says.

Success answers carry ``data``; errors carry ``error`` (a short code) and ``message`` (human text).
Status codes beyond 401 follow Opterius' Panel API pages: 422 ``validation_failed``, 409
``conflict`` (duplicate username/domain, or already in the requested suspend state), 404
``not_found``. Termination answers 204 without a body (configurable: ``delete_no_content``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import time

from provisiond.sandbox.base import PanelSimulator, Request, Response

USERNAME_PATTERN = re.compile(r"^[a-z0-9]{3,32}$")
DOMAIN_PATTERN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CREATE_FIELDS = ("username", "password", "domain", "package", "email", "disk_limit_mb",
                 "bandwidth_limit_mb")


def sign(token: str, timestamp: str, body: bytes) -> str:
    """The ``X-Signature`` value: hex HMAC-SHA256(token, timestamp + raw body)."""
    return hmac.new(token.encode("utf-8"), timestamp.encode("ascii") + body, hashlib.sha256).hexdigest()


@dataclasses.dataclass
class Account:
    id: int
    username: str
    domain: str
    package: str
    email: str
    password: str
    disk_limit_mb: int
    bandwidth_limit_mb: int
    status: str = "active"
    created_at: str = dataclasses.field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def user(self) -> str:
        return self.username

    @property
    def plan(self) -> str:
        return self.package

    @property
    def suspended(self) -> bool:
        return self.status == "suspended"

    def view(self) -> dict:
        return {"id": self.id, "username": self.username, "domain": self.domain,
                "email": self.email, "package": self.package, "status": self.status,
                "disk_limit_mb": self.disk_limit_mb, "bandwidth_limit_mb": self.bandwidth_limit_mb,
                "created_at": self.created_at}


class OpteriusSimulator(PanelSimulator):
    """``OpteriusSimulator(api_token="t")``; ``sim.accounts`` maps username → Account (with ``id``)."""

    panel = "opterius"

    def __init__(self, api_token: str = "sandbox-token", packages=("basic", "pro", "business"),
                 window: int = 300, clock=time.time, delete_no_content: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.api_token = api_token
        self.packages = set(packages)
        self.window = window
        self.clock = clock
        self.delete_no_content = delete_no_content
        self.accounts: dict[str, Account] = {}
        self._next_id = 1

    # -- wire ------------------------------------------------------------------------------
    ROUTES = [
        ("GET", r"/api/server/stats", "op_stats"),
        ("POST", r"/api/accounts", "op_create"),
        ("GET", r"/api/accounts/(\d+)", "op_info"),
        ("DELETE", r"/api/accounts/(\d+)", "op_terminate"),
        ("POST", r"/api/accounts/(\d+)/suspend", "op_suspend"),
        ("POST", r"/api/accounts/(\d+)/unsuspend", "op_unsuspend"),
    ]

    def handle(self, request: Request) -> Response:
        problem = self.signature_problem(request)
        if problem:
            return self._error(401, "unauthorized", problem)
        path = request.path.rstrip("/")
        path_known = False
        for method, pattern, operation in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if match:
                path_known = True
                if method == request.method:
                    with self.lock:
                        return getattr(self, operation)(request, *match.groups())
        if path_known:
            return self._error(405, "method_not_allowed", "The method is not supported for this route.")
        return self._error(404, "not_found", "The requested resource was not found.")

    def signature_problem(self, request: Request) -> str:
        """Why the request's signature is refused ('' when it is good)."""
        timestamp = request.headers.get("x-timestamp", "")
        signature = request.headers.get("x-signature", "")
        if not timestamp or not signature:
            return "Missing X-Timestamp or X-Signature header."
        if not timestamp.isascii() or not timestamp.isdigit():
            return "X-Timestamp must be a Unix time in seconds."
        if abs(int(self.clock()) - int(timestamp)) > self.window:
            return "Request timestamp is outside the allowed window."
        expected = sign(self.api_token, timestamp, request.body)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return "Invalid signature."
        return ""

    @staticmethod
    def _json(status: int, payload) -> Response:
        return Response(status, json.dumps(payload).encode())

    def _error(self, status: int, error: str, message: str, errors: dict | None = None) -> Response:
        payload = {"error": error, "message": message}
        if errors:
            payload["errors"] = errors
        return self._json(status, payload)

    def _by_id(self, account_id: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.id == int(account_id)), None)

    def _not_found(self) -> Response:
        return self._error(404, "not_found", "No account with that ID exists.")

    # -- operations ------------------------------------------------------------------------
    def op_stats(self, request) -> Response:
        suspended = sum(a.suspended for a in self.accounts.values())
        return self._json(200, {"data": {"hostname": "opterius.sandbox.test", "version": "1.0.0",
                                         "accounts": len(self.accounts), "suspended": suspended,
                                         "load": [0.0, 0.0, 0.0], "uptime": 3600}})

    def op_info(self, request, account_id: str) -> Response:
        account = self._by_id(account_id)
        return self._json(200, {"data": account.view()}) if account else self._not_found()

    def op_suspend(self, request, account_id: str) -> Response:
        return self._set_status(account_id, "suspended")

    def op_unsuspend(self, request, account_id: str) -> Response:
        return self._set_status(account_id, "active")

    def _set_status(self, account_id: str, status: str) -> Response:
        account = self._by_id(account_id)
        if account is None:
            return self._not_found()
        if account.status == status:
            return self._error(409, "conflict", f"The account is already {status}.")
        account.status = status
        return self._json(200, {"data": {"id": account.id, "username": account.username,
                                         "status": account.status}})

    def op_terminate(self, request, account_id: str) -> Response:
        account = self._by_id(account_id)
        if account is None:
            return self._not_found()
        del self.accounts[account.username]
        if self.delete_no_content:
            return Response(204, b"")
        return self._json(200, {"data": {"id": account.id, "deleted": True}})

    def op_create(self, request) -> Response:
        try:
            body = json.loads(request.body)
        except ValueError:
            return self._error(400, "bad_request", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self._error(400, "bad_request", "The request body must be a JSON object.")
        errors = self._validate(body)
        if errors:
            first = next(iter(errors.values()))[0]
            return self._error(422, "validation_failed", first, errors)
        username, domain = body["username"], body["domain"].lower()
        if username in self.accounts or any(a.domain == domain for a in self.accounts.values()):
            return self._error(409, "conflict", "Username or domain is already in use on this server.")
        account = Account(self._next_id, username, domain, body["package"], body["email"],
                          body["password"], body.get("disk_limit_mb", 0),
                          body.get("bandwidth_limit_mb", 0))
        self._next_id += 1
        self.accounts[username] = account
        return self._json(201, {"data": account.view()})

    def _validate(self, body: dict) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}

        def fail(field, message):
            errors.setdefault(field, []).append(message)

        for field in ("username", "password", "domain", "package", "email"):
            if not isinstance(body.get(field), str) or not body[field]:
                fail(field, f"The {field} field is required.")
        for field in sorted(set(body) - set(CREATE_FIELDS)):
            fail(field, f"The {field} field is not allowed.")
        for field in ("disk_limit_mb", "bandwidth_limit_mb"):
            value = body.get(field, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                fail(field, f"The {field} field must be a non-negative integer.")
        if errors:
            return errors
        if not USERNAME_PATTERN.match(body["username"]):
            fail("username", "The username must be 3-32 lowercase letters or digits.")
        if len(body["password"]) < 8:
            fail("password", "The password must be at least 8 characters.")
        if not DOMAIN_PATTERN.match(body["domain"].lower()):
            fail("domain", "The domain must be a valid fully qualified domain name.")
        if not EMAIL_PATTERN.match(body["email"]):
            fail("email", "The email must be a valid email address.")
        if body["package"] not in self.packages:
            fail("package", "Package not found.")
        return errors
