"""A strict HestiaCP /api/ simulator, rebuilt from hestiacp/hestiacp's own code.

Sources (hestiacp/hestiacp, main branch), per part:

- the entry, ``/api/``: ``web/api/index.php``. Form posts (or a JSON body) authenticated by
  ``access_key`` + ``secret_key`` (or ``hash=ACCESS:SECRET``; the legacy ``hash=<key>`` and
  ``user``/``password`` only when configured). ``returncode=yes`` answers the exit code alone
  with HTTP 200 and a ``Hestia-Exit-Code`` header; ``returncode=no`` answers the command's
  trimmed output, 204 when it has none, ``application/json`` when it parses as JSON, and the
  mapped status on failure. Early failures go through ``api_error`` (mapped status, body
  ``Error: ...`` or the code).
- exit code -> HTTP status: ``exit_code_to_http_code`` in ``web/inc/helpers.php`` (0 -> 200,
  E_ARGS -> 400, E_INVALID -> 422, E_PASSWORD / E_SUSPENDED / E_UNSUSPENDED / E_FORBIDEN /
  E_API_DISABLED -> 401, E_DISABLED -> 400, anything else -> 400); the codes are the E_* of
  ``func/main.sh`` (E_FORBIDEN is 10).
- the key check: ``bin/v-check-access-key`` with ``check_access_key_secret`` and
  ``check_access_key_cmd`` of ``func/main.sh``: every failure of the key is exit 9 (E_PASSWORD;
  ``abort_missmatch`` folds the others into it) except a command outside the key's permissions
  or unknown, exit 10 "Key X don't have permission to run the command C" / "Command C not
  found", which ``index.php`` answers HTTP 401. A key's permissions are presets of
  ``install/common/api/`` (``get_apis_commands``); the ``billing`` preset is copied below from
  ``install/common/api/billing``. A key without permissions belongs to the admin and may run
  everything. Keys are made by ``bin/v-add-access-key USER [PERMISSIONS] [COMMENT] [FORMAT]``.
- the commands, each following its ``bin/<command>`` script and the checks of ``func/main.sh``
  (``check_args``, ``is_format_valid``, ``is_object_valid``, ``is_object_unsuspended``) in the
  script's order, with their exit codes and ``Error:`` lines: ``v-add-user`` (reserved names,
  ``NAME`` from NAME [LASTNAME]), ``v-add-domain`` (web, DNS and mail domain through
  ``v-add-web-domain``, ``v-add-dns-domain``, ``v-add-mail-domain``; a sub-command's failure
  prints its own line and then "can't add web domain"; code 8 "Package limit reached" only when
  all three are full; ``is_domain_new`` of ``func/domain.sh`` for "Web domain X exists"),
  ``v-add-web-domain``, ``v-suspend-user``, ``v-unsuspend-user``, ``v-delete-user``,
  ``v-change-user-package``, ``v-change-user-password``, ``v-change-user-name`` (not in the
  billing preset: root's fix for a user made without NAME), ``v-list-user`` and ``v-list-users``
  (their ``json_list``: ``{"<user>": {"NAME": ..., "PACKAGE": ..., "CONTACT": ...,
  "SUSPENDED": "yes|no", "U_WEB_DOMAINS": ..., ...}}``), ``v-list-web-domains``,
  ``v-list-user-packages``, ``v-list-sys-info``.
- the step roles' commands (issue 14), none of them in the billing preset:
  ``v-add-mail-account`` (bin/v-add-mail-account: USER DOMAIN ACCOUNT PASSWORD [QUOTA], the
  account lowercased, then is_object_valid 'mail' 'DOMAIN', is_package_full 'MAIL_ACCOUNTS',
  is_mail_new: "mail account X already exists", 4) and ``v-list-mail-accounts`` (USER DOMAIN
  [FORMAT]; its json_list keyed by ACCOUNT), both in the ``mail-accounts`` preset
  (install/common/api/mail-accounts); ``v-add-database`` (bin/v-add-database: USER DATABASE
  DBUSER DBPASS [TYPE] [HOST] [CHARSET], which makes ``USER_DATABASE`` and ``USER_DBUSER``;
  is_object_new 'db' 'DB' / 'DBUSER': "DB=X already exists", 4; is_dbuser_format_valid: 32
  characters at most; is_package_full 'DATABASES') and ``v-list-databases`` (USER [FORMAT]),
  in no preset; ``v-add-letsencrypt-domain`` (bin/v-add-letsencrypt-domain: USER DOMAIN
  [ALIASES] [MAIL]; "web domain X doesn't exist" 3, "domain alias X doesn't exist" 3, a failed
  ACME order E_CONNECT 15; on success LETSENCRYPT='yes' and SSL='yes' on the web domain, no
  output) and ``v-list-web-domain`` (USER DOMAIN [FORMAT], SSL and LETSENCRYPT among its
  fields), neither in the billing preset. Only an admin key made without PERMISSIONS runs
  v-add-database and v-add-letsencrypt-domain (``check_access_key_cmd``: an empty PERMISSIONS
  of the admin's key allows every command; ``is_key_permissions_format_valid`` takes preset
  names only, never single commands).
- usage (issue 11): ``v-list-users json`` (in the billing preset) carries each user's U_DISK,
  DISK_QUOTA, U_BANDWIDTH, BANDWIDTH (MB, limits "unlimited" or MB), U_MAIL_ACCOUNTS and
  U_DATABASES, as ``bin/v-list-users``' json_list prints them from user.conf.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import urllib.parse

from provisiond.sandbox.base import PanelSimulator, Request, Response

E_ARGS, E_INVALID, E_NOTEXIST, E_EXISTS, E_SUSPENDED = 1, 2, 3, 4, 5
E_LIMIT, E_PASSWORD, E_FORBIDDEN, E_DISABLED, E_CONNECT = 8, 9, 10, 11, 15
# install/common/api/billing: ROLE='admin', COMMANDS='...' (v-make-tmp-file is listed twice there).
PRESETS = {"billing": ("v-add-user", "v-delete-user", "v-suspend-user", "v-unsuspend-user",
                       "v-change-user-shell", "v-list-user", "v-list-users", "v-make-tmp-file",
                       "v-add-domain", "v-change-user-package", "v-change-user-password"),
           # install/common/api/mail-accounts: ROLE='user' (an admin's key runs it for any user).
           "mail-accounts": ("v-list-mail-domains", "v-list-mail-domain", "v-list-mail-account",
                             "v-list-mail-accounts", "v-list-mail-account-autoreply",
                             "v-delete-mail-account", "v-delete-mail-account-alias",
                             "v-delete-mail-account-autoreply", "v-delete-mail-account-forward",
                             "v-delete-mail-account-fwd-only", "v-add-mail-account",
                             "v-add-mail-account-alias", "v-add-mail-account-autoreply",
                             "v-add-mail-account-forward", "v-add-mail-account-fwd-only",
                             "v-change-mail-account-password", "v-change-mail-account-quota",
                             "v-suspend-mail-account", "v-suspend-mail-accounts",
                             "v-unsuspend-mail-account", "v-unsuspend-mail-accounts"),
           # install/common/api/purge-nginx-cache: ROLE='user'; a key made for the wrong job.
           "purge-nginx-cache": ("v-purge-nginx-cache", "v-list-web-domains", "v-list-web-domain")}
ACCESS_KEY_PATTERN = re.compile(r"^[A-Za-z0-9]{20}$")
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_.+/^~=%|-]{40}$")
HTTP_FOR_CODE = {0: 200, 1: 400, 2: 422, 5: 401, 6: 401, 9: 401, 10: 401, 21: 401, 11: 400}
ROOT_USER = "admin"
RESERVED = ("aria", "aria_log", "mysql", "mysql_upgrade", "ib", "ib_buffer", "ddl",
            "ddl_recovery", "performance", "sudo")
SYSTEM_USERS = frozenset({"root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail",
                          "news", "uucp", "proxy", "www-data", "backup", "list", "irc", "nobody",
                          "systemd-network", "sshd", "bind", "hestiaweb", "hestiamail", "dovecot",
                          "Debian-exim", "clamav", "ntp", "admin"})
USER_PATTERN = re.compile(r"^[a-zA-Z][-_a-zA-Z0-9]{0,28}[a-zA-Z0-9]$")
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$")
OBJECT_PATTERN = re.compile(r"^[A-Za-z0-9][-._A-Za-z0-9]{0,64}[A-Za-z0-9]$")
DOMAIN_BAD = re.compile(r"[!@#$^&*()+={}:,<>?_/\\\"';%`\s]|\.\.|^[0-9]+$")
BAD_REQUEST = ("Error: data received is null or invalid, check "
               "https://hestiacp.com/docs/server-administration/rest-api.html")
USAGE = {
    "v-add-user": (3, "USER PASSWORD EMAIL [PACKAGE] [NAME] [LASTNAME]"),
    "v-add-web-domain": (2, "USER DOMAIN [IP] [RESTART] [ALIASES] [PROXY_EXTENSIONS]"),
    "v-add-domain": (2, "USER DOMAIN [IP] [RESTART]"),
    "v-suspend-user": (1, "USER [RESTART]"), "v-unsuspend-user": (1, "USER [RESTART]"),
    "v-delete-user": (1, "USER [RESTART]"), "v-change-user-package": (2, "USER PACKAGE [FORCE]"),
    "v-change-user-password": (2, "USER PASSWORD"), "v-list-user": (1, "USER [FORMAT]"),
    "v-change-user-name": (2, "USER NAME [LAST_NAME]"),
    "v-list-users": (0, "[FORMAT]"), "v-list-user-packages": (0, "[FORMAT]"),
    "v-list-web-domains": (1, "USER [FORMAT]"),
    "v-list-sys-info": (0, "[FORMAT]"),
    "v-add-mail-account": (4, "USER DOMAIN ACCOUNT PASSWORD [QUOTA]"),
    "v-list-mail-accounts": (2, "USER DOMAIN [FORMAT]"),
    "v-add-database": (4, "USER DATABASE DBUSER DBPASS [TYPE] [HOST] [CHARSET]"),
    "v-list-databases": (1, "USER [FORMAT]"),
    "v-add-letsencrypt-domain": (2, "USER DOMAIN [ALIASES] [MAIL]"),
    "v-list-web-domain": (2, "USER DOMAIN [FORMAT]"),
}
ACCOUNT_PATTERN = re.compile(r"^[a-z0-9][-_.a-z0-9]{0,63}$")
DB_BAD = re.compile(r"[!@#$^&*()+={}:,<>?/\\\"';%` |]")


def _is_json(text: str) -> bool:
    try:
        return bool(text) and isinstance(json.loads(text), (dict, list))
    except ValueError:
        return False


class Exit(Exception):
    """A command's ``check_result``: exit code and the ``Error: ...`` line it echoes."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.output = code, message if message.startswith("Usage") else f"Error: {message}"


