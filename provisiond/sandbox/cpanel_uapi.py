"""What the WHM simulator answers for a cPanel account's mail, databases and AutoSSL (issue 14).

``UapiCalls`` is mixed into ``WhmSimulator``: it serves WHM API 1 ``uapi_cpanel`` (a UAPI
function run as one cPanel user) for the functions the shipped step roles call, and WHM API 1
``start_autossl_check_for_one_user``. Each account's services live in ``sim.services[user]``
(``AccountServices``), which tests assert on. Sources (the vendor decides; a text no source
shows is marked *unverified* where it is produced):

- ``uapi_cpanel``: https://api.docs.cpanel.net/whm/use-whm-api-to-call-cpanel-api-and-uapi/
  (``/json-api/uapi_cpanel?api.version=1&cpanel.user=U&cpanel.module=M&cpanel.function=F``);
  cPanel's own implementation (``sub uapi_cpanel`` in Whostmgr::API::1, the cPanel source as
  mirrored in github asmrdevelop/cpanel) takes ``cpanel.user``, ``cpanel.module`` and
  ``cpanel.function`` as required arguments, checks the caller may reach that account
  (``verify_account_access``: a failure is WHM's own ``metadata.result: 0``), runs the function
  and then always sets WHM's metadata ok: the UAPI result travels as ``data.uapi`` =
  ``{status, errors, messages, warnings, data, metadata}`` (UAPI's envelope,
  https://api.docs.cpanel.net/cpanel/introduction/), so a refused UAPI call is
  ``metadata.result: 1`` with ``data.uapi.status: 0`` and its text in ``data.uapi.errors``.
- ``Email::add_pop`` (https://api.docs.cpanel.net/openapi/cpanel/operation/add_pop/): ``email``
  (a username such as ``user``, or a whole address), ``password`` (required), ``domain`` (default
  "The cPanel account's main domain"), ``quota`` (MB; 0 or ``unlimited`` for no limit); "You
  cannot enter cpanel as an account name". ``Email::list_pops``
  (https://api.docs.cpanel.net/openapi/cpanel/operation/list_pops/): ``data[]`` of ``email``,
  ``login``, ``suspended_incoming``, ``suspended_login``, ``mtime``, with the account's own
  system mailbox listed as ``email: <user>``, ``login: "Main Account"``.
- ``Mysql::*`` (https://api.docs.cpanel.net/openapi/cpanel/operation/create_database/,
  .../create_user/, .../set_privileges_on_database/, .../get_privileges_on_database/,
  .../list_databases/, .../list_users/, .../get_restrictions/) and cPanel's source
  (Cpanel/API/Mysql.pm: "The UAPI MySQL functions should *never* add the DB prefix. On database
  and database user creation, if the name doesn't contain the correct prefix, the call should
  error out"; Cpanel/Admin/Base/DB.pm ``_verify_prefix``, ``CREATE_USER``; Cpanel/DB/Prefix.pm:
  the prefix is the username's first 16 characters on MariaDB 10+ / MySQL 5.7+, 8 before;
  Cpanel/Validate/DB/Name.pm: names of at most 64 printable ASCII characters, no quotes, no
  slash or backslash). ``get_restrictions`` answers ``prefix`` with its underscore.
  ``set_privileges_on_database`` takes ``privileges`` comma-separated (``ALL PRIVILEGES`` or
  named ones) and replaces what the user had; ``get_privileges_on_database`` answers them sorted.
- ``SSL::installed_hosts`` (https://api.docs.cpanel.net/openapi/cpanel/operation/installed_hosts/):
  ``data[]`` of ``servername``, ``certificate`` (``domains``, ``is_self_signed``, ``not_after``,
  ``issuer.organizationName``).
- ``start_autossl_check_for_one_user``
  (https://api.docs.cpanel.net/openapi/whm/operation/start_autossl_check_for_one_user/ and
  Whostmgr/API/1/SSL.pm): ``username``; an unknown user, AutoSSL without a provider ("This
  system has AutoSSL disabled.") and a user without the autossl feature ("The user “U” does
  not have the AutoSSL feature enabled.") are refused, and so is a check while the user's last
  one still runs (Cpanel::Exception::CommandAlreadyRunning: "The command already has an active
  PIDFile at “F” and is running with the process ID: N"); otherwise it starts the check in the
  background and answers ``data.pid``. The simulator completes the check at once, as AutoSSL
  would a few minutes later (the account's domains get a certificate of the provider), unless
  the account's ``autossl_pending`` says its checks do not finish.
"""

