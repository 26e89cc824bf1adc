"""The Opterius Panel's provisioning API v1, as the panel's own code serves it.

Source: github.com/opterius/panel at f550c3a (v2.8.14); "W" below is
``app/Http/Controllers/Api/WhmcsApiController.php``, "P" is ``app/Services/ProvisioningService.php``.

- Routes (``routes/api.php:21-37``): only ``/api/v1/...``, all behind the ``api_key`` middleware
  (``bootstrap/app.php:17``). An unknown path is Laravel's router 404 ``{"message": "The route
  <path> could not be found."}``; a known path with another method is 405 (both HTML without
  ``Accept: application/json``). There is no ``/api/accounts/{id}`` and no HMAC check.
- Auth (``app/Http/Middleware/ApiKeyAuth.php:16-49``): ``Authorization: Bearer <key>``; none →
  401 "API key required. Use Authorization: Bearer <key>"; unknown → 401 "Invalid API key."
  (the key is looked up by its SHA-256, ``app/Models/ApiKey.php:54-57``); expired → 401 "API key
  has expired."; IP not allowed → 403 "IP address not allowed.". Permissions ``account.*`` or
  ``*`` (``ApiKey.php:59-69``); a missing one → 403 "Insufficient permissions.". Keys look like
  ``opt_`` + 48 characters (``ApiKey.php:41``).
- ``POST /api/v1/test`` (W:24-34): 200, ``data.panel``, ``data.version`` (``config/opterius.php:86``).
- ``POST /api/v1/accounts/create`` (W:39-123): permission ``account.create``; validation W:47-57;
  unknown package → 404 "Package 'x' not found. Available: a, b" (W:60-64); a key bound to a
  server wins over ``server_id`` (W:67); the panel user is found by ``client_email`` or made with
  ``client_name`` and the given password (P:247-261: an existing user keeps its password, and
  the account itself gets no password, P:23-118); account limit → 422 (P:31-33); username, then
  any domain (subdomains too) already there → 409 "... already exists." (P:36-42, W:121); the row
  is written before the server agent is asked, so an agent failure answers 200 ``result:
  warning`` "Account saved but server setup failed: <error>" with ``data.account_id``
  (P:49-117, W:112-119).
- ``POST /api/v1/accounts/suspend`` / ``unsuspend`` (W:128-177, P:123-180): already in that state
  → 200 "Account is already suspended." / "Account is already active."; agent failure → 500
  "Failed to suspend: <error>".
- ``POST /api/v1/accounts/terminate`` (W:182-201, P:185-201): the agent's answer is ignored, the
  row is always deleted; 404 "Account not found." when it is not there.
- ``POST /api/v1/accounts/password`` (W:206-226): the password is validated before the account is
  looked up; agent failure → 500 "Password change failed: <error>" (P:206-224).
- ``POST /api/v1/accounts/package`` (W:231-256, P:229-242): 404 "Package 'x' not found.".
- ``GET /api/v1/packages`` (W:261-271, labels ``app/Models/Package.php:50-65``) and
  ``POST /api/v1/accounts/usage`` (W:276-309) check no permission.
- Accounts (W:314-326): by ``username`` when it is filled, else by a main ``domain`` (no
  ``parent_id``), else "Account not found." 404. Names compare case-insensitively, as MariaDB's
  default collation does (``installer/install.sh`` installs MariaDB).

Laravel 13 (``composer.json``) around it, from laravel/framework's ``src/Illuminate/``: input
is the query merged with a JSON or form body (``Http/Concerns/InteractsWithInput.php``, which
also has ``bearerToken``); strings are trimmed (never ``password``) and "" becomes null
(``Foundation/Http/Middleware/TrimStrings.php``, ``ConvertEmptyStringsToNull.php``); rules run in
order, ``required`` failing stops a field, other rules skip an absent field
(``Validation/Validator.php``); messages are ``Translation/lang/en/validation.php``'s with ``_``
shown as a space. A failed validation answers 422 ``{"message": <first> " (and N more errors)",
"errors": {field: [...]}}`` (``Validation/ValidationException.php::summarize``) when the request
``expectsJson()`` (``Http/Concerns/InteractsWithContentTypes.php``: ``Accept`` led by a JSON
type, or an XMLHttpRequest), else a 302 redirect to the ``Referer`` or the site root
(``Foundation/Exceptions/Handler.php::invalid``). Router misses: ``Routing/
AbstractRouteCollection.php`` ("The route <path> could not be found.", "The <M> method is not
supported for route <path>. Supported methods: <list>."). Approximation: the ``email`` rule
(egulias RFC validation) is a plain shape check.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import unicodedata
import urllib.parse

from provisiond.sandbox.base import PanelSimulator, Request, Response

VERSION = "2.8.14"
PERMISSIONS = ("account.create", "account.suspend", "account.unsuspend", "account.terminate",
               "account.password", "account.package")
CREATE_RULES = {
    "domain": "required|string|max:255",
    "username": "required|string|max:32|alpha_dash",
    "password": "required|string|min:8",
    "package": "required|string|max:255",
    "server_id": "nullable|integer|exists:servers,id",
    "client_email": "required|email|max:255",
    "client_name": "required|string|max:255",
    "whmcs_service_id": "nullable|integer",
    "whmcs_client_id": "nullable|integer",
}
MESSAGES = {
    "required": "The {a} field is required.",
    "string": "The {a} field must be a string.",
    "integer": "The {a} field must be an integer.",
    "email": "The {a} field must be a valid email address.",
    "alpha_dash": "The {a} field must only contain letters, numbers, dashes, and underscores.",
    "max": "The {a} field must not be greater than {n} characters.",
    "min": "The {a} field must be at least {n} characters.",
    "exists": "The selected {a} is invalid.",
}
NEVER_TRIM = ("current_password", "password", "password_confirmation")


def key_hash(plaintext: str) -> str:
    """How the panel stores a key: its SHA-256 hex."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclasses.dataclass
