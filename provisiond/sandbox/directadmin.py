"""A strict DirectAdmin legacy CMD_API simulator, following DirectAdmin's own docs (issue 10).

Sources, per endpoint (where shared/panels/directadmin.md says otherwise, the vendor wins):

* Transport, every endpoint: "Legacy API" (https://docs.directadmin.com/developer/api/legacy-api.html,
  the same text as http://www.directadmin.com/api.html): HTTP Basic auth with the user and its
  password or a login key; an url-encoded answer "after the DirectAdmin Headers", lists in the
  ``list[]`` array, to be decoded with "unhtmlentities() then parse_str()"; "You MUST have the
  proper permissions ... a User cannot get the list of all the Users on the server, only an
  Admin can". Failure is ``error=1&text=...&details=...`` with HTTP 200 (the page's "Failure
  Returns"). A bad login answers the HTML login page (``text/html``, "DirectAdmin Login").
  ``json=yes`` answers JSON (``{"success": ...}`` / ``{"error": ..., "result": ...}``); its
  non-2xx status is *unverified* (``json_error_status``).
* CMD_API_LOGIN_TEST: legacy-api page ("Login OK").
* CMD_API_ACCOUNT_USER (create): legacy-api page, form ``action=create``, ``add=Submit``,
  ``username`` ("4-8 characters, alphanumeric"), ``email``, ``passwd``/``passwd2``, ``domain``,
  ``package``, ``ip``, ``notify``. ``ip=shared|server|assign``: DirectAdmin 1.44 feature 1500
  (https://www.directadmin.com/features.php?id=1500): "DA will go hunting for an IP to use that
  matches that status (ip=assign will actually look for an IP of status=free) ... If an IP of
  the desired type does not exist, DA will fallback to a shared IP, if it exists in the
  ip.list. If not, it will fallback to the server IP ... If the ip.list is completely empty,
  you'll get a creation error." So ``assign`` with no free IP silently gives the shared (or
  server) IP; it is no error. The refusal texts (duplicate user or domain, unknown package) are
  *unverified* in their exact words.
* CMD_API_SELECT_USERS (suspend/unsuspend/delete): legacy-api page, and the vendor's own
  example github.com/directadmin/httpsocket examples/example.suspend_user.php
  (``location=CMD_SELECT_USERS``, ``suspend=Suspend`` or ``Unsuspend``, ``select0=<user>``);
  delete with ``confirmed=Confirm``, ``delete=yes``. Whether a repeated suspend is an error is
  *unverified* (``repeat_suspend_is_error``), and so are the accepted ``reason`` values
  (``suspend_reasons``, billing and other).
* CMD_API_MODIFY_USER ``action=package``, CMD_API_USER_PASSWD: legacy-api page (and
  httpsocket examples/example.change_pass.php).
* CMD_API_SHOW_USER_CONFIG: the user's ``user.conf`` as url-encoded pairs; the fields are those
  of "Configuration files" (https://docs.directadmin.com/developer/config_files): ``account``
  (ON|OFF), ``date_created``, ``creator`` ("reseller assigned to this account"), ``username``,
  ``usertype`` (user|reseller|admin), ``email``, ``domain``, ``ip``, ``package``,
  ``suspended`` (yes|no), ``suspended_reason``.
* CMD_API_SHOW_ALL_USERS (admin only), CMD_API_SHOW_USERS (the caller's own users): legacy-api
  page; the vendor's account listing is exactly these plus one CMD_API_SHOW_USER_CONFIG per user
  (httpsocket examples/example.account_list_csv.php). The legacy API has no documented bulk
  form; CMD_ALL_USER_SHOW?json=yes is a skin page, and DirectAdmin's API examples page
  (https://docs.directadmin.com/developer/api/examples.html) warns that an undocumented
  endpoint "can change anytime", so the simulator does not serve it. Whether SHOW_ALL_USERS
  also lists reseller and admin accounts is *unverified*: accounts added with
  ``usertype="reseller"`` are listed, and SHOW_USER_CONFIG tells them apart.
* CMD_API_PACKAGES_USER: legacy-api page (``list[]``).

Users of other resellers (issue 10): every account has a ``creator``. A reseller login sees
and changes only its own users; an admin any user. A reseller's refusal for another's user is
``error=1``; its words are *unverified* (``not_owned_details``: DirectAdmin answers a domain that
is not the caller's with "You do not own that domain", solitweb/laravel-directadmin issue 12).
A playbook must not need them to be exact.

Usage (issue 11): CMD_API_SHOW_USER_USAGE and the limits of CMD_API_SHOW_USER_CONFIG, per
``Account.usage`` and ``Account.limits`` (sources there).

User-level calls (issue 14: the shipped step roles), the ``op_pop``, ``op_databases``, ``op_ssl`` below:
CMD_API_POP, CMD_API_DATABASES and CMD_API_SSL, made by the admin "as" the account with the
legacy-api page's "Login-as" (http://www.directadmin.com/api.html, "Login-as with the API": the
user name ``admin|clientusername`` with the admin's own password or login key); and login keys
restricted to some commands (https://www.directadmin.com/features.php?id=1298: "the key can be
set to only be allowed to run certain commands"; the simulator's ``login_key_commands``).
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
# The user-level commands an admin may call logged in as one of its users (login-as).
USER_LEVEL = frozenset({"pop", "databases", "ssl"})
DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
KEY_SIZES = ("2048", "4096", "prime256v1", "secp384r1", "secp521r1")
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
    usertype: str = "user"
    # Use and limits (tests set them; a limit of None is "unlimited"): see ``usage`` and ``limits``.
    disk_used_mb: float = 0.0
    bandwidth_used_mb: float = 0.0
    inodes_used: int = 0
    mailboxes: int = 0
    databases: int = 0
    disk_limit_mb: int | None = None
    bandwidth_limit_mb: int | None = None
    inodes_limit: int | None = None
    # What the user-level calls made (directadmin_user.py): "box@domain" -> {"password", "quota"},
    # database "user_name" -> {"user", "password"}, and the Let's Encrypt certificate of the domain.
    pops: dict = dataclasses.field(default_factory=dict)
    dbs: dict = dataclasses.field(default_factory=dict)
    certificate: dict | None = None

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
        """user.conf as CMD_API_SHOW_USER_CONFIG prints it (docs.directadmin.com config_files)."""
        return {"account": "ON", "username": self.user, "usertype": self.usertype,
                "creator": self.creator or creator, "domain": self.domain, "email": self.email,
                "ip": self.ip, "package": self.package,
                "suspended": "yes" if self.suspended else "no",
                "suspended_reason": self.suspend_reason if self.suspended else "",
                "date_created": time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(self.created)),
                **self.limits()}


class DirectAdminSimulator(PanelSimulator):
    """``DirectAdminSimulator(password="pw", login_key="k")``; ``sim.accounts`` is the state.

    Knobs: ``max_username_length`` (per server, default 8); the ip.list as ``ips`` (the first
    is the server IP), ``shared_ips`` and ``free_ips`` (``ip=assign`` takes one; with none it
    falls back to a shared IP, then the server IP, as feature 1500 says); ``level`` ``"admin"`` or ``"reseller"`` (a reseller may not call
    CMD_API_SHOW_ALL_USERS); ``repeat_suspend_is_error`` (whether suspending a suspended user
    fails is unverified: strict by default); ``json_error_status`` and ``login_status``
    (unverified HTTP statuses of a ``json=yes`` error and of the login page);
    ``not_owned_details`` (the unverified words of a refusal for another reseller's user).
    ``sim.add_foreign_user(user, domain, creator)`` puts another reseller's user on the server.
    ``login_key_commands``: the commands the login key may run (None: every one; a login with
    the password is never restricted); ``letsencrypt_refusals``: host -> the words of a failed
    Let's Encrypt request (the host does not resolve to the server, ...).
    """

    panel = "directadmin"

    def __init__(self, username: str = "admin", password: str = "sandbox-pass",
                 login_key: str | None = None, packages=("basic", "pro", "business"),
                 max_username_length: int = 8, ips=("127.0.0.1",), free_ips=(), shared_ips=(),
                 level: str = "admin", repeat_suspend_is_error: bool = True,
                 suspend_reasons=("billing", "other"), json_error_status: int = 400,
                 login_status: int = 200, system_users=SYSTEM_USERS,
                 not_owned_details: str = "You do not own that user", login_key_commands=None,
                 letsencrypt_refusals=None, **kwargs):
        super().__init__(**kwargs)
        self.username, self.password, self.login_key = username, password, login_key
        self.packages = set(packages)
        # A mapping name -> {"quota": MB, "bandwidth": MB} gives packages limits (see _customize).
        self.package_limits = {name: dict(limits) for name, limits in packages.items()} \
            if isinstance(packages, dict) else {}
        self.max_username_length = max_username_length
        self.ips, self.free_ips, self.shared_ips = list(ips), list(free_ips), list(shared_ips)
        self.level = level
        self.repeat_suspend_is_error = repeat_suspend_is_error
        self.suspend_reasons = set(suspend_reasons)
        self.json_error_status, self.login_status = json_error_status, login_status
        self.system_users = set(system_users) | {username}
        self.not_owned_details = not_owned_details
        self.accounts: dict[str, Account] = {}
        self.login_key_commands = None if login_key_commands is None else set(login_key_commands)
        self.letsencrypt_refusals = dict(letsencrypt_refusals or {})
        self.acting: Account | None = None   # the account a login-as call acts as

    # -- wire ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        match = re.fullmatch(r"/CMD_API_([A-Z_]+)", request.path)
        login = self._login(request.headers.get("authorization", ""))
        if login is None or not match:
            # DirectAdmin serves its HTML skin (the login page) for anything but an API call.
            return Response(self.login_status, LOGIN_PAGE, "text/html; charset=utf-8")
        by_key, as_user = login
        params = request.form()
        as_json = params.get("json") == "yes"
        name = match.group(1).lower()
        operation = getattr(self, f"op_{name}", None)
        try:
            with self.lock:
                acting = self._login_as(as_user)
                if acting is False:
                    return Response(self.login_status, LOGIN_PAGE, "text/html; charset=utf-8")
                allowed = self.login_key_commands
                if operation is None or (by_key and allowed is not None and request.path[1:] not in allowed):
                    raise Failure(NO_AUTHORITY)
                if acting is not None and name not in USER_LEVEL and name != "login_test":
                    raise Failure(NO_AUTHORITY)  # an admin's call, made while logged in as a user
                self.acting = acting  # None: the caller's own account, which holds no domain here
                return self._render(operation(params), as_json)
        except Failure as failure:
            if as_json:
                body = {"error": failure.text, "result": failure.details}
                return Response(self.json_error_status, json.dumps(body).encode())
            return self._encoded({"error": "1", "text": failure.text, "details": failure.details})

    def _login(self, header: str) -> tuple[bool, str] | None:
        """(logged in with the login key, the user logged in as or ""), or None: refused."""
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        admin, _, as_user = user.partition("|")
        secrets = {s for s in (self.password, self.login_key) if s}
        if scheme.lower() != "basic" or admin != self.username or secret not in secrets:
            return None
        return secret == self.login_key and secret != self.password, as_user

    def _login_as(self, user: str):
        """The account of a login-as (None without one); False when the caller may not log in
        as it (no such user, or another reseller's): DirectAdmin answers its login page then
        (*unverified*)."""
        if not user:
            return None
        account = self.accounts.get(user)
        if account is None or (self.level != "admin" and not self._mine(account)):
            return False
        return account

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
                         package: str = "basic", usertype: str = "user") -> Account:
        """Another reseller's user (or, with ``usertype="reseller"``, a reseller account)."""
        account = Account(user, domain, package, f"owner@{domain}", "foreign-pass", self.ips[0],
                          creator=creator, usertype=usertype)
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
        self._package_limits(self.accounts[user])
        return Ok(f"User {user} created", "Unix User created successfully")

    def _pick_ip(self, ip: str, text: str) -> str:
        """An address, or one of the wanted status with feature 1500's fallbacks."""
        wanted = {"assign": self.free_ips, "shared": self.shared_ips, "server": self.ips[:1]}
        if ip in wanted:
            for pool in (wanted[ip], self.shared_ips, self.ips[:1]):
                if pool:
                    return pool.pop(0) if pool is self.free_ips else pool[0]
            raise Failure(text, "There are no IPs in the ip.list")
        if ip not in self.ips + self.shared_ips + self.free_ips:
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
        if params.get("action") == "customize":
            return self._customize(params, text)
        if params.get("action") != "package":
            raise Failure(text, "Only action=package and action=customize are supported")
        account = self._account(params.get("user", ""), text)
        package = params.get("package", "")
        if package not in self.packages:
            raise Failure(text, f"The package {package} does not exist")
        account.package = package
        self._package_limits(account)
        return Ok("User modified", f"Package changed to {package}")

    # -- scale: a package's limits, then the user's own (issue 14 item 4) ---------------------
    # A user on a package has the package's limits in its user.conf ("Configuration files",
    # https://docs.directadmin.com/developer/config_files: user.conf holds bandwidth, quota, ...
    # and package); CMD_API_MODIFY_USER action=package moves it to another package's. The
    # user's own limits are "Modify User Settings" (http://directadm.in/commands/save, the
    # legacy API's CMD_API_MODIFY_USER): action=customize, user, "bandwidth: Amount of bandwidth
    # User will be allowed to use. Number, in Megabytes", "ubandwidth: ON or OFF. If ON,
    # bandwidth is ignored and no limit is set", and quota / uquota alike, with the user's other
    # limits (vdomains/uvdomains, nsubdomains, nemails, ... ) in the same form. The legacy API
    # page says an ON/OFF box not sent is OFF; what DirectAdmin does with a number not sent is
    # not documented, so the simulator refuses a customize without bandwidth (or ubandwidth=ON)
    # and quota (or uquota=ON), and keeps the limits it does not model. The answer's words
    # (*unverified*) follow the other CMD_API_MODIFY_USER answers.
    def _package_limits(self, account: Account) -> None:
        limits = self.package_limits.get(account.package, {})
        account.disk_limit_mb, account.bandwidth_limit_mb = limits.get("quota"), limits.get("bandwidth")

    def _customize(self, params, text):
        account = self._account(params.get("user", ""), text)
        limits = {}
        for name in ("bandwidth", "quota"):
            if params.get(f"u{name}") == "ON":
                limits[name] = None
            elif re.fullmatch(r"\d{1,9}", params.get(name, "")):
                limits[name] = int(params[name])
            else:
                raise Failure(text, f"{name} must be a number of megabytes, or u{name}=ON for no limit")
        account.bandwidth_limit_mb, account.disk_limit_mb = limits["bandwidth"], limits["quota"]
        return Ok("User modified", "User settings saved")

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

    # -- user-level calls, made logged in as the account (login-as) ------------------------
    def _own_domain(self, params, text: str) -> Account:
        """The acting account when ``domain`` is its own; DirectAdmin's refusal otherwise (the
        words are those solitweb/laravel-directadmin issue 12 quotes)."""
        domain = params.get("domain", "")
        if self.acting is None or self.acting.domain != domain:
            raise Failure(text, "You do not own that domain")
        return self.acting

    def op_pop(self, params):
        """CMD_API_POP (http://directadm.in/commands/email): ``action=list&domain=`` lists the
        boxes in ``list[]``; ``action=create`` with ``domain``, ``user``, ``passwd`` and
        ``quota`` ("Integer in Megabytes. Zero for unlimited") makes one. The refusal of an
        existing box is DirectAdmin's captured answer (shared/panels/directadmin.md): "Unable to
        create email account" / "That user already exists<br>\\n". A ``passwd2`` that is sent
        must match (omines/directadmin Mailbox::create sends it)."""
        action = params.get("action", "")
        if action == "list":
            account = self._own_domain(params, "Unable to show email accounts")
            return sorted(address.split("@")[0] for address in account.pops
                          if address.endswith("@" + params["domain"]))
        text = "Unable to create email account"
        if action != "create":
            raise Failure("Unknown action", "action=list or action=create")
        account = self._own_domain(params, text)
        box, password, quota = params.get("user", ""), params.get("passwd", ""), params.get("quota", "")
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", box or ""):
            raise Failure(text, f"Invalid email user: {box}")
        if not password:
            raise Failure(text, "No password given")
        if "passwd2" in params and params["passwd2"] != password:
            raise Failure(text, "Passwords do not match")
        if not quota.isdigit():
            raise Failure(text, "The quota must be a whole number of megabytes (0: unlimited)")
        address = f"{box}@{params['domain']}"
        if address in account.pops or box == account.user:
            raise Failure(text, "That user already exists<br>\n")
        account.pops[address] = {"password": password, "quota": int(quota)}
        return Ok("Email account created", "")

    def op_databases(self, params):
        """CMD_API_DATABASES: without ``action`` the user's databases in ``list[]``;
        ``action=create`` with ``name``, ``user``, ``passwd``, ``passwd2`` makes ``<user>_<name>``
        owned by the new database user ``<user>_<user>`` (omines/directadmin
        src/DirectAdmin/Objects/Database.php, ``create``: names given "without <user>_ prefix").
        The refusal words are *unverified*."""
        account = self.acting
        if account is None:
            raise Failure("Unable to show databases", "You do not own any databases")
        action = params.get("action", "")
        if not action:
            return sorted(account.dbs)
        text = "Unable to create database"
        if action != "create":
            raise Failure("Unknown action", "action=create")
        name, user = params.get("name", ""), params.get("user", "")
        for field, value in (("name", name), ("user", user)):
            if not DB_NAME.match(value) or len(f"{account.user}_{value}") > 64:
                raise Failure(text, f"Invalid database {field}: {value}")
        if not params.get("passwd") or params.get("passwd") != params.get("passwd2"):
            raise Failure(text, "Passwords are empty or do not match")
        full = f"{account.user}_{name}"
        if full in account.dbs:
            raise Failure(text, f"Database {full} already exists")
        if any(db["user"] == f"{account.user}_{user}" for db in account.dbs.values()):
            raise Failure(text, f"Database user {account.user}_{user} already exists")
        account.dbs[full] = {"user": f"{account.user}_{user}", "password": params["passwd"]}
        return Ok("Database Created", f"Database {full} created")

    def op_ssl(self, params):
        """CMD_API_SSL. A read (no ``action``) gives the domain's certificate as pairs; the fields
        ``ssl_on``, ``signed`` and ``issuer_simple`` (letsencrypt) are those of a captured answer
        quoted in a public WHMCS module (``GET /CMD_API_SSL?domain=x``), *unverified* against
        DirectAdmin's docs. ``action=save&type=create&request=letsencrypt`` with the hosts in
        ``le_select0``, ``le_select1``, ... (and ``keysize``, ``encryption``) asks Let's Encrypt,
        as docs.directadmin.com/developer/hooks/ssl_letsencrypt.html lists the form of
        CMD_SSL's save; a host Let's Encrypt refuses fails the whole request."""
        text = "Error with the certificate request"
        account = self._own_domain(params, text)
        cert = account.certificate
        if not params.get("action"):
            return {"domain": account.domain, "ssl_on": "yes" if cert else "no",
                    "signed": "yes" if cert else "no", "issuer_simple": "letsencrypt" if cert else "",
                    "server": "no" if cert else "yes"}
        if (params.get("action"), params.get("type"), params.get("request")) != ("save", "create", "letsencrypt"):
            raise Failure(text, "only action=save&type=create&request=letsencrypt is served here")
        hosts = [v for k, v in sorted(params.items()) if re.fullmatch(r"le_select\d+", k)]
        if not hosts:
            raise Failure(text, "No domains were selected (le_select0)")
        for host in hosts:
            if host != account.domain and not host.endswith("." + account.domain):
                raise Failure(text, f"{host} is not a host of {account.domain}")
        if params.get("keysize", "secp384r1") not in KEY_SIZES:
            raise Failure(text, f"Invalid key size: {params['keysize']}")
        refused = [self.letsencrypt_refusals[h] for h in hosts if h in self.letsencrypt_refusals]
        if refused:
            raise Failure("Error getting the certificate from Let's Encrypt", refused[0])
        account.certificate = {"hosts": hosts, "keysize": params.get("keysize", "secp384r1")}
        return Ok("Certificate and Key Saved.", "")

    # -- rules -----------------------------------------------------------------------------
    def username_problem(self, user: str) -> str:
        if not USERNAME_PATTERN.match(user):
            return ("Invalid username: use lowercase letters and digits only, starting with a "
                    "letter")
        if not 4 <= len(user) <= self.max_username_length:
            return f"The username must be 4 to {self.max_username_length} characters long"
        return ""
