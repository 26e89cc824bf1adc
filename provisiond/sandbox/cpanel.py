"""A strict WHM API 1 simulator (shared/panels/cpanel.md).

It checks the ``Authorization: whm USER:TOKEN`` header, answers every call in the API 1 envelope
(HTTP 200, failure is ``metadata.result == 0``), enforces cPanel's username rules, refuses
duplicate users and domains and unknown plans, and keeps each account's state.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import time

from provisiond.sandbox.base import PanelSimulator, Request, Response

RESERVED_USERNAMES = frozenset({
    "root", "admin", "abuse", "ftp", "mysql", "nobody", "postmaster", "cpanel", "whm", "bin",
    "daemon", "mail", "news", "uucp", "operator", "games", "apache", "named", "postgres",
    "webmaster", "hostmaster", "mailer-daemon", "www", "all", "virtfs", "cpanelphpmyadmin",
})
USERNAME_PATTERN = re.compile(r"^[a-z0-9]{1,16}$")

ACCESS_DENIED = json.dumps({"cpanelresult": {
    "apiversion": "2", "error": "Access denied",
    "data": {"reason": "Access denied", "result": "0"}, "type": "text"}}).encode()


@dataclasses.dataclass
class Account:
    user: str
    domain: str
    plan: str
    email: str
    password: str
    suspended: bool = False
    suspendreason: str = "not suspended"
    startdate: int = dataclasses.field(default_factory=lambda: int(time.time()))

    def summary(self, owner: str) -> dict:
        return {
            "user": self.user, "domain": self.domain, "ip": "127.0.0.1", "plan": self.plan,
            "owner": owner, "email": self.email, "suspended": int(self.suspended),
            "suspendreason": self.suspendreason if self.suspended else "not suspended",
            "disklimit": "unlimited", "diskused": "0M",
            "startdate": time.strftime("%y %b %d %H:%M", time.gmtime(self.startdate)),
            "unix_startdate": self.startdate,
        }


class WhmSimulator(PanelSimulator):
    """``WhmSimulator(token="t", plans={"basic"})``; ``sim.accounts`` is the panel's state."""

    panel = "cpanel"

    def __init__(self, token: str = "sandbox-token", username: str = "root",
                 plans=("basic", "pro", "business"), **kwargs):
        super().__init__(**kwargs)
        self.token = token
        self.username = username
        self.plans = set(plans)
        self.accounts: dict[str, Account] = {}

    # -- wire ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if not self._authorized(request.headers.get("authorization", "")):
            return Response(403, ACCESS_DENIED)
        match = re.fullmatch(r"/json-api/([a-z_]+)", request.path)
        params = request.form()
        if not match or params.get("api.version") != "1":
            # Real WHM answers API 0 shapes without api.version=1; playbooks must never rely
            # on them, so the simulator refuses loudly.
            return self._envelope(match.group(1) if match else "unknown", 0,
                                  "This simulator only speaks WHM API 1 (api.version=1).")
        function = match.group(1)
        operation = getattr(self, f"op_{function}", None)
        if operation is None:
            return self._envelope(function, 0, f"Unknown app (“{function}”) requested for this version (1) of the API.")
        with self.lock:
            return operation(params)

    def _authorized(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        return scheme.lower() == "whm" and credentials == f"{self.username}:{self.token}"

    @staticmethod
    def _envelope(command: str, result: int, reason: str, data=None, raw: str = "") -> Response:
        metadata = {"command": command, "result": result, "reason": reason, "version": 1}
        if raw:
            metadata["output"] = {"raw": raw}
        body = {"metadata": metadata}
        if data is not None:
            body["data"] = data
        return Response(200, json.dumps(body).encode())

    def _missing(self, command: str, user: str) -> Response:
        return self._envelope(command, 0, f"The user “{user}” does not exist.")

    # -- operations ------------------------------------------------------------------------
    def op_version(self, params):
        return self._envelope("version", 1, "OK", {"version": "11.126.0.9"})

    def op_createacct(self, params):
        user = params.get("username", "")
        domain = params.get("domain", "").lower()
        plan = params.get("plan", "")
        problem = self.username_problem(user)
        if not user:
            problem = "No username specified."
        elif not domain:
            problem = "No domain specified."
        elif not params.get("password"):
            problem = "No password specified."
        if problem:
            return self._envelope("createacct", 0, problem)
        if user in self.accounts:
            return self._envelope("createacct", 0, "Sorry, a group for that username already exists.")
        if any(a.domain == domain for a in self.accounts.values()):
            return self._envelope("createacct", 0,
                                  f"Sorry, the domain {domain} is already configured on this server.")
        if plan and plan not in self.plans:
            return self._envelope("createacct", 0, f"The package “{plan}” does not exist.")
        self.accounts[user] = Account(user, domain, plan or "default", params.get("contactemail", ""),
                                      params["password"])
        data = {"ip": "127.0.0.1", "nameserver": "ns1.sandbox.test", "nameserver2": "ns2.sandbox.test",
                "package": plan or "default"}
        return self._envelope("createacct", 1, "Account Creation Ok", data,
                              raw=f"Account creation for {user} complete\n")

    def op_accountsummary(self, params):
        user, domain = params.get("user"), params.get("domain")
        account = self.accounts.get(user) if user else next(
            (a for a in self.accounts.values() if a.domain == (domain or "").lower()), None)
        if account is None:
            return self._missing("accountsummary", user or domain or "")
        return self._envelope("accountsummary", 1, "OK", {"acct": [account.summary(self.username)]})

    def op_listaccts(self, params):
        accounts = list(self.accounts.values())
        search, kind = params.get("search"), params.get("searchtype", "user")
        if search:
            field = {"domain": "domain", "user": "user", "package": "plan"}.get(kind, "user")
            if params.get("searchmethod") == "exact":
                accounts = [a for a in accounts if getattr(a, field) == search]
            else:
                accounts = [a for a in accounts if re.search(search, getattr(a, field))]
        return self._envelope("listaccts", 1, "OK", {"acct": [a.summary(self.username) for a in accounts]})

    def op_listpkgs(self, params):
        return self._envelope("listpkgs", 1, "OK", {"pkg": [{"name": p} for p in sorted(self.plans)]})

    def op_suspendacct(self, params):
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("suspendacct", params.get("user", ""))
        account.suspended = True
        account.suspendreason = params.get("reason", "") or "No reason given"
        return self._envelope("suspendacct", 1, "OK", raw=f"{account.user} account has been suspended\n")

    def op_unsuspendacct(self, params):
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("unsuspendacct", params.get("user", ""))
        account.suspended = False
        return self._envelope("unsuspendacct", 1, "OK", raw=f"{account.user} account is now active\n")

    def op_removeacct(self, params):
        user = params.get("username") or params.get("user", "")
        if self.accounts.pop(user, None) is None:
            return self._missing("removeacct", user)
        return self._envelope("removeacct", 1, f"{user} account removed",
                              raw=f"Removing account {user}...\nDone\n")

    def op_changepackage(self, params):
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("changepackage", params.get("user", ""))
        pkg = params.get("pkg", "")
        if pkg not in self.plans:
            return self._envelope("changepackage", 0, f"The package “{pkg}” does not exist.")
        old, account.plan = account.plan, pkg
        return self._envelope("changepackage", 1, "OK", raw=f"Changing plan from {old} to {pkg}...\n")

    def op_passwd(self, params):
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("passwd", params.get("user", ""))
        if not params.get("password"):
            return self._envelope("passwd", 0, "No password specified.")
        account.password = params["password"]
        return self._envelope("passwd", 1, f"Password changed for user “{account.user}”.", {"app": ["ftp"]})

    def op_create_user_session(self, params):
        # Not in shared/panels/cpanel.md's table; shape as WHM API 1 documents it (unverified).
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("create_user_session", params.get("user", ""))
        if params.get("service") not in ("cpaneld", "whostmgrd", "webmaild"):
            return self._envelope("create_user_session", 0, "Invalid service.")
        token = secrets.token_hex(8)
        session = f"{account.user}:{secrets.token_hex(16)}"
        return self._envelope("create_user_session", 1, "Created session", {
            "url": f"{self.url.replace('http:', 'https:').rsplit(':', 1)[0]}:2083/cpsess{token}/login/?session={session}",
            "session": session, "cp_security_token": f"/cpsess{token}", "service": params["service"],
            "expires": int(time.time()) + 300})

    # -- rules -----------------------------------------------------------------------------
    @staticmethod
    def username_problem(user: str) -> str:
        if not USERNAME_PATTERN.fullmatch(user or "x"):
            return "Invalid username: usernames may only contain lowercase letters and digits, at most 16 characters."
        if user[:1].isdigit() or user.startswith("test"):
            return f"Invalid username “{user}”: usernames cannot begin with a number or the string “test”."
        if user.endswith("assword"):
            return f"Invalid username “{user}”: usernames cannot end with “assword”."
        if user in RESERVED_USERNAMES:
            return f"Invalid username “{user}”: this username is reserved."
        return ""