from __future__ import annotations

import dataclasses
import re
import time

PRIVILEGES = ("ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES",
              "CREATE VIEW", "DELETE", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT",
              "LOCK TABLES", "REFERENCES", "SELECT", "SHOW VIEW", "TRIGGER", "UPDATE")
MAX_DATABASE_NAME = 64      # Cpanel::Validate::DB::Name::$max_mysql_dbname_length
MAX_DATABASE_USER = 32      # MySQL 5.7+ user names (get_restrictions' max_username_length)
# An address's local part: RFC 5322 atom characters, dots between them (*unverified* against
# cPanel's own validator, which is not in its public source).
LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


@dataclasses.dataclass
class AccountServices:
    """One cPanel account's mail, databases and certificates, as the simulator keeps them."""
    mailboxes: dict[str, dict] = dataclasses.field(default_factory=dict)   # address -> password, quota
    databases: set[str] = dataclasses.field(default_factory=set)
    db_users: dict[str, str] = dataclasses.field(default_factory=dict)     # user -> password
    grants: dict[tuple[str, str], list[str]] = dataclasses.field(default_factory=dict)  # (user, db)
    certificates: dict[str, dict] = dataclasses.field(default_factory=dict)  # servername -> certificate
    autossl_checks: list[float] = dataclasses.field(default_factory=list)   # when each check started
    autossl_feature: bool = True
    # True: this account's checks do not finish (its DNS does not point here yet): the first
    # one keeps running, and WHM refuses another while it runs.
    autossl_pending: bool = False
    autossl_running: bool = False


class UapiRefused(Exception):
    """A UAPI function's refusal: its text goes to ``data.uapi.errors``."""