@dataclasses.dataclass
class Account:
    user: str
    password: str
    email: str
    package: str
    name: str = ""
    suspended: bool = False
    domains: list[str] = dataclasses.field(default_factory=list)  # web domains
    dns_domains: list[str] = dataclasses.field(default_factory=list)
    mail_domains: list[str] = dataclasses.field(default_factory=list)
    disk_used: int = 0  # U_DISK in MB, for v-change-user-package's limit check
    # Usage figures v-list-user(s) report (tests set them): see ``_usage_record``.
    bandwidth_used: int = 0   # U_BANDWIDTH, MB this month
    mail_accounts: int = 0    # U_MAIL_ACCOUNTS
    databases: int = 0        # U_DATABASES
    created: float = dataclasses.field(default_factory=time.time)
    # What the step commands made: mail domain -> {account: {"password", "quota"}}, database
    # "user_name" -> {"DBUSER", "password", "TYPE"}, web domains with a Let's Encrypt certificate.
    mailboxes: dict = dataclasses.field(default_factory=dict)
    dbs: dict = dataclasses.field(default_factory=dict)
    letsencrypt: list[str] = dataclasses.field(default_factory=list)

    @property
    def domain(self) -> str:
        return self.domains[0] if self.domains else ""


class HestiaSimulator(PanelSimulator):
    """``HestiaSimulator(access_key=..., secret_key=...)``; ``sim.accounts`` is the state.

    ``packages`` is a list of names (no limits) or a mapping name -> {"WEB_DOMAINS": n,
    "DNS_DOMAINS": n, "MAIL_DOMAINS": n, "DISK_QUOTA": mb}; the ``default`` package always
    exists, as on a real server. ``permissions`` is the key's PERMISSIONS as
    ``v-add-access-key admin PERMISSIONS`` stores it: comma-separated presets of ``PRESETS``,
    ``billing`` by default (the least privilege provisiond's playbooks need), ``""`` for an
    admin key that may run every command. Knobs: ``api_system`` (0 disables the API: code 11),
    ``allowed_ips`` (the simulator's client is always 127.0.0.1), ``legacy_key`` and
    ``admin_password`` (the deprecated auth styles, off by default), ``letsencrypt_refusals``
    (domain -> the ACME error a v-add-letsencrypt-domain meets).
    """

    panel = "hestia"

    def __init__(self, access_key: str = "SANDBOXACCESSKEY0001",
                 secret_key: str = "sandbox-secret-key-0123456789abcdefghijk",
                 packages=("basic", "pro", "business"), version: str = "1.9.4",
                 api_system: int = 1, allowed_ips: str = "allow-all", permissions: str = "billing",
                 legacy_key: str | None = None, admin_password: str | None = None,
                 system_users=SYSTEM_USERS, letsencrypt_refusals=None, **kwargs):
        super().__init__(**kwargs)
        self.access_key, self.secret_key = access_key, secret_key
        limits = packages if isinstance(packages, dict) else {name: {} for name in packages}
        self.packages: dict[str, dict] = {"default": {}, **limits}
        self.version, self.api_system, self.allowed_ips = version, api_system, allowed_ips
        self.permissions = permissions
        self.legacy_key, self.admin_password = legacy_key, admin_password
        self.system_users = set(system_users)
        self.letsencrypt_refusals = dict(letsencrypt_refusals or {})
        self.accounts: dict[str, Account] = {}

    # -- wire ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path not in ("/api/", "/api/index.php"):
            return Response(404, b"Not Found", "text/html; charset=UTF-8")
        data = {}
        if request.method == "POST" and "json" not in request.headers.get("content-type", ""):
            data = dict(urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"),
                                               keep_blank_values=True))
        if not {"access_key", "user", "hash"} & data.keys():
            try:
                data = json.loads(request.body or b"null")
            except ValueError:
                data = None
            if not isinstance(data, dict):
                return self._api_error(405, BAD_REQUEST, "")
        ret = "code" if data.get("returncode", "no") == "yes" else "data"
        hash_ = str(data.get("hash", ""))
        if "access_key" not in data and hash_.count(":") == 1:
            access, secret = hash_.split(":")
            if len(access) == 20 and len(secret) == 40:
                data.update(access_key=access, secret_key=secret)
                data.pop("hash")
        if "access_key" in data and "secret_key" in data:
            return self._api_connection(data, ret)
        if "user" in data or "hash" in data:
            return self._api_legacy(data, ret)
        return self._api_error(405, BAD_REQUEST, "")

    @staticmethod
    def _api_error(code: int, message: str, ret: str) -> Response:
        status = code if code >= 100 else HTTP_FOR_CODE.get(code, 400)
        body = str(code) if ret == "code" else (message if message.startswith("Error:")
                                                 else f"Error: {message}")
        return Response(status, body.encode(), "text/html; charset=UTF-8",
                        {"Hestia-Exit-Code": str(code)})

    def _command(self, data, ret: str) -> tuple[str, list[str], Response | None]:
        cmd = str(data.get("cmd", "")).strip()
        # Only the argN that were sent are passed on, in order: gaps close up as in index.php.
        args = [str(data[f"arg{i}"]).strip() for i in range(1, 14) if f"arg{i}" in data]
        if not cmd:
            return cmd, args, self._api_error(E_INVALID, "Command not provided", ret)
        if not re.fullmatch(r"[a-zA-Z0-9_-]+", cmd):
            return cmd, args, self._api_error(E_INVALID, f"{cmd} command invalid", ret)
        return cmd, args, None

    def _api_connection(self, data, ret: str) -> Response:
        if not self.api_system:
            return self._api_error(E_DISABLED, "API has been disabled", ret)
        if self.allowed_ips != "allow-all" and not {"127.0.0.1", "0.0.0.0"} & set(
                self.allowed_ips.split(",")):
            return self._api_error(E_FORBIDDEN, "IP is not allowed to connect with API", ret)
        cmd, args, refusal = self._command(data, ret)
        if refusal:
            return refusal
        access, secret = str(data["access_key"]).strip(), str(data["secret_key"]).strip()
        if not access or not secret:
            return self._api_error(E_PASSWORD, "Authentication failed", ret)
        try:
            self._check_access_key(access, secret, cmd)
        except Exit as failure:
            return self._api_error(failure.code, failure.output, ret)
        code, output = self.run(cmd, args)
        headers = {"Hestia-Exit-Code": str(code)}
        if ret == "code":
            return Response(200, str(code).encode(), "text/html; charset=UTF-8", headers)
        if code:
            return Response(HTTP_FOR_CODE.get(code, 400), output.encode(),
                            "text/html; charset=UTF-8", headers)
        ctype = "text/html; charset=UTF-8"
        if _is_json(output):
            ctype = "application/json; charset=utf-8"
        return Response(200 if output else 204, output.encode(), ctype, headers)

    def allowed_commands(self) -> set[str] | None:
        """The commands the key may run (``get_apis_commands``); None: every command."""
        if not self.permissions:
            return None
        return {cmd for preset in self.permissions.split(",")
                for cmd in PRESETS.get(preset.strip(), ())}

    def _check_access_key(self, access: str, secret: str, cmd: str) -> None:
        """``v-check-access-key``: exit 9 for any fault of the key, 10 for the command."""
        if not ACCESS_KEY_PATTERN.match(access):
            raise Exit(E_PASSWORD, f"invalid access_key_id format :: {access}")
        if access != self.access_key:
            raise Exit(E_PASSWORD, f"key {access} doesn't exist")
        if not SECRET_PATTERN.match(secret):
            raise Exit(E_PASSWORD, "invalid secret_access_key format")
        if secret != self.secret_key:
            raise Exit(E_PASSWORD, f"Invalid secret key for key {access}")
        if cmd not in USAGE:
            raise Exit(E_FORBIDDEN, f"Command {cmd} not found")
        allowed = self.allowed_commands()
        if allowed is not None and cmd not in allowed:
            raise Exit(E_FORBIDDEN, f"Key {access} don't have permission to run the command {cmd}")

    def _api_legacy(self, data, ret: str) -> Response:
        if not self.api_system:
            return self._api_error(E_DISABLED, "Error: API Disabled", ret)
        if not data.get("hash"):
            if data.get("user") != ROOT_USER:
                return self._api_error(E_FORBIDDEN, "Error: authentication failed", ret)
            if not self.admin_password or data.get("password") != self.admin_password:
                return self._api_error(E_PASSWORD, "Error: authentication failed", ret)
        elif not self.legacy_key or data["hash"] != self.legacy_key:
            return self._api_error(E_PASSWORD, "Error: authentication failed", ret)
        cmd, args, refusal = self._command(data, ret)
        if refusal:
            return refusal
        code, output = self.run(cmd, args)
        # The legacy path sends no exit-code header and answers 200 even when the command fails.
        body = str(code) if ret == "code" else (output + "\n" if output else "OK")
        return Response(200, body.encode(), "text/html; charset=UTF-8")

    def run(self, cmd: str, args: list[str]) -> tuple[int, str]:
        """Run one ``v-*`` command: (exit code, output)."""
        command = getattr(self, "cmd_" + cmd[2:].replace("-", "_"), None)
        if command is None or cmd not in USAGE:
            return E_ARGS, ""  # sudo: command not found (stderr is not part of the answer)
        needed, usage = USAGE[cmd]
        # Stricter than bash: an empty required argument counts as missing.
        if len(args) < needed or any(not a for a in args[:needed]):
            return E_ARGS, f"Usage: {cmd} {usage}"
        try:
            with self.lock:  # extra arguments are ignored, as bash scripts do
                return 0, command(*args[:len(usage.split())]) or ""
        except Exit as failure:
            return failure.code, failure.output

    # -- checks (func/main.sh) -------------------------------------------------------------
    @staticmethod
    def _user_format(user: str) -> None:
        if not USER_PATTERN.match(user):
            raise Exit(E_INVALID, f"invalid user format :: {user}")

    def _account(self, user: str, *, unsuspended: bool = False, root_forbidden: str = "") -> Account:
        self._user_format(user)
        if user == ROOT_USER and root_forbidden:
            raise Exit(E_FORBIDDEN, root_forbidden)
        account = self.accounts.get(user)
        if account is None:
            raise Exit(E_NOTEXIST, f"user {user} doesn't exist")
        if unsuspended and account.suspended:
            raise Exit(E_SUSPENDED, f"user {user} is suspended")
        return account

    def _package(self, package: str) -> dict:
        if package and not OBJECT_PATTERN.match(package):
            raise Exit(E_INVALID, f"invalid package format :: {package}")
        if package not in self.packages:
            raise Exit(E_NOTEXIST, f"package {package} doesn't exist")
        return self.packages[package]

    @staticmethod
    def _restart(value: str | None) -> None:
        if value not in (None, "", "yes", "no"):
            raise Exit(E_INVALID, f"invalid restart format :: {value}")

    # -- commands --------------------------------------------------------------------------
    def cmd_add_user(self, user, password, email, package="default", name="", lastname=""):
        self._user_format(user)
        if not EMAIL_PATTERN.match(email):
            raise Exit(E_INVALID, f"invalid email format :: {email}")
        if package and not OBJECT_PATTERN.match(package):
            raise Exit(E_INVALID, f"invalid package format :: {package}")
        if user.lower() in RESERVED:
            raise Exit(E_INVALID, f"The user name '{user}' is reserved and cannot be used. "
                                  f"List of reserved names: {' '.join(RESERVED)}")
        if user in self.accounts or user in self.system_users or user == ROOT_USER:
            raise Exit(E_EXISTS, f"user {user} exists")
        self._package(package)  # an empty PACKAGE argument is "package  doesn't exist" (3)
        full_name = f"{name} {lastname}".strip()
        self.accounts[user] = Account(user, password, email, package, full_name)

    def cmd_add_web_domain(self, user, domain, ip="", restart="", aliases="", proxy=""):
        domain = domain.lower()
        if DOMAIN_BAD.search(domain) or "." not in domain:
            raise Exit(E_INVALID, f"invalid domain format :: {domain}")
        account = self._account(user, unsuspended=True)
        if any(domain in a.domains for a in self.accounts.values()):
            raise Exit(E_EXISTS, f"Web domain {domain} exists")
        limit = self.packages[account.package].get("WEB_DOMAINS", "unlimited")
        if limit != "unlimited" and len(account.domains) >= int(limit):
            raise Exit(E_LIMIT, "WEB_DOMAINS limit is reached :: upgrade user package")
        account.domains.append(domain)

    def cmd_add_domain(self, user, domain, ip="", restart=""):
        self._user_format(user)  # is_format_valid 'user' 'domain' 'restart', in that order
        domain = domain.lower()
        if DOMAIN_BAD.search(domain) or "." not in domain:
            raise Exit(E_INVALID, f"invalid domain format :: {domain}")
        self._restart(restart)
        account = self._account(user, unsuspended=True)
        limits = self.packages[account.package]
        parts = (("Web", "web", "WEB_DOMAINS", lambda a: a.domains),
                 ("DNS", "dns", "DNS_DOMAINS", lambda a: a.dns_domains),
                 ("Mail", "mail", "MAIL_DOMAINS", lambda a: a.mail_domains))
        full = [self._is_full(limits, key, held(account)) for _, _, key, held in parts]
        # Each part runs its own v-add-*-domain: a refusal prints that script's line, then
        # v-add-domain's check_result line, and exits with the script's code.
        for is_full, (label, word, _, held) in zip(full, parts):
            if is_full:
                continue
            if any(domain in held(a) for a in self.accounts.values()):
                raise Exit(E_EXISTS, f"{label} domain {domain} exists\n"
                                     f"Error: can't add {word} domain")
            held(account).append(domain)
        if all(full):
            raise Exit(E_LIMIT, "Package limit reached")

    @staticmethod
    def _is_full(limits: dict, key: str, held: list[str]) -> bool:
        limit = limits.get(key, "unlimited")
        return limit != "unlimited" and len(held) >= int(limit)

    def cmd_suspend_user(self, user, restart=None):
        self._restart(restart)
        account = self._account(user, unsuspended=True, root_forbidden="Can't suspend the admin user")
        account.suspended = True

    def cmd_unsuspend_user(self, user, restart=None):
        self._restart(restart)
        self._account(user).suspended = False

    def cmd_delete_user(self, user, restart=None):
        self._restart(restart)
        self._account(user, root_forbidden="Can't delete the admin user")
        del self.accounts[user]

    def cmd_change_user_package(self, user, package, force=""):
        # Scale (issue 14 item 4): hestiacp bin/v-change-user-package (commit 017d8ef),
        # change_user_package() rewrites user.conf with every limit of
        # $HESTIA/data/packages/$package.pkg (WEB_DOMAINS ... DISK_QUOTA, BANDWIDTH), so no
        # per-user limit survives a change of package; is_package_avalable() refuses (E_LIMIT)
        # a package below the usage unless FORCE is yes. The simulator keeps no per-user limits
        # at all: a user's record reads them from its package (``_record``), the same outcome.
        account = self._account(user, root_forbidden="Can't change the admin user's package")
        limits = self._package(package)
        if force != "yes":
            used = {"WEB_DOMAIN": len(account.domains), "DISK": account.disk_used}
            for key, usage in (("WEB_DOMAINS", "WEB_DOMAIN"), ("DISK_QUOTA", "DISK")):
                limit = limits.get(key, "unlimited")
                if limit != "unlimited" and int(limit) < used[usage]:
                    raise Exit(E_LIMIT, f"Package doesn't cover {usage} usage")
        account.package = package

    def cmd_change_user_password(self, user, password):
        self._account(user, unsuspended=True).password = password

    def cmd_change_user_name(self, user, name, lastname=""):
        self._user_format(user)  # is_format_valid 'user' 'name': is_name_format_valid
        if re.search(r"['\"<>]", name) or "\n" in name:
            raise Exit(E_INVALID, f"Invalid name contains qoutes (\" or ') :: {name}")
        self._account(user, unsuspended=True).name = f"{name} {lastname}".strip()

    def cmd_list_user(self, user, fmt="shell"):
        if user == ROOT_USER:
            return self._format({ROOT_USER: self._root_record()}, fmt)
        return self._format({user: self._record(self._account(user))}, fmt)

    def cmd_list_users(self, fmt="shell"):
        records = {ROOT_USER: self._root_record()}
        records.update((u, self._record(a)) for u, a in sorted(self.accounts.items()))
        return self._format(records, fmt)

    def cmd_list_web_domains(self, user, fmt="shell"):
        account = self._account(user)
        return self._format({domain: self._domain_record(account, domain)
                             for domain in account.domains}, fmt)

    def cmd_list_user_packages(self, fmt="shell"):
        return self._format({name: {"WEB_DOMAINS": str(l.get("WEB_DOMAINS", "unlimited")),
                                    "DISK_QUOTA": str(l.get("DISK_QUOTA", "unlimited"))}
                             for name, l in sorted(self.packages.items())}, fmt)

    def cmd_list_sys_info(self, fmt="shell"):
        return self._format({"sysinfo": {"HOSTNAME": "sandbox.test", "OS": "Debian",
                                         "VERSION": "12", "ARCH": "x86_64",
                                         "HESTIA": self.version, "RELEASE": "release",
                                         "UPTIME": "1", "LOADAVERAGE": "0.00 / 0.00 / 0.00"}}, fmt)

    # -- the step roles' commands (issue 14) -----------------------------------------------
    def _mail_domain(self, user: str, domain: str, *, unsuspended: bool = False) -> Account:
        account = self._account(user, unsuspended=unsuspended)
        if domain.lower() not in account.mail_domains:
            raise Exit(E_NOTEXIST, f"mail domain {domain} doesn't exist")
        return account

    def cmd_add_mail_account(self, user, domain, box, password, quota="unlimited"):
        box, domain = box.lower(), domain.lower()
        self._user_format(user)
        if DOMAIN_BAD.search(domain) or "." not in domain:
            raise Exit(E_INVALID, f"invalid domain format :: {domain}")
        if not ACCOUNT_PATTERN.match(box):
            raise Exit(E_INVALID, f"invalid account format :: {box}")
        if quota != "unlimited" and not quota.isdigit():
            raise Exit(E_INVALID, f"invalid quota format :: {quota}")
        account = self._mail_domain(user, domain, unsuspended=True)
        boxes = account.mailboxes.setdefault(domain, {})
        limit = self.packages[account.package].get("MAIL_ACCOUNTS", "unlimited")
        if limit != "unlimited" and len(boxes) >= int(limit):
            raise Exit(E_LIMIT, "MAIL_ACCOUNTS limit is reached :: upgrade user package")
        if box in boxes:
            raise Exit(E_EXISTS, f"mail account {box} already exists")
        boxes[box] = {"password": password, "quota": quota}

    def cmd_list_mail_accounts(self, user, domain, fmt="shell"):
        account = self._mail_domain(user, domain)
        return self._format({box: {"ALIAS": "", "FWD": "", "FWD_ONLY": "", "AUTOREPLY": "no",
                                   "QUOTA": spec["quota"], "U_DISK": "0", "SUSPENDED": "no"}
                             for box, spec in account.mailboxes.get(domain.lower(), {}).items()}, fmt)

    def cmd_add_database(self, user, name, dbuser, password, db_type="mysql", host="", charset="UTF8MB4"):
        database, owner = f"{user}_{name}", f"{user}_{dbuser}"
        self._user_format(user)
        if DB_BAD.search(database) or len(database) >= 64:
            raise Exit(E_INVALID, f"invalid database format :: {database}")
        if len(owner) >= 33:
            raise Exit(E_INVALID, "mysql username can be up to 32 characters long")
        if DB_BAD.search(owner):
            raise Exit(E_INVALID, f"invalid dbuser format :: {owner}")
        if db_type not in ("mysql", "pgsql"):
            raise Exit(E_INVALID, f"invalid type format :: {db_type}")
        account = self._account(user, unsuspended=True)
        if database in account.dbs:
            raise Exit(E_EXISTS, f"DB={database} already exists")
        if any(db["DBUSER"] == owner for db in account.dbs.values()):
            raise Exit(E_EXISTS, f"DBUSER={owner} already exists")
        limit = self.packages[account.package].get("DATABASES", "unlimited")
        if limit != "unlimited" and len(account.dbs) >= int(limit):
            raise Exit(E_LIMIT, "DATABASES limit is reached :: upgrade user package")
        account.dbs[database] = {"DBUSER": owner, "password": password, "TYPE": db_type}

    def cmd_list_databases(self, user, fmt="shell"):
        account = self._account(user)
        return self._format({db: {"DATABASE": db, "DBUSER": spec["DBUSER"], "HOST": "localhost",
                                  "TYPE": spec["TYPE"], "CHARSET": "UTF8MB4", "U_DISK": "0",
                                  "SUSPENDED": "no"} for db, spec in account.dbs.items()}, fmt)

    def _web_domain(self, user: str, domain: str, *, unsuspended: bool = False) -> Account:
        account = self._account(user, unsuspended=unsuspended)
        if domain.lower() not in account.domains:
            raise Exit(E_NOTEXIST, f"web domain {domain} doesn't exist")
        return account

    def cmd_add_letsencrypt_domain(self, user, domain, aliases="", mail=""):
        domain = domain.lower()
        self._user_format(user)
        if DOMAIN_BAD.search(domain) or "." not in domain:
            raise Exit(E_INVALID, f"invalid domain format :: {domain}")
        account = self._web_domain(user, domain, unsuspended=True)
        for alias in sorted(set(filter(None, aliases.split(",")))):
            if alias != f"www.{domain}":
                raise Exit(E_NOTEXIST, f"domain alias {alias} doesn't exist")
        refusal = self.letsencrypt_refusals.get(domain)
        if refusal:
            raise Exit(E_CONNECT, f"Let's Encrypt validation status 400 ({domain}). Details: {refusal}")
        if domain not in account.letsencrypt:
            account.letsencrypt.append(domain)

    def cmd_list_web_domain(self, user, domain, fmt="shell"):
        account = self._web_domain(user, domain)
        return self._format({domain.lower(): self._domain_record(account, domain.lower())}, fmt)

    # -- listing helpers -------------------------------------------------------------------
    def _record(self, account: Account) -> dict[str, str]:
        limits = self.packages.get(account.package, {})
        created = time.localtime(account.created)
        return {"NAME": account.name, "PACKAGE": account.package, "CONTACT": account.email,
                "ROLE": "user", "SUSPENDED": "yes" if account.suspended else "no",
                "WEB_DOMAINS": str(limits.get("WEB_DOMAINS", "unlimited")),
                "DISK_QUOTA": str(limits.get("DISK_QUOTA", "unlimited")),
                "DNS_DOMAINS": str(limits.get("DNS_DOMAINS", "unlimited")),
                "MAIL_DOMAINS": str(limits.get("MAIL_DOMAINS", "unlimited")),
                "U_WEB_DOMAINS": str(len(account.domains)), "U_DISK": str(account.disk_used),
                "U_DNS_DOMAINS": str(len(account.dns_domains)),
                "U_MAIL_DOMAINS": str(len(account.mail_domains)),
                "TIME": time.strftime("%H:%M:%S", created), "DATE": time.strftime("%Y-%m-%d", created),
                **self._usage_record(account)}

    def _usage_record(self, account: Account) -> dict[str, str]:
        """The usage fields of bin/v-list-users' json_list (values of user.conf, all strings):
        BANDWIDTH is the package's limit in MB or "unlimited"; U_BANDWIDTH, U_MAIL_ACCOUNTS and
        U_DATABASES what the user has (U_DISK and DISK_QUOTA are in ``_record``)."""
        limits = self.packages.get(account.package, {})
        return {"BANDWIDTH": str(limits.get("BANDWIDTH", "unlimited")),
                "U_BANDWIDTH": str(account.bandwidth_used),
                "U_MAIL_ACCOUNTS": str(account.mail_accounts + sum(map(len, account.mailboxes.values()))),
                "U_DATABASES": str(account.databases + len(account.dbs))}

    @staticmethod
    def _domain_record(account: Account, domain: str) -> dict[str, str]:
        created = time.localtime(account.created)
        return {"IP": "127.0.0.1", "DOCUMENT_ROOT": f"/home/{account.user}/web/{domain}/public_html/",
                "ALIAS": f"www.{domain}", "TPL": "default",
                "SSL": "yes" if domain in account.letsencrypt else "no",
                "LETSENCRYPT": "yes" if domain in account.letsencrypt else "",
                "SUSPENDED": "yes" if account.suspended else "no",
                "TIME": time.strftime("%H:%M:%S", created), "DATE": time.strftime("%Y-%m-%d", created)}

    @staticmethod
    def _root_record() -> dict[str, str]:
        return {"NAME": "System Administrator", "PACKAGE": "system", "CONTACT": "admin@sandbox.test",
                "ROLE": "admin", "SUSPENDED": "no", "WEB_DOMAINS": "unlimited",
                "DISK_QUOTA": "unlimited", "U_WEB_DOMAINS": "0", "U_DISK": "0"}

    @staticmethod
    def _format(records: dict[str, dict], fmt: str) -> str:
        if fmt == "json":
            return json.dumps(records, indent=4)
        return "\n\n".join("\n".join(f"{k}: {v}" for k, v in {"USER": name, **rec}.items())
                           for name, rec in records.items())
