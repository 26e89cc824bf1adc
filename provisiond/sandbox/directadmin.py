"""A strict DirectAdmin legacy CMD_API simulator (shared/panels/directadmin.md).

It checks HTTP Basic auth against the admin password or a login key and answers a bad login with
the HTML login page (``text/html``, "DirectAdmin Login"), as DirectAdmin does. Every other answer
is an url-encoded string (``error=0|1&text=...&details=...``, lists as ``list[]=``), or JSON with
``json=yes`` (``{"success": ...}`` / ``{"error": ..., "result": ...}`` with a non-2xx status).
It enforces the username rules (lowercase letters and digits, a letter first, 4 to
``max_username_length`` characters), refuses duplicate users and domains, unknown packages and
IPs, missing parameters and mismatched passwords, and keeps each account's state.

Users of other resellers (issue 10): every account has a ``creator``, the reseller or admin that
made it, which CMD_API_SHOW_USER_CONFIG reports as ``creator=``. DirectAdmin's "Legacy API" page
(https://docs.directadmin.com/developer/api/legacy-api.html) says "You MUST have the proper
permissions with your account in order use the API. For example, a User cannot get the list of
all the Users on the server, only an Admin can", and gives CMD_API_MODIFY_USER "to allow a
reseller to update the settings of one of his or her users" (the same page as mirrored at
http://directadm.in/commands/save). Modelled on that: CMD_API_SHOW_USERS lists the caller's own
users (an admin's too: the users it created), CMD_API_SHOW_ALL_USERS lists every user and only
for an admin; a reseller login is refused (``error=1``) every read or change of another
reseller's user, an admin login may read and change any user. The refusal's words are
*unverified*: DirectAdmin answers a domain that is not the caller's with "You do not own that
domain" (solitweb/laravel-directadmin issue 12), so the user form follows it, and it is a knob
(``not_owned_details``); a playbook must not need it to be exact.

Usage (issue 11): CMD_API_SHOW_USER_USAGE and the limits of CMD_API_SHOW_USER_CONFIG, per
``Account.usage`` and ``Account.limits`` (sources there).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import time
import urllib.parse

from provisiond.sandbox.base import PanelSimulator, Request, Response

LOGIN_PAGE = (b"<!DOCTYPE html>\n<html><head><title>DirectAdmin Login</title></head><body>\n"
              b"<form action=\"/CMD_LOGIN\" method=\"post\"><input name=\"username\">"
              b"<input type=\"password\" name=\"password\"></form>\n</body></html>\n")
NO_AUTHORITY = ("The request you've made cannot be executed because it does not exist in your "
                "authority level")
USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*$")
DOMAIN_PATTERN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$")
SYSTEM_USERS = frozenset({"root", "admin", "diradmin", "apache", "nobody", "mail", "mysql", "ftp",
                          "named", "majordomo", "daemon", "bin", "www", "webapps", "nginx"})
CREATE_FIELDS = ("username", "email", "passwd", "passwd2", "domain", "package", "ip")


class Failure(Exception):
    """``error=1&text=<text>&details=<details>``."""

    def __init__(self, text: str, details: str = ""):
        super().__init__(text)
        self.text, self.details = text, details


@dataclasses.dataclass
class Ok:
    text: str
    details: str = ""


@dataclasses.dataclass
class Account:
    user: str
    domain: str
    package: str
    email: str
    password: str
    ip: str
    suspended: bool = False
    suspend_reason: str = ""
    creator: str = ""  # "" is the simulator's own login
    created: float = dataclasses.field(default_factory=time.time)
    # Use and limits (tests set them; a limit of None is "unlimited"): see ``usage`` and ``limits``.
    disk_used_mb: float = 0.0
    bandwidth_used_mb: float = 0.0
    inodes_used: int = 0
    mailboxes: int = 0
    databases: int = 0
    disk_limit_mb: int | None = None
    bandwidth_limit_mb: int | None = None
    inodes_limit: int | None = None

    def usage(self) -> dict[str, str]:
        """CMD_API_SHOW_USER_USAGE's answer (directadm.in/commands/server, "Get User Usage"):
        ``bandwidth`` MB sent, ``quota`` MB of disk used, ``mysql`` databases and ``nemails`` pop
        accounts used, and the other counts. ``inode`` (inodes used) is named after the user's
        user.usage file; the page does not list it: unverified."""
        return {"bandwidth": f"{self.bandwidth_used_mb:g}", "quota": f"{self.disk_used_mb:g}",
                "inode": str(self.inodes_used), "mysql": str(self.databases), "nemails": str(self.mailboxes),
                "domainptr": "0", "ftp": "1", "nemailf": "0", "nemailml": "0", "nemailr": "0",
                "nsubdomains": "0", "vdomains": "1"}

    def limits(self) -> dict[str, str]:
        """The limits CMD_API_SHOW_USER_CONFIG reports from user.conf, as CMD_API_MODIFY_USER
        sets them (directadm.in/commands/save): ``bandwidth`` and ``quota`` in MB, ``inode``,
        each a number or "unlimited"."""
        def shown(limit):
            return "unlimited" if limit is None else str(limit)
        return {"bandwidth": shown(self.bandwidth_limit_mb), "quota": shown(self.disk_limit_mb),
                "inode": shown(self.inodes_limit), "nemails": "unlimited", "mysql": "unlimited"}

    def config(self, creator: str) -> dict[str, str]:
        return {"username": self.user, "usertype": "user", "creator": self.creator or creator,
                "domain": self.domain, "email": self.email, "ip": self.ip,
                "package": self.package, "suspended": "yes" if self.suspended else "no",
                "date_created": time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(self.created)),
                **self.limits()}


class DirectAdminSimulator(PanelSimulator):
    """``DirectAdminSimulator(password="pw", login_key="k")``; ``sim.accounts`` is the state.

    Knobs: ``max_username_length`` (per server, default 8); ``ips`` the server's addresses (the
    first one is used for ``ip=shared``/``server``) and ``free_ips`` the pool ``ip=assign``
    takes from; ``level`` ``"admin"`` or ``"reseller"`` (a reseller may not call
    CMD_API_SHOW_ALL_USERS); ``repeat_suspend_is_error`` (whether suspending a suspended user
    fails is unverified: strict by default); ``json_error_status`` and ``login_status``
    (unverified HTTP statuses of a ``json=yes`` error and of the login page);
    ``not_owned_details`` (the unverified words of a refusal for another reseller's user).
    ``sim.add_foreign_user(user, domain, creator)`` puts another reseller's user on the server.
    """

    panel = "directadmin"

    def __init__(self, username: str = "admin", password: str = "sandbox-pass",
                 login_key: str | None = None, packages=("basic", "pro", "business"),
                 max_username_length: int = 8, ips=("127.0.0.1",), free_ips=(),
                 level: str = "admin", repeat_suspend_is_error: bool = True,
                 suspend_reasons=("billing", "other"), json_error_status: int = 400,
                 login_status: int = 200, system_users=SYSTEM_USERS,
                 not_owned_details: str = "You do not own that user", **kwargs):
        super().__init__(**kwargs)
        self.username, self.password, self.login_key = username, password, login_key
        self.packages = set(packages)
        self.max_username_length = max_username_length
        self.ips, self.free_ips = list(ips), list(free_ips)
        self.level = level
        self.repeat_suspend_is_error = repeat_suspend_is_error
        self.suspend_reasons = set(suspend_reasons)
        self.json_error_status, self.login_status = json_error_status, login_status
        self.system_users = set(system_users) | {username}
        self.not_owned_details = not_owned_details
        self.accounts: dict[str, Account] = {}

    # -- wire ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        match = re.fullmatch(r"/CMD_API_([A-Z_]+)", request.path)
        if not self._authorized(request.headers.get("authorization", "")) or not match:
            # DirectAdmin serves its HTML skin (the login page) for anything but an API call.
            return Response(self.login_status, LOGIN_PAGE, "text/html; charset=utf-8")
        params = request.form()
        as_json = params.get("json") == "yes"
        operation = getattr(self, f"op_{match.group(1).lower()}", None)
        try:
            if operation is None:
                raise Failure(NO_AUTHORITY)
            with self.lock:
                return self._render(operation(params), as_json)
        except Failure as failure:
            if as_json:
                body = {"error": failure.text, "result": failure.details}
                return Response(self.json_error_status, json.dumps(body).encode())
            return self._encoded({"error": "1", "text": failure.text, "details": failure.details})

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        secrets = {s for s in (self.password, self.login_key) if s}
        return scheme.lower() == "basic" and user == self.username and secret in secrets

    def _render(self, result, as_json: bool) -> Response:
        if isinstance(result, Ok):
            if as_json:
                return Response(200, json.dumps({"success": result.text,
                                                 "result": result.details}).encode())
            return self._encoded({"error": "0", "text": result.text, "details": result.details})
        if as_json:
            return Response(200, json.dumps(result).encode())
        if isinstance(result, list):
            body = "&".join(f"list[]={urllib.parse.quote(item, safe='')}" for item in result)
            return Response(200, body.encode(), "text/plain; charset=utf-8")
        return self._encoded(result)

    @staticmethod
    def _encoded(pairs: dict[str, str]) -> Response:
        body = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
        return Response(200, body.encode(), "text/plain; charset=utf-8")

    def add_foreign_user(self, user: str, domain: str, creator: str = "reseller2",
                         package: str = "basic") -> Account:
        """Another reseller's user, as that reseller would have created it."""
        account = Account(user, domain, package, f"owner@{domain}", "foreign-pass", self.ips[0],
                          creator=creator)
        self.accounts[user] = account
        return account

    def _mine(self, account: Account) -> bool:
        return (account.creator or self.username) == self.username

    def _account(self, user: str, text: str) -> Account:
        account = self.accounts.get(user)
        if account is None:
            raise Failure(text, f"User {user} does not exist")
        if self.level != "admin" and not self._mine(account):
            raise Failure(text, self.not_owned_details)
        return account

    # -- operations ------------------------------------------------------------------------
    def op_login_test(self, params):
        return Ok("Login OK", "none")

    def op_account_user(self, params):
        text = "Unable to Create User"
        if params.get("action") != "create" or params.get("add") != "Submit":
            raise Failure(text, "action=create and add=Submit are required")
        missing = [name for name in CREATE_FIELDS if not params.get(name)]
        if missing:
            raise Failure(text, f"Missing field(s): {', '.join(missing)}")
        user, domain = params["username"], params["domain"]
        problem = self.username_problem(user)
        if problem:
            raise Failure(text, problem)
        if params["passwd"] != params["passwd2"]:
            raise Failure(text, "Passwords do not match")
        if not EMAIL_PATTERN.match(params["email"]):
            raise Failure(text, f"Invalid email address: {params['email']}")
        if not DOMAIN_PATTERN.match(domain):
            raise Failure(text, f"Invalid domain name: {domain}")
        if params.get("notify", "no") not in ("yes", "no"):
            raise Failure(text, "notify must be yes or no")
        if user in self.accounts or user in self.system_users:
            raise Failure(text, "That user already exists")
        if any(a.domain == domain for a in self.accounts.values()):
            raise Failure(text, f"The domain {domain} already exists")
        if params["package"] not in self.packages:
            raise Failure(text, f"The package {params['package']} does not exist")
        ip = self._pick_ip(params["ip"], text)
        self.accounts[user] = Account(user, domain, params["package"], params["email"],
                                      params["passwd"], ip)
        return Ok(f"User {user} created", "Unix User created successfully")

    def _pick_ip(self, ip: str, text: str) -> str:
        if ip in ("shared", "server"):
            return self.ips[0]
        if ip == "assign":
            if not self.free_ips:
                raise Failure(text, "There are no free IPs to assign")
            return self.free_ips.pop(0)
        if ip not in self.ips and ip not in self.free_ips:
            raise Failure(text, f"The IP {ip} is not in your list of IPs")
        if ip in self.free_ips:
            self.free_ips.remove(ip)
        return ip

    def op_select_users(self, params):
        users = [v for k, v in params.items() if re.fullmatch(r"select\d+", k)]
        if "delete" in params:
            return self._delete(users, params)
        action = params.get("suspend")
        if action not in ("Suspend", "Unsuspend") or params.get("location") != "CMD_SELECT_USERS":
            raise Failure("Unknown action", "suspend=Suspend|Unsuspend with location=CMD_SELECT_USERS, "
                                            "or delete=yes with confirmed=Confirm")
        text = f"Error while {action.lower()}ing users"
        reason = params.get("reason", "")
        if reason and reason not in self.suspend_reasons:
            raise Failure(text, f"Invalid suspension reason: {reason}")
        if not users:
            raise Failure(text, "No users selected")
        wanted = action == "Suspend"
        accounts = [self._account(user, text) for user in users]
        for account in accounts:
            if account.suspended == wanted and self.repeat_suspend_is_error:
                state = "suspended" if wanted else "active"
                raise Failure(text, f"User {account.user} is already {state}")
        for account in accounts:
            account.suspended = wanted
            account.suspend_reason = (reason or "other") if wanted else ""
        return Ok(f"Users {action.lower()}ed", "")

    def _delete(self, users, params):
        text = "Error while deleting users"
        if params.get("delete") != "yes" or params.get("confirmed") != "Confirm":
            raise Failure(text, "Deletion requires delete=yes and confirmed=Confirm")
        if not users:
            raise Failure(text, "No users selected")
        for user in users:
            self._account(user, text)
        for user in users:
            del self.accounts[user]
        return Ok("Users deleted", "<br>\n".join(f"User {u} removed" for u in users))

    def op_modify_user(self, params):
        text = "Unable to modify user"
        if params.get("action") != "package":
            raise Failure(text, "Only action=package is supported")
        account = self._account(params.get("user", ""), text)
        package = params.get("package", "")
        if package not in self.packages:
            raise Failure(text, f"The package {package} does not exist")
        account.package = package
        return Ok("User modified", f"Package changed to {package}")

    def op_user_passwd(self, params):
        text = "Unable to change password"
        account = self._account(params.get("username", ""), text)
        if not params.get("passwd"):
            raise Failure(text, "No password given")
        if params["passwd"] != params.get("passwd2"):
            raise Failure(text, "Passwords do not match")
        account.password = params["passwd"]
        return Ok("Password Changed", "")

    def op_show_user_config(self, params):
        return self._account(params.get("user", ""), "Unable to show user").config(self.username)

    def op_show_user_usage(self, params):
        return self._account(params.get("user", ""), "Unable to show user").usage()

    def op_show_users(self, params):
        return sorted(u for u, a in self.accounts.items() if self._mine(a))

    def op_show_all_users(self, params):
        if self.level != "admin":
            raise Failure(NO_AUTHORITY)
        return sorted(self.accounts)

    def op_packages_user(self, params):
        return sorted(self.packages)

    # -- rules -----------------------------------------------------------------------------
    def username_problem(self, user: str) -> str:
        if not USERNAME_PATTERN.match(user):
            return ("Invalid username: use lowercase letters and digits only, starting with a "
                    "letter")
        if not 4 <= len(user) <= self.max_username_length:
            return f"The username must be 4 to {self.max_username_length} characters long"
        return ""