class UapiCalls:
    """Mixed into WhmSimulator (which provides ``accounts``, ``_envelope`` and ``_missing``)."""

    db_prefix_length = 16            # Cpanel::DB::Prefix: 16 on MariaDB 10+ / MySQL 5.7+
    autossl_provider: str | None = "LetsEncrypt"

    def services_of(self, user: str) -> AccountServices:
        return self.services.setdefault(user, AccountServices())

    # -- WHM API 1 ---------------------------------------------------------------------------
    def op_uapi_cpanel(self, params):
        for name in ("cpanel.user", "cpanel.module", "cpanel.function"):
            if not params.get(name):
                return self._envelope("uapi_cpanel", 0, f"Provide the “{name}” parameter.")  # *unverified* wording
        user, module, function = params["cpanel.user"], params["cpanel.module"], params["cpanel.function"]
        account = self.accounts.get(user)
        if account is None:
            return self._missing("uapi_cpanel", user)
        call = getattr(self, f"uapi_{module}_{function}", None)
        args = {k: v for k, v in params.items() if not k.startswith(("cpanel.", "api."))}
        try:
            if call is None:  # *unverified* wording
                raise UapiRefused(f"Failed to load module “{module}” or its function “{function}”.")
            result = {"status": 1, "errors": None, "messages": None, "warnings": None,
                      "data": call(account, self.services_of(user), args), "metadata": {}}
        except UapiRefused as refused:
            result = {"status": 0, "errors": [str(refused)], "messages": None, "warnings": None,
                      "data": None, "metadata": {}}
        return self._envelope("uapi_cpanel", 1, "OK", {"uapi": result})

    def op_start_autossl_check_for_one_user(self, params):
        user = params.get("username", "")
        if user not in self.accounts:
            return self._missing("start_autossl_check_for_one_user", user)
        if not self.autossl_provider:
            return self._envelope("start_autossl_check_for_one_user", 0, "This system has AutoSSL disabled.")
        services = self.services_of(user)
        if not services.autossl_feature:
            return self._envelope("start_autossl_check_for_one_user", 0,
                                  f"The user “{user}” does not have the AutoSSL feature enabled.")
        if services.autossl_running:  # Cpanel::Exception::CommandAlreadyRunning's phrase (pidfile path *unverified*)
            return self._envelope("start_autossl_check_for_one_user", 0,
                                  f"The command already has an active PIDFile at “/var/cpanel/autossl_check_{user}.pid” "
                                  f"and is running with the process ID: {4242 + len(services.autossl_checks)}")
        services.autossl_checks.append(time.time())
        if services.autossl_pending:
            services.autossl_running = True
            return self._envelope("start_autossl_check_for_one_user", 1, "OK", {"pid": 4242 + len(services.autossl_checks)})
        domain = self.accounts[user].domain
        services.certificates[domain] = {
            "domains": [domain, f"www.{domain}", f"mail.{domain}"], "is_self_signed": 0,
            "not_after": int(time.time()) + 90 * 86400,
            "issuer.organizationName": "Let's Encrypt" if self.autossl_provider == "LetsEncrypt" else "cPanel, Inc."}
        return self._envelope("start_autossl_check_for_one_user", 1, "OK", {"pid": 4242 + len(services.autossl_checks)})

    # -- UAPI Email --------------------------------------------------------------------------
    def uapi_Email_list_pops(self, account, services, args):
        pops = [{"email": address, "login": address, "suspended_incoming": 0, "suspended_login": 0,
                 "mtime": box["mtime"]} for address, box in sorted(services.mailboxes.items())]
        pops.append({"email": account.user, "login": "Main Account", "suspended_incoming": 0,
                     "suspended_login": 0, "mtime": account.startdate})
        if args.get("regex"):
            pops = [p for p in pops if re.search(args["regex"], p["email"])]
        return pops

    def uapi_Email_add_pop(self, account, services, args):
        local, _, domain = args.get("email", "").partition("@")
        domain = (domain or args.get("domain") or account.domain).lower()
        if not local:
            raise UapiRefused("You must specify an email account name.")  # *unverified* wording
        if not args.get("password"):
            raise UapiRefused("You must specify a password.")  # *unverified* wording
        if local.lower() == "cpanel" or not LOCAL_PART.match(local):
            raise UapiRefused(f"The email address “{local}@{domain}” is not valid.")  # *unverified* wording
        if domain != account.domain:
            raise UapiRefused(f"The account “{account.user}” does not own the domain “{domain}”.")  # *unverified*
        address = f"{local.lower()}@{domain}"
        if address in services.mailboxes:
            raise UapiRefused(f"The account “{address}” already exists.")  # *unverified* wording
        quota = str(args.get("quota", "0") or "0")
        if quota != "unlimited" and not quota.isdigit():
            raise UapiRefused("The quota must be a whole number of megabytes or “unlimited”.")  # *unverified*
        services.mailboxes[address] = {"password": args["password"], "quota": 0 if quota == "unlimited" else int(quota),
                                       "mtime": int(time.time())}
        return f"{local.lower()}+{domain}"

    # -- UAPI Mysql --------------------------------------------------------------------------
    def db_prefix(self, user: str) -> str:
        return user[:self.db_prefix_length] + "_"

    def uapi_Mysql_get_restrictions(self, account, services, args):
        return {"prefix": self.db_prefix(account.user), "max_database_name_length": MAX_DATABASE_NAME,
                "max_username_length": MAX_DATABASE_USER}

    def uapi_Mysql_list_databases(self, account, services, args):
        return [{"database": db, "users": sorted(u for (u, d) in services.grants if d == db), "disk_usage": 0}
                for db in sorted(services.databases)]

    def uapi_Mysql_list_users(self, account, services, args):
        prefix = self.db_prefix(account.user)
        return [{"user": user, "shortuser": user[len(prefix):],
                 "databases": sorted(d for (u, d) in services.grants if u == user)}
                for user in sorted(services.db_users)]

    def uapi_Mysql_create_database(self, account, services, args):
        name = args.get("name", "")
        _check_database_name(name)
        self._check_prefix(account.user, name)
        if name in services.databases or any(name in s.databases for s in self.services.values()):
            raise UapiRefused(f"The database “{name}” already exists.")
        services.databases.add(name)

    def uapi_Mysql_create_user(self, account, services, args):
        name, password = args.get("name", ""), args.get("password")
        if not name:
            raise UapiRefused("The “name” parameter is required, and you must pass a valid string value.")
        self._check_prefix(account.user, name)
        if len(name) > MAX_DATABASE_USER:  # *unverified* wording
            raise UapiRefused(f"The name “{name}” is longer than {MAX_DATABASE_USER} characters.")
        if password is None:
            raise UapiRefused("Provide a password.")
        if not password:
            raise UapiRefused("A password cannot be empty.")
        if len(password) < 8:  # cPanel's strength check, reduced to its length (*unverified* rule)
            raise UapiRefused("The password you selected cannot be used because it is too weak and would "
                              "be too easy to guess.")
        if name in services.db_users or any(name in s.db_users for s in self.services.values()):
            raise UapiRefused(f"The user “{name}” cannot be created because it already exists.")
        services.db_users[name] = password

    def uapi_Mysql_set_privileges_on_database(self, account, services, args):
        user, database = self._grant_target(account, services, args)
        wanted = [p.strip().upper() for p in (args.get("privileges") or "").split(",") if p.strip()]
        unknown = [p for p in wanted if p != "ALL PRIVILEGES" and p not in PRIVILEGES]
        if unknown:  # *unverified* wording
            raise UapiRefused(f"“{unknown[0]}” is not a valid privilege for this database server.")
        services.grants[(user, database)] = (["ALL PRIVILEGES"] if "ALL PRIVILEGES" in wanted
                                             else sorted(set(wanted)))

    def uapi_Mysql_get_privileges_on_database(self, account, services, args):
        user, database = self._grant_target(account, services, args)
        return sorted(services.grants.get((user, database), []))

    def _grant_target(self, account, services, args) -> tuple[str, str]:
        user, database = args.get("user", ""), args.get("database", "")
        for field, value in (("database", database), ("user", user)):
            if not value:
                raise UapiRefused(f"The “{field}” parameter is required, and you must pass a valid string value.")
        if user not in services.db_users:  # Database::UserNotFound (*unverified* wording)
            raise UapiRefused(f"The system user “{account.user}” does not control a MySQL user named “{user}”.")
        if database not in services.databases:  # Database::DatabaseNotFound (*unverified* wording)
            raise UapiRefused(f"The system user “{account.user}” does not control a MySQL database "
                              f"named “{database}”.")
        return user, database

    def _check_prefix(self, user: str, name: str) -> None:
        prefix = self.db_prefix(user)
        if not (name.startswith(prefix) and len(name) > len(prefix)):
            raise UapiRefused(f"The name “{name}” does not begin with the required prefix “{prefix}”.")

    # -- UAPI SSL ----------------------------------------------------------------------------
    def uapi_SSL_installed_hosts(self, account, services, args):
        return [{"servername": name, "type": "main", "certificate": dict(cert)}
                for name, cert in sorted(services.certificates.items())]


def _check_database_name(name: str) -> None:
    """Cpanel::Validate::DB::Name::verify_mysql_database_name, its messages word for word."""
    if not name:
        raise UapiRefused("A database name cannot be empty.")
    if any(not " " <= ch <= "~" for ch in name):
        raise UapiRefused(f"“{name}” is invalid because this system allows only printable ASCII characters "
                          "in database names.")
    if any(ch in "'\"`" for ch in name):
        raise UapiRefused(f"“{name}” is invalid because this system does not allow quote characters "
                          "(' \" `) in database names.")
    if "/" in name:
        raise UapiRefused(f"“{name}” is invalid because this system prohibits the slash (/) character "
                          "in database names.")
    if len(name) > MAX_DATABASE_NAME:
        raise UapiRefused(f"A database name cannot exceed {MAX_DATABASE_NAME} characters.")
    if "\\" in name:
        raise UapiRefused(f"“{name}” is invalid because this system prohibits the backslash (\\) character "
                          "in database names.")