class ApiKey:
    permissions: tuple[str, ...] = ("*",)
    server_id: int | None = None
    allowed_ips: tuple[str, ...] = ()
    expired: bool = False

    def allows(self, scope: str) -> bool:
        return "*" in self.permissions or scope in self.permissions


@dataclasses.dataclass
class Package:
    name: str
    disk_quota: int = 0       # MB, 0 = unlimited
    bandwidth: int = 0        # MB a month, 0 = unlimited
    default_php_version: str = "8.4"

    def view(self) -> dict:
        bandwidth = _mb_label(self.bandwidth) + ("/mo" if self.bandwidth > 0 else "")
        return {"name": self.name, "disk_quota": _mb_label(self.disk_quota), "bandwidth": bandwidth,
                "php_default": self.default_php_version}


@dataclasses.dataclass
class User:
    name: str
    email: str
    password: str


@dataclasses.dataclass
class Account:
    id: int
    username: str
    domain: str
    package: str
    owner_email: str
    server_id: int = 1
    suspended: bool = False
    suspend_reason: str | None = None
    system_password: str | None = None   # set only by accounts/password
    domain_status: str = "active"        # "pending" when the agent failed at create
    extra_domains: list[str] = dataclasses.field(default_factory=list)  # addon and subdomains

    @property
    def domains(self) -> list[str]:
        return [self.domain, *self.extra_domains]


def _mb_label(value: int) -> str:
    if value == 0:
        return "Unlimited"
    if value >= 1024:
        gb = round(value / 1024, 1)
        return f"{gb:g} GB"
    return f"{value} MB"


