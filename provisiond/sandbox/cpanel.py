"""A strict WHM API 1 simulator (shared/panels/cpanel.md), after cPanel's API reference.

It checks the ``Authorization: whm USER:TOKEN`` header, answers every call in the API 1 envelope
(HTTP 200, failure is ``metadata.result == 0`` with the text in ``metadata.reason``), enforces
cPanel's username rules, refuses duplicate users and domains and unknown plans, and keeps each
account's state. Sources, per function (the vendor's page decides where shared/panels/cpanel.md
differs; texts no page documents are marked *unverified* where they are produced):

- Transport and envelope (``/json-api/<function>?api.version=1``, ``metadata.command / result /
  reason / version``, ``metadata.output.raw``): https://api.docs.cpanel.net/whm/introduction/ ;
  tokens (``Authorization: whm USER:TOKEN``):
  https://api.docs.cpanel.net/whm/tokens/ . A refused token is HTTP 403 with the API 2
  ``cpanelresult`` "Access denied" body that shared/panels/cpanel.md captured (*unverified* on a
  vendor page).
- ``createacct``: https://api.docs.cpanel.net/openapi/whm/operation/createacct/ — ``username``
  at most 16 characters, "The system will automatically convert this value to all lowercase
  letters", cannot begin with a number or ``test``; ``quota`` an integer of MB from 0 to 999999
  where "0 — The account's disk space is unlimited"; ``bwlimit`` in MB where "0, unlimited, or
  null — The account possesses unlimited bandwidth". Not sent, both come from the plan
  (``plans`` may give a plan's ``QUOTA`` / ``BWLIMIT`` as listpkgs names them; unlimited
  otherwise). ``reason`` "Account Creation Ok" on success. The refusal texts (duplicate user,
  duplicate domain, unknown plan) are the ones shared/panels/cpanel.md quotes; only the duplicate
  user's was captured from a real server.
- ``accountsummary``: https://api.docs.cpanel.net/openapi/whm/operation/accountsummary/ ;
  ``listaccts``: https://api.docs.cpanel.net/openapi/whm/operation/listaccts/ — with neither
  ``search`` nor ``searchtype`` it "returns all of the server's accounts"; ``searchtype`` is
  domain, owner, user, ip or package and ``searchmethod`` exact or regex. Both answer
  ``data.acct[]`` with ``user``, ``domain``, ``ip``, ``plan``, ``owner``, ``email``,
  ``suspended`` (0/1), ``suspendreason`` ("not suspended" when active), ``suspendtime``,
  ``is_locked``, ``disklimit`` ("unlimited" or "<MB>M"), ``diskused``, ``startdate``,
  ``unix_startdate`` (a captured accountsummary answer shows the same keys).
- ``suspendacct``: https://api.docs.cpanel.net/openapi/whm/operation/suspendacct/ — ``user``,
  ``reason`` (default "Unknown"), ``disallowun`` (1: only root may unsuspend, ``is_locked``).
- ``unsuspendacct``: https://api.docs.cpanel.net/openapi/whm/operation/unsuspendacct/ .
- ``removeacct``: https://api.docs.cpanel.net/openapi/whm/operation/removeacct/ — ``username``
  (``user`` is the older name, still taken), ``keepdns``.
- ``changepackage``: https://api.docs.cpanel.net/openapi/whm/operation/changepackage/ — ``user``,
  ``pkg``.
- ``passwd``: https://api.docs.cpanel.net/openapi/whm/operation/passwd/ — ``user``,
  ``password``, ``db_pass_update``.
- ``listpkgs``: https://api.docs.cpanel.net/openapi/whm/operation/listpkgs/ — ``data.pkg[]``
  with ``name``, ``QUOTA``, ``BWLIMIT``.
- ``version``: https://api.docs.cpanel.net/openapi/whm/operation/version/ — ``data.version``.
- ``create_user_session`` (the one-time login link, issue 10):
  https://api.docs.cpanel.net/openapi/whm/operation/create_user_session/ — ``user`` and
  ``service`` (cpaneld, whostmgrd, webmaild) in, ``data.url`` / ``session`` /
  ``cp_security_token`` / ``expires`` out; the URL logs the user in once.

create_user_session (the one-time login link, issue 10) follows WHM API 1's page
https://api.docs.cpanel.net/openapi/whm/operation/create_user_session/ : ``user`` and
``service`` (cpaneld, whostmgrd, webmaild) in, ``data.url`` / ``session`` / ``cp_security_token``
/ ``expires`` out; the URL logs the user in once.

listaccts (issue 11, ``list_accounts``) follows WHM API 1's page "Return cPanel accounts"
(https://api.docs.cpanel.net/openapi/whm/operation/listaccts/, also
https://api.docs.cpanel.net/specifications/whm.openapi/account-management/accounts-listaccts):
without ``search`` and ``searchtype`` it returns every account of the server in ``data.acct``;
``searchtype`` is domain, owner, user, ip or package, ``searchmethod`` exact or regex (the value
contains the search); ``want`` is a comma-separated list of the returns to include (all when
not given). Each account carries the accountsummary fields, among them ``user``, ``domain``,
``plan``, ``suspended`` (1 or 0) and ``email``; an account without a contact address reports
``email`` as ``*unknown*`` (as WHM does; wording not in the page).

An unknown user is ``result: 0`` with "The user “<user>” does not exist." (*unverified*).

Usage (issue 11): listaccts and accountsummary report ``diskused`` / ``disklimit`` as MB
strings and ``inodesused`` / ``inodeslimit`` like the accountsummary page
(https://api.docs.cpanel.net/openapi/whm/operation/accountsummary/) and the listaccts page
(https://api.docs.cpanel.net/specifications/whm.openapi/account-management/listaccts);
showbw answers per its page (https://api.docs.cpanel.net/openapi/whm/operation/showbw/).
Tests set an account's ``disk_used_mb``, ``inodes_used``, ``inodes_limit`` and ``bandwidth_bytes``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import time

from provisiond.sandbox.base import PanelSimulator, Request, Response
from provisiond.sandbox.cpanel_uapi import AccountServices, UapiCalls

RESERVED_USERNAMES = frozenset({
    "root", "admin", "abuse", "ftp", "mysql", "nobody", "postmaster", "cpanel", "whm", "bin",
    "daemon", "mail", "news", "uucp", "operator", "games", "apache", "named", "postgres",
    "webmaster", "hostmaster", "mailer-daemon", "www", "all", "virtfs", "cpanelphpmyadmin",
})
SESSION_PORTS = {"cpaneld": 2083, "whostmgrd": 2087, "webmaild": 2096}
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
    suspendtime: int = 0
    locked: bool = False  # suspendacct disallowun=1: only root may unsuspend
    quota: int = 0    # MB; 0 is unlimited, as WHM means it
    bwlimit: int = 0  # MB; 0 is unlimited
    startdate: int = dataclasses.field(default_factory=lambda: int(time.time()))
    # What the account uses (tests set these): see ``usage_fields`` and ``op_showbw``.
    disk_used_mb: int = 0
    inodes_used: int = 0
    inodes_limit: int = 0       # 0 is unlimited
    bandwidth_bytes: int = 0    # this month's traffic

    def usage_fields(self) -> dict:
        """listaccts' and accountsummary's use figures, as WHM API 1 spells them: ``diskused``
        and ``disklimit`` are MB strings ("14M", "unlimited"), ``inodesused`` a number,
        ``inodeslimit`` a number or "unlimited"."""
        return {"diskused": f"{self.disk_used_mb}M",
                "disklimit": f"{self.quota}M" if self.quota else "unlimited",
                "inodesused": self.inodes_used,
                "inodeslimit": self.inodes_limit if self.inodes_limit else "unlimited"}

    def summary(self, owner: str) -> dict:
        return {
            "user": self.user, "domain": self.domain, "ip": "127.0.0.1", "plan": self.plan,
            "owner": owner, "email": self.email or "*unknown*", "suspended": int(self.suspended),
            "suspendreason": self.suspendreason if self.suspended else "not suspended",
            "suspendtime": self.suspendtime if self.suspended else 0, "is_locked": int(self.locked),
            "startdate": time.strftime("%y %b %d %H:%M", time.gmtime(self.startdate)),
            "unix_startdate": self.startdate, **self.usage_fields(),
        }


class WhmSimulator(UapiCalls, PanelSimulator):
    """``WhmSimulator(token="t", plans={"basic"})``; ``sim.accounts`` is the panel's state, and
    ``sim.services[user]`` each account's mailboxes, databases and certificates (cpanel_uapi.py).

    ``plans`` is a list of names (no limits) or a mapping name -> {"QUOTA": mb, "BWLIMIT": mb}
    ("unlimited" or 0 for none)."""

    panel = "cpanel"

    def __init__(self, token: str = "sandbox-token", username: str = "root",
                 plans=("basic", "pro", "business"), **kwargs):
        super().__init__(**kwargs)
        self.token = token
        self.username = username
        self.plans = dict(plans) if isinstance(plans, dict) else {name: {} for name in plans}
        self.accounts: dict[str, Account] = {}
        self.sessions: dict[str, str] = {}  # create_user_session: session -> user
        self.services: dict[str, AccountServices] = {}  # uapi_cpanel's state per account

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
        user = params.get("username", "").lower()  # "automatically convert[ed] ... to all lowercase"
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
        limits = self.plans.get(plan, {})
        try:
            quota = self._megabytes(params.get("quota", limits.get("QUOTA")), "quota", 999999)
            bwlimit = self._megabytes(params.get("bwlimit", limits.get("BWLIMIT")), "bwlimit", None)
        except ValueError as refused:
            return self._envelope("createacct", 0, str(refused))
        self.accounts[user] = Account(user, domain, plan or "default", params.get("contactemail", ""),
                                      params["password"], quota=quota, bwlimit=bwlimit)
        data = {"ip": "127.0.0.1", "nameserver": "ns1.sandbox.test", "nameserver2": "ns2.sandbox.test",
                "package": plan or "default"}
        return self._envelope("createacct", 1, "Account Creation Ok", data,
                              raw=f"Account creation for {user} complete\n")

    @staticmethod
    def _megabytes(value, name: str, most: int | None) -> int:
        """A limit in MB as createacct reads it: 0, "unlimited" or nothing is unlimited (0)."""
        if value in (None, "", "unlimited", "null"):
            return 0
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0 or (most is not None and number > most):
            # Wording unverified; WHM refuses a value outside the documented range.
            raise ValueError(f"The “{name}” parameter must be a whole number of megabytes "
                             f"from 0{f' to {most}' if most else ''}, or “unlimited”.")
        return number

    def op_accountsummary(self, params):
        user, domain = params.get("user"), params.get("domain")
        account = self.accounts.get(user) if user else next(
            (a for a in self.accounts.values() if a.domain == (domain or "").lower()), None)
        if account is None:
            return self._missing("accountsummary", user or domain or "")
        return self._envelope("accountsummary", 1, "OK", {"acct": [account.summary(self.username)]})

    def op_listaccts(self, params):
        summaries = [a.summary(self.username) for a in self.accounts.values()]
        search, kind = params.get("search"), params.get("searchtype", "user")
        if search:
            field = {"domain": "domain", "owner": "owner", "user": "user", "ip": "ip",
                     "package": "plan"}.get(kind, "user")
            if params.get("searchmethod") == "exact":
                summaries = [a for a in summaries if a[field] == search]
            else:
                summaries = [a for a in summaries if re.search(search, a[field])]
        wanted = [w.strip() for w in params.get("want", "").split(",") if w.strip()]
        if wanted:
            summaries = [{k: a[k] for k in wanted if k in a} for a in summaries]
        return self._envelope("listaccts", 1, "OK", {"acct": summaries})

    def op_showbw(self, params):
        # WHM API 1 showbw (https://api.docs.cpanel.net/openapi/whm/operation/showbw/): month,
        # year, search, searchtype (domain, owner, user, ip, package), showres in; data.acct[]
        # with user, maindomain, owner, deleted, reseller, totalbytes (the period's traffic in
        # bytes), limit (the bandwidth limit in bytes, 0 unlimited) and bwusage per domain
        # (domain, usage in bytes, deleted); data.month, year, reseller, totalused. The
        # simulator keeps one figure per account, this month's, and answers it whatever the month.
        accounts = list(self.accounts.values())
        search, kind = params.get("search"), params.get("searchtype")
        if search and kind:
            field = {"domain": "domain", "user": "user", "package": "plan"}.get(kind)
            accounts = [a for a in accounts if field and re.search(search, getattr(a, field))]
        rows = [{"user": a.user, "maindomain": a.domain, "owner": self.username, "deleted": 0, "reseller": 0,
                 "totalbytes": a.bandwidth_bytes, "limit": a.bwlimit * 1024 * 1024,
                 "bwusage": [{"domain": a.domain, "usage": a.bandwidth_bytes, "deleted": 0}]}
                for a in accounts]
        now = time.gmtime()
        return self._envelope("showbw", 1, "OK", {
            "acct": rows, "month": int(params.get("month") or now.tm_mon),
            "year": int(params.get("year") or now.tm_year), "reseller": self.username,
            "totalused": sum(r["totalbytes"] for r in rows)})

    def op_listpkgs(self, params):
        pkgs = [{"name": name, "QUOTA": str(limits.get("QUOTA", "unlimited")),
                 "BWLIMIT": str(limits.get("BWLIMIT", "unlimited"))}
                for name, limits in sorted(self.plans.items())]
        return self._envelope("listpkgs", 1, "OK", {"pkg": pkgs})

    def op_suspendacct(self, params):
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("suspendacct", params.get("user", ""))
        account.suspended = True
        account.suspendreason = params.get("reason", "") or "Unknown"  # the documented default
        account.suspendtime = int(time.time())
        account.locked = params.get("disallowun") == "1"
        return self._envelope("suspendacct", 1, "OK", raw=f"{account.user} account has been suspended\n")

    def op_unsuspendacct(self, params):
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("unsuspendacct", params.get("user", ""))
        account.suspended, account.locked = False, False
        return self._envelope("unsuspendacct", 1, "OK", raw=f"{account.user} account is now active\n")

    def op_removeacct(self, params):
        user = params.get("username") or params.get("user", "")
        if self.accounts.pop(user, None) is None:
            return self._missing("removeacct", user)
        self.services.pop(user, None)  # its mail, databases and certificates go with it
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
        account.quota, account.bwlimit = self._plan_limits(pkg)  # see op_editquota's note
        return self._envelope("changepackage", 1, "OK", raw=f"Changing plan from {old} to {pkg}...\n")

    # -- scale: the plan's limits, then an account's own (issue 14 item 4) --------------------
    # changepackage (https://api.docs.cpanel.net/openapi/whm/operation/changepackage/) sets the
    # account's limits to the new plan's: its sample output reads "Changing the account bandwidth
    # limit from “0” to “unlimited”" ... "Setting quota to “unlimited”", so a custom quota given
    # at createacct is gone after it. An account's own limits are then set one call each, in MB:
    # - editquota (https://api.docs.cpanel.net/openapi/whm/operation/editquota/): ``user`` and
    #   ``quota`` both required; "A positive integer that represents the maximum amount of disk
    #   space, in megabytes (MB)", "0 or unlimited grants the account unlimited disk space";
    #   answer ``metadata.reason`` "Set quota for user." (the sample's user is "user").
    # - limitbw (https://api.docs.cpanel.net/openapi/whm/operation/limitbw/): ``user`` required,
    #   ``bwlimit`` in MB, default "unlimited", "0 and unlimited - Grant the user unlimited
    #   bandwidth"; answer ``data.bwlimits[]`` (bwlimit, bwlimitenable, domains, human_bwlimit,
    #   human_bwused, unlimited) and reason "Bandwidth Limit for username has been set to
    #   unlimited megabytes". ``bwlimit`` in that list is in bytes: the page's sample only shows
    #   0, cPanel's older page (http://twiki.cpanel.net/twiki/bin/view/AllDocumentation/
    #   AutomationIntegration/LimitBandwidth) shows bwlimit=5 answered as 5242880.
    # modifyacct (https://api.docs.cpanel.net/specifications/whm.openapi/account-management/modifyacct.md)
    # also takes BWLIMIT, but in bytes, and the vendor advises against modifying an account that
    # uses a plan; the playbooks do not call it and the simulator does not serve it.
    def _plan_limits(self, plan: str) -> tuple[int, int]:
        limits = self.plans.get(plan, {})
        return (self._megabytes(limits.get("QUOTA"), "quota", 999999),
                self._megabytes(limits.get("BWLIMIT"), "bwlimit", None))

    def op_editquota(self, params):
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("editquota", params.get("user", ""))
        if "quota" not in params:
            return self._envelope("editquota", 0, "No quota specified.")  # wording *unverified*
        try:
            account.quota = self._megabytes(params["quota"], "quota", None)
        except ValueError as refused:
            return self._envelope("editquota", 0, str(refused))
        return self._envelope("editquota", 1, f"Set quota for {account.user}.")

    def op_limitbw(self, params):
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("limitbw", params.get("user", ""))
        try:
            account.bwlimit = self._megabytes(params.get("bwlimit", "unlimited"), "bwlimit", None)
        except ValueError as refused:
            return self._envelope("limitbw", 0, str(refused))
        shown = str(account.bwlimit) if account.bwlimit else "unlimited"
        return self._envelope("limitbw", 1, f"Bandwidth Limit for {account.user} has been set to {shown} megabytes",
                              {"bwlimits": [{"bwlimit": account.bwlimit * 1024 * 1024,
                                             "bwlimitenable": int(bool(account.bwlimit)),
                                             "domains": [account.domain],
                                             "human_bwlimit": f"{shown} MB" if account.bwlimit else "unlimited",
                                             "human_bwused": "none", "unlimited": int(not account.bwlimit)}]})

    def op_passwd(self, params):
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("passwd", params.get("user", ""))
        if not params.get("password"):
            return self._envelope("passwd", 0, "No password specified.")
        account.password = params["password"]
        return self._envelope("passwd", 1, f"Password changed for user “{account.user}”.", {"app": ["ftp"]})

    def op_create_user_session(self, params):
        # WHM API 1 create_user_session (https://api.docs.cpanel.net/openapi/whm/operation/create_user_session/):
        # user, service (cpaneld, whostmgrd, webmaild); data.url is
        # "https://hostname.example.com:2083/cpsess1234567890/login/?session=username:<64 letters>",
        # data.session "username:<...>", data.cp_security_token "/cpsess<10 digits>", data.expires
        # a Unix time. The session is single-use: ``sessions`` maps each one made to its user.
        account = self.accounts.get(params.get("user", ""))
        if account is None:
            return self._missing("create_user_session", params.get("user", ""))
        if params.get("service") not in SESSION_PORTS:
            return self._envelope("create_user_session", 0, "Invalid service.")
        token = "".join(secrets.choice("0123456789") for _ in range(10))
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        session = f"{account.user}:{''.join(secrets.choice(alphabet) for _ in range(64))}"
        self.sessions[session] = account.user
        host = self.url.split("://", 1)[1].rsplit(":", 1)[0]
        return self._envelope("create_user_session", 1, "Created session", {
            "url": f"https://{host}:{SESSION_PORTS[params['service']]}/cpsess{token}/login/?session={session}",
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