class OpteriusSimulator(PanelSimulator):
    """``OpteriusSimulator(api_key=...)``; ``accounts`` by username, ``users`` by email.

    ``agent_error`` set to a text makes the server agent fail (create → warning, suspend → 500);
    ``add_key`` adds keys with fewer permissions, an expiry or an IP list.
    """

    panel = "opterius"

    def __init__(self, api_key: str = "opt_" + "sandbox0" * 6, packages=("basic", "pro", "business"),
                 account_limit: int = 1000, **kwargs):
        super().__init__(**kwargs)
        self.api_key = api_key
        self.keys: dict[str, ApiKey] = {key_hash(api_key): ApiKey()}
        self.packages = {name: Package(name, disk_quota=1024 * (i + 1), bandwidth=10240 * (i + 1))
                         for i, name in enumerate(packages)}
        self.servers = {1: "online"}
        self.account_limit = account_limit
        self.agent_error: str | None = None
        self.accounts: dict[str, Account] = {}
        self.users: dict[str, User] = {}
        self._next_id = 1

    def add_key(self, plaintext: str, **attributes) -> ApiKey:
        key = ApiKey(**attributes)
        self.keys[key_hash(plaintext)] = key
        return key

    def add_account(self, username: str, domain: str, package: str = "basic", email: str = "",
                    **attributes) -> Account:
        """An account made on the panel by hand (behind provisiond's back)."""
        with self.lock:
            account = Account(self._next_id, username, domain, package, email or f"owner@{domain}",
                              **attributes)
            self._next_id += 1
            self.accounts[username] = account
            return account

    # -- routing (routes/api.php) ------------------------------------------------------------
    ROUTES = {
        "/api/v1/test": ("POST", "test_connection"),
        "/api/v1/accounts/create": ("POST", "create_account"),
        "/api/v1/accounts/suspend": ("POST", "suspend_account"),
        "/api/v1/accounts/unsuspend": ("POST", "unsuspend_account"),
        "/api/v1/accounts/terminate": ("POST", "terminate_account"),
        "/api/v1/accounts/password": ("POST", "change_password"),
        "/api/v1/accounts/package": ("POST", "change_package"),
        "/api/v1/packages": ("GET", "list_packages"),
        "/api/v1/accounts/usage": ("POST", "get_usage"),
    }

    def handle(self, request: Request) -> Response:
        path = "/" + request.path.strip("/")
        route = self.ROUTES.get(path)
        wants_json = expects_json(request)
        if route is None:
            return _http_error(404, f"The route {path.lstrip('/')} could not be found.", wants_json)
        method, operation = route
        allowed = [method, "HEAD"] if method == "GET" else [method]
        if request.method not in allowed:
            return _http_error(405, f"The {request.method} method is not supported for route "
                               f"{path.lstrip('/')}. Supported methods: {', '.join(allowed)}.", wants_json)
        key, refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        call = LaravelRequest(request)
        with self.lock:
            try:
                return getattr(self, operation)(call, key)
            except Invalid as exc:
                return exc.response(request)

    def _authenticate(self, request: Request) -> tuple[ApiKey | None, Response | None]:
        """ApiKeyAuth::handle: the key, or the refusal."""
        bearer = bearer_token(request.headers.get("authorization", ""))
        if not bearer:
            return None, _error("API key required. Use Authorization: Bearer <key>", 401)
        key = self.keys.get(key_hash(bearer))
        if key is None:
            return None, _error("Invalid API key.", 401)
        if key.expired:
            return None, _error("API key has expired.", 401)
        if key.allowed_ips and "127.0.0.1" not in key.allowed_ips:  # the simulator serves loopback
            return None, _error("IP address not allowed.", 403)
        return key, None

    # -- WhmcsApiController -------------------------------------------------------------------
    def test_connection(self, call, key) -> Response:
        return _json(200, {"result": "success", "message": "Connection successful.",
                           "data": {"panel": "Opterius Panel", "version": VERSION}})

    def create_account(self, call, key) -> Response:
        if not key.allows("account.create"):
            return _error("Insufficient permissions.", 403)
        valid = call.validate(CREATE_RULES, servers=self.servers)
        package = self.packages.get(valid["package"])
        if package is None:
            return _error(f"Package '{valid['package']}' not found. Available: "
                          f"{', '.join(self.packages)}", 404)
        server_id = key.server_id or valid.get("server_id")
        if not server_id:
            server_id = next((sid for sid, status in self.servers.items() if status == "online"), None)
            if server_id is None:
                return _error("No available servers.", 422)
        email = valid["client_email"]
        if _folded(email) not in {_folded(e) for e in self.users}:
            self.users[email] = User(valid["client_name"], email, valid["password"])
        owner = next(e for e in self.users if _folded(e) == _folded(email))
        error = self._refusal(valid["username"], valid["domain"])
        if error:
            return _error(error, 409 if "already exists" in error else 422)
        account = self.add_account(valid["username"], valid["domain"], package.name, owner,
                                   server_id=int(server_id))
        if self.agent_error is not None:
            account.domain_status = "pending"
            return _json(200, {"result": "warning",
                               "message": f"Account saved but server setup failed: {self.agent_error}",
                               "data": {"account_id": account.id}})
        return _json(200, {"result": "success",
                           "message": f"Account {account.username} created with domain {valid['domain']}.",
                           "data": {"account_id": account.id, "username": account.username,
                                    "domain": valid["domain"], "server_ip": "127.0.0.1"}})

    def _refusal(self, username: str, domain: str) -> str:
        """ProvisioningService::createAccount's checks before it writes anything."""
        if len(self.accounts) >= self.account_limit:
            return f"Account limit reached ({len(self.accounts)}/{self.account_limit})."
        if self._by_username(username):
            return f"Username '{username}' already exists."
        if any(_folded(d) == _folded(domain) for a in self.accounts.values() for d in a.domains):
            return f"Domain '{domain}' already exists."
        return ""

    def suspend_account(self, call, key) -> Response:
        return self._set_suspended(call, key, True)

    def unsuspend_account(self, call, key) -> Response:
        return self._set_suspended(call, key, False)

    def _set_suspended(self, call, key, suspend: bool) -> Response:
        verb = "suspend" if suspend else "unsuspend"
        if not key.allows(f"account.{verb}"):
            return _error("Insufficient permissions.", 403)
        account = self._find(call)
        if account is None:
            return _error("Account not found.", 404)
        if account.suspended == suspend:
            return _json(200, {"result": "success", "message": "Account is already suspended." if suspend
                               else "Account is already active."})
        if suspend and "reason" in call.data and call.data["reason"] is None:
            # input('reason', default) gives the null of a blank reason to a `string $reason`
            # parameter (P:123): PHP throws a TypeError, Laravel answers its bare 500.
            return _json(500, {"message": "Server Error"})
        if self.agent_error is not None:
            return _error(f"Failed to {verb}: {self.agent_error}", 500)
        account.suspended = suspend
        account.suspend_reason = call.input("reason", "Suspended by billing system") if suspend else None
        return _json(200, {"result": "success", "message": f"Account {account.username} {verb}ed."})

    def terminate_account(self, call, key) -> Response:
        if not key.allows("account.terminate"):
            return _error("Insufficient permissions.", 403)
        account = self._find(call)
        if account is None:
            return _error("Account not found.", 404)
        del self.accounts[account.username]  # the agent's answer is not checked (P:190-198)
        return _json(200, {"result": "success", "message": f"Account {account.username} terminated."})

    def change_password(self, call, key) -> Response:
        if not key.allows("account.password"):
            return _error("Insufficient permissions.", 403)
        call.validate({"password": "required|string|min:8"})
        account = self._find(call)
        if account is None:
            return _error("Account not found.", 404)
        if self.agent_error is not None:
            return _error(f"Password change failed: {self.agent_error}", 500)
        account.system_password = call.input("password")
        return _json(200, {"result": "success", "message": f"Password changed for {account.username}."})

    def change_package(self, call, key) -> Response:
        if not key.allows("account.package"):
            return _error("Insufficient permissions.", 403)
        call.validate({"package": "required|string|max:255"})
        account = self._find(call)
        if account is None:
            return _error("Account not found.", 404)
        package = self.packages.get(call.input("package"))
        if package is None:
            return _error(f"Package '{call.input('package')}' not found.", 404)
        account.package = package.name
        return _json(200, {"result": "success",
                           "message": f"Package changed to {package.name} for {account.username}."})

    def list_packages(self, call, key) -> Response:
        return _json(200, {"result": "success", "data": [p.view() for p in self.packages.values()]})

    def get_usage(self, call, key) -> Response:
        account = self._find(call)
        if account is None:
            return _error("Account not found.", 404)
        return _json(200, {"result": "success", "data": {
            "username": account.username, "domain": account.domain, "suspended": account.suspended,
            "disk_used_mb": 0, "disk_limit": self.packages.get(account.package, Package("")).disk_quota,
            "bw_used_mb": 0}})

    def _find(self, call) -> Account | None:
        """WhmcsApiController::findAccount: by username when filled, else by a main domain."""
        if call.filled("username"):
            return self._by_username(call.input("username"))
        if call.filled("domain"):
            wanted = _folded(call.input("domain"))
            return next((a for a in self.accounts.values() if _folded(a.domain) == wanted), None)
        return None

    def _by_username(self, username) -> Account | None:
        wanted = _folded(username)
        return next((a for a in self.accounts.values() if _folded(a.username) == wanted), None)


# -- Laravel ---------------------------------------------------------------------------------

class Invalid(Exception):
    """Illuminate\\Validation\\ValidationException: answered as 422 JSON or a 302 redirect."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("The given data was invalid.")
        self.errors = errors

    def response(self, request: Request) -> Response:
        if expects_json(request):
            messages = [m for field in self.errors.values() for m in field]
            summary = messages[0]
            if len(messages) > 1:
                more = len(messages) - 1
                summary += f" (and {more} more {'error' if more == 1 else 'errors'})"
            return _json(422, {"message": summary, "errors": self.errors})
        target = request.headers.get("referer") or f"http://{request.headers.get('host', 'localhost')}"
        return _redirect(target)


class LaravelRequest:
    """A request's input as a Laravel controller reads it, after the global middleware."""

    def __init__(self, request: Request):
        data = dict(request.query)
        ctype = request.headers.get("content-type", "").lower()
        if request.body and ("/json" in ctype or "+json" in ctype):
            try:
                body = json.loads(request.body)
            except ValueError:
                body = None
            data.update(body if isinstance(body, dict) else {})
        elif request.body:
            data.update(urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        self.data = {k: _cleaned(k, v) for k, v in data.items()}

    def input(self, name: str, default=None):
        value = self.data.get(name)
        return default if value is None else value

    def filled(self, name: str) -> bool:
        value = self.data.get(name)
        return value is not None and not (isinstance(value, str) and not value.strip())

    def validate(self, rules: dict[str, str], servers=()) -> dict:
        """The validated fields (those present), or ``Invalid`` with Laravel's messages."""
        errors: dict[str, list[str]] = {}
        for field, spec in rules.items():
            problems = _field_errors(field, self.data, spec.split("|"), servers)
            if problems:
                errors[field] = problems
        if errors:
            raise Invalid(errors)
        return {k: self.data[k] for k in rules if k in self.data}


def _cleaned(name, value):
    if isinstance(value, str):
        value = value if name in NEVER_TRIM else value.strip()
        return None if value == "" else value
    return value


def _field_errors(field: str, data: dict, rules: list[str], servers) -> list[str]:
    value = data.get(field)
    attribute = field.replace("_", " ")
    problems = []
    for rule in rules:
        name, _, parameter = rule.partition(":")
        if name == "nullable":
            continue
        if name == "required":
            if value is None or value == [] or value == {}:
                return [MESSAGES["required"].format(a=attribute)]
            continue
        if value is None:  # non-implicit rules skip an absent (or null) field
            continue
        if not _passes(name, parameter, value, "integer" in rules, servers):
            problems.append(MESSAGES[name].format(a=attribute, n=parameter))
    return problems


def _passes(name: str, parameter: str, value, numeric: bool, servers) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        return _as_int(value) is not None
    if name == "email":
        return isinstance(value, str) and _looks_like_email(value)
    if name == "alpha_dash":
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            return False
        text = str(value)
        return bool(text) and all(c in "-_" or unicodedata.category(c)[0] in "LMN" for c in text)
    if name in ("max", "min"):
        size = value if numeric and _as_int(value) is not None else len(str(value))
        return size <= int(parameter) if name == "max" else size >= int(parameter)
    if name == "exists":
        return _as_int(value) in servers
    raise ValueError(f"rule {name} is not modelled")


def _as_int(value):
    if isinstance(value, bool):
        return 1 if value else None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return None


def _looks_like_email(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() for c in value) \
        and "@" not in domain and ".." not in domain and not domain.startswith(".")


def _folded(value) -> str:
    return str(value).casefold()


def bearer_token(header: str) -> str:
    """Illuminate\\Http\\Request::bearerToken: what follows the last ``Bearer `` (up to a comma)."""
    position = header.rfind("Bearer ")
    if position < 0:
        return ""
    token = header[position + 7:]
    return token.split(",", 1)[0] if "," in token else token


def expects_json(request: Request) -> bool:
    """Request::expectsJson: an XMLHttpRequest accepting anything, or Accept led by a JSON type."""
    accepted = _accepted_types(request.headers.get("accept", ""))
    ajax = request.headers.get("x-requested-with", "") == "XMLHttpRequest"
    anything = not accepted or accepted[0] in ("*/*", "*")
    wants_json = bool(accepted) and ("/json" in accepted[0] or "+json" in accepted[0])
    return (ajax and not request.headers.get("x-pjax") and anything) or wants_json


def _accepted_types(header: str) -> list[str]:
    ranked = []
    for position, part in enumerate(p.strip() for p in header.split(",") if p.strip()):
        media, *params = [s.strip() for s in part.split(";")]
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, media.lower()))
    return [media for _, _, media in sorted(ranked)]


def _json(status: int, payload) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode())


def _error(message: str, status: int) -> Response:
    """WhmcsApiController::error (and the middleware's refusals): always JSON."""
    return _json(status, {"result": "error", "message": message})


def _http_error(status: int, message: str, wants_json: bool) -> Response:
    """A router exception as Laravel renders it (production: no trace)."""
    if wants_json:
        return _json(status, {"message": message})
    title = {404: "Not Found", 405: "Method Not Allowed"}[status]
    page = f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{status} | {title}</body></html>"
    return Response(status, page.encode(), "text/html; charset=UTF-8")


def _redirect(target: str) -> Response:
    """Symfony's RedirectResponse, as Laravel answers a failed validation of a non-JSON request."""
    quoted = html.escape(target)
    page = (f'<!DOCTYPE html>\n<html>\n    <head>\n        <meta charset="UTF-8" />\n'
            f"        <meta http-equiv=\"refresh\" content=\"0;url='{quoted}'\" />\n\n"
            f"        <title>Redirecting to {quoted}</title>\n    </head>\n    <body>\n"
            f'        Redirecting to <a href="{quoted}">{quoted}</a>.\n    </body>\n</html>')
    return Response(302, page.encode(), "text/html; charset=utf-8", {"Location": target})
