"""A `clpctl` simulator for CloudPanel (shared/panels/cloudpanel.md), after the vendor's pages.

Run as ``python -m provisiond.sandbox.clpctl <command> --flag=value ...`` with the JSON state file
named by ``$CLPCTL_STATE``, or through the ``clpctl`` script ``install_wrapper()`` writes. Every run
holds an exclusive ``fcntl`` lock on ``<state>.lock`` while it reads and rewrites the state, so
concurrent invocations are safe. The state is CloudPanel's own database: the panel is the master.

Sources, per command modelled (CloudPanel's PHP source is not public; its docs are
github.com/cloudpanel-io/docs, published at https://www.cloudpanel.io/docs/v2/):

- ``site:add:php|static|nodejs|python|reverse-proxy``, ``site:delete [--force]``, ``db:add``,
  ``user:add|delete|list``, ``lets-encrypt:install:certificate``, ``vhost-templates:list``:
  https://www.cloudpanel.io/docs/v2/cloudpanel-cli/root-user-commands/
  (v2/docs/cloudpanel-cli/root-user-commands.md); error texts from cloudpanel-io/cloudpanel-ce
  issues 242, 271, 284.
- The vhost ``sites-enabled/<domainName>.conf`` is *generated* from the site's record: the vhost
  template (github.com/cloudpanel-io/vhost-templates, ``v2/Generic/Generic``) with its
  ``{{server_name}}``, ``{{root}}``, ``{{ssl_certificate}}`` ... placeholders filled in
  (https://www.cloudpanel.io/docs/v2/frontend-area/vhost/, and cloudpanel-ce issue 637: "the
  placeholders getting replaced"). CloudPanel writes the file again from its database whenever the
  site changes, and never reads it back (cloudpanel-ce issue 698: "CloudPanel is the master, there
  is no sync"). The simulator regenerates it on ``site:add:*`` and on
  ``lets-encrypt:install:certificate`` (a certificate install or renewal rewrites the certificate
  lines), so an edit made to that file by hand is lost there, as on a real server; ``regenerate()``
  is the same rewrite for a save in the panel's Vhost Editor, which has no clpctl command.
- The site root ``/home/<siteUser>/htdocs/<domainName>``: root-user-commands.md ("the root
  directory ... /home/$siteUser/htdocs/$domainName/$rootDirectory").
- ``nginx_serves()``: which file's server block nginx picks for a host name. nginx expands an
  ``include`` glob with ``glob(pattern, 0, ...)`` (github.com/nginx/nginx, src/os/unix/ngx_files.c,
  ``ngx_open_glob``: sorted, and in the C locale, since nginx on Unix never calls ``setlocale``,
  so in byte order) and, of two server blocks with the same name on the same listen address, keeps
  the first and ignores the later one with a "conflicting server name ... ignored" warning
  (src/http/ngx_http.c, ``ngx_http_server_names``).

Parsing follows Symfony Console, which clpctl is built on: ``--opt=value`` or ``--opt value``;
unknown commands and options, missing option values, values given to ``--force`` and positional
arguments are refused on stderr with exit 1. CloudPanel's own failures go to stdout as
``<field>: This value ...`` lines or ``An error has occurred, error message: ...``; their exit
code and the success texts are *unverified* (exit code: ``$CLPCTL_ERROR_EXIT``, default 1).

CloudPanel has no suspend: provisiond locks the site user. ``install_account_tools()`` writes a
``usermod`` shim that records this as the site's ``suspended`` and ``expiredate`` in the same
state, and a ``chpasswd`` shim that sets the site user's password. Both follow shadow-utils
(github.com/shadow-maint/shadow), the tools CloudPanel's Debian and Ubuntu servers run:

- ``usermod [-L|--lock] [-U|--unlock] [-e|--expiredate DATE] LOGIN``: usermod(8)
  (https://man7.org/linux/man-pages/man8/usermod.8.html: ``-L`` "puts a '!' in front of the
  encrypted password", ``-e ''`` or ``-1`` removes the expiry) and src/usermod.c
  (``process_flags``): an unknown user is "usermod: user 'NAME' does not exist" with exit 6
  (E_NOTFOUND) before any flag is looked at; no option is "usermod: no options" and ``-L`` with
  ``-U`` "usermod: the -L, -p, and -U flags are exclusive", both with the usage and exit 2
  (E_USAGE), as is an unknown option.
- ``chpasswd``: chpasswd(8) (https://man7.org/linux/man-pages/man8/chpasswd.8.html: "user_name:password"
  pairs on stdin) and src/chpasswd.c: a bad line is "chpasswd: line N: user 'NAME' does not exist"
  or "chpasswd: line N: missing new password", then "chpasswd: error detected, changes ignored"
  and exit 1, nothing changed; a new password replaces the whole field, so a ``-L`` lock goes and
  the expiry stays. Its options (``-c``, ``-e``, ``-m``, ``-R``, ``-s``) are not simulated and
  are refused with exit 2: the playbooks send none. With ``$CLPCTL_HOME_ROOT`` set, site users' home directories and
their site root ``htdocs/<domainName>`` are created and removed under it (for the
``/home/<siteUser>`` existence check); with ``$CLPCTL_NGINX_DIR`` set, the site's vhost
``sites-enabled/<domainName>.conf`` is written and removed there, as CloudPanel does in
``/etc/nginx``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import zoneinfo
from pathlib import Path

STATE_ENV, HOME_ROOT_ENV, PROGRAM_ENV, ERROR_EXIT_ENV, NGINX_DIR_ENV = (
    "CLPCTL_STATE", "CLPCTL_HOME_ROOT", "CLPCTL_PROGRAM", "CLPCTL_ERROR_EXIT", "CLPCTL_NGINX_DIR")
SITE_USER = ("domainName", "siteUser", "siteUserPassword")
COMMANDS = {  # command -> (value options, flag options)
    "site:add:php": (SITE_USER + ("phpVersion", "vhostTemplate"), ()),
    "site:add:static": (SITE_USER, ()),
    "site:add:nodejs": (SITE_USER + ("nodejsVersion", "appPort"), ()),
    "site:add:python": (SITE_USER + ("pythonVersion", "appPort"), ()),
    "site:add:reverse-proxy": (SITE_USER + ("reverseProxyUrl",), ()),
    "site:delete": (("domainName",), ("force",)),
    "user:add": (("userName", "email", "firstName", "lastName", "password", "role", "sites",
                  "timezone", "status"), ()),
    "user:delete": (("userName",), ()),
    "user:list": ((), ()),
    "db:add": (("domainName", "databaseName", "databaseUserName", "databaseUserPassword"), ()),
    "lets-encrypt:install:certificate": (("domainName", "subjectAlternativeName"), ()),
    "vhost-templates:list": ((), ()),
}
NOT_SIMULATED = {"cloudflare:update:ips", "cloudpanel:enable:basic-auth", "db:export", "db:import",
                 "cloudpanel:disable:basic-auth", "db:show:master-credentials", "user:disable:mfa",
                 "site:install:certificate", "user:reset:password", "vhost-templates:import",
                 "vhost-template:add", "vhost-template:delete", "vhost-template:view"}
GLOBAL_FLAGS = {"-n", "--no-interaction", "-q", "--quiet", "--ansi", "--no-ansi"}
PHP_VERSIONS = {"7.1", "7.2", "7.3", "7.4", "8.0", "8.1", "8.2", "8.3", "8.4"}
NODEJS_VERSIONS = {"12", "14", "16", "18", "20", "22"}
PYTHON_VERSIONS = {"3.9", "3.10", "3.11", "3.12"}
VHOST_TEMPLATES = ("Generic", "WordPress", "Laravel 11", "Symfony 7", "Drupal 10", "Joomla 5",
                   "Magento 2", "Nextcloud", "PrestaShop 8", "WooCommerce")
SYSTEM_USERS = {"root", "clp", "mysql", "nginx", "www-data", "daemon", "bin", "sys", "nobody",
                "proftpd", "ftp", "sshd", "ubuntu", "debian", "admin"}
ROLES = {"admin": "Admin", "site-manager": "Site Manager", "user": "User"}
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
SITE_USER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
DB_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BLANK, INVALID, CHOICE = ("This value should not be blank.", "This value is not valid.",
                          "The value you selected is not a valid choice.")
SHORT = "This value is too short. It should have 8 characters or more."
EXISTS = "This value already exists."


class Failure(Exception):
    """A refusal: ``lines`` to print, on stderr when it comes from the console parser."""

    def __init__(self, *lines: str, stderr: bool = False):
        super().__init__(lines[0])
        self.lines, self.stderr = lines, stderr


# -- state ---------------------------------------------------------------------------------
def load_state(state_file: Path) -> dict:
    try:
        state = json.loads(Path(state_file).read_text() or "{}")
    except FileNotFoundError:
        state = {}
    for key in ("sites", "users", "databases"):
        state.setdefault(key, {})
    return state


@contextlib.contextmanager
def locked_state(state_file: Path):
    """Yield the state under an exclusive lock; write it back if the block ends normally."""
    state_file = Path(state_file)
    with open(f"{state_file}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = load_state(state_file)
        yield state
        fd, tmp = tempfile.mkstemp(dir=state_file.parent, prefix=".clpctl-")
        with os.fdopen(fd, "w") as out:
            json.dump(state, out, indent=1, sort_keys=True)
        os.replace(tmp, state_file)


# -- the console parser --------------------------------------------------------------------
def parse(argv: list[str]) -> tuple[str, dict, bool]:
    """(command, options, interactive) as Symfony Console would parse them, or Failure."""
    args = list(argv)
    interactive = True
    while args and args[0] in GLOBAL_FLAGS:
        interactive &= args.pop(0) not in ("-n", "--no-interaction")
    if not args:
        return "", {}, interactive
    command = args.pop(0)
    if command.startswith("-"):
        raise Failure(f'The "{command}" option does not exist.', stderr=True)
    if command in NOT_SIMULATED:
        raise Failure(f'Command "{command}" exists in CloudPanel but is not simulated.', stderr=True)
    if command not in COMMANDS:
        raise Failure(f'Command "{command}" is not defined.', stderr=True)
    values, flags = COMMANDS[command]
    options: dict[str, str | bool] = {}
    while args:
        token = args.pop(0)
        if token in GLOBAL_FLAGS:
            interactive &= token not in ("-n", "--no-interaction")
            continue
        if not token.startswith("--"):
            if token.startswith("-") and token != "-":
                raise Failure(f'The "{token[:2]}" option does not exist.', stderr=True)
            raise Failure(f'No arguments expected for "{command}" command, got "{token}".', stderr=True)
        name, has_value, value = token[2:].partition("=")
        if name in flags:
            if has_value:
                raise Failure(f'The "--{name}" option does not accept a value.', stderr=True)
            options[name] = True
        elif name in values:
            if not has_value:
                if args and (not args[0].startswith("-") or args[0] == ""):
                    value = args.pop(0)
                else:
                    raise Failure(f'The "--{name}" option requires a value.', stderr=True)
            options[name] = value
        else:
            raise Failure(f'The "--{name}" option does not exist.', stderr=True)
    return command, options, interactive


# -- commands ------------------------------------------------------------------------------
def _check(errors: list[str], field: str, value, rule=None, message: str = INVALID) -> bool:
    if value in (None, ""):
        errors.append(f"{field}: {BLANK}")
        return False
    if rule is not None and not rule(value):
        errors.append(f"{field}: {message}")
        return False
    return True


def _site(state: dict, domain) -> dict:
    if domain in (None, ""):
        raise Failure(f"domainName: {BLANK}")
    site = state["sites"].get(domain)
    if site is None:
        raise Failure(f'An error has occurred, error message: Site "{domain}" does not exist.')
    return site


def add_site(state: dict, kind: str, opts: dict) -> str:
    errors: list[str] = []
    domain, user = opts.get("domainName"), opts.get("siteUser")
    if _check(errors, "domainName", domain, DOMAIN_RE.match) and domain in state["sites"]:
        errors.append(f"domainName: {EXISTS}")
    _check(errors, "siteUser", user, SITE_USER_RE.match)
    _check(errors, "siteUserPassword", opts.get("siteUserPassword"), lambda v: len(v) >= 8, SHORT)
    choices = {"phpVersion": PHP_VERSIONS, "vhostTemplate": VHOST_TEMPLATES,
               "nodejsVersion": NODEJS_VERSIONS, "pythonVersion": PYTHON_VERSIONS}
    for field in COMMANDS[f"site:add:{kind}"][0][len(SITE_USER):]:
        if field == "appPort":
            _check(errors, field, opts.get(field), lambda v: v.isdigit() and 1 <= int(v) <= 65535,
                   "This value should be between 1 and 65535.")
        elif field == "reverseProxyUrl":
            _check(errors, field, opts.get(field), re.compile(r"^https?://[^\s/]+").match,
                   "This value is not a valid URL.")
        else:
            _check(errors, field, opts.get(field), choices[field].__contains__, CHOICE)
    if errors:
        raise Failure(*errors)
    if user in SYSTEM_USERS or any(s["siteUser"] == user for s in state["sites"].values()):
        raise Failure(f"An error has occurred, error message: user: {EXISTS}")
    state["sites"][domain] = dict(opts, type=kind, certificate=False, suspended=False, expiredate="")
    if os.environ.get(HOME_ROOT_ENV):
        (_site_root(state["sites"][domain])).mkdir(parents=True, exist_ok=True)
    _write_vhost(state["sites"][domain])
    return f'Site "{domain}" has been created.'


def _site_root(site: dict) -> Path:
    return Path(os.environ.get(HOME_ROOT_ENV) or "/home", site["siteUser"], "htdocs", site["domainName"])


def _write_vhost(site: dict) -> None:
    """Write the site's vhost from its record, as CloudPanel does: whatever the file held is lost."""
    if os.environ.get(NGINX_DIR_ENV):
        vhost = _vhost_path(site["domainName"])
        vhost.parent.mkdir(parents=True, exist_ok=True)
        certificate = "lets-encrypt" if site.get("certificate") else "self-signed"
        vhost.write_text(VHOST.format(domain=site["domainName"], root=_site_root(site), certificate=certificate))


def regenerate(state_file: Path, domain: str) -> None:
    """Rewrite ``domain``'s vhost from the state, as a save in CloudPanel's Vhost Editor does."""
    with locked_state(state_file) as state:
        _write_vhost(_site(state, domain))


def nginx_serves(nginx_dir: Path, host: str) -> Path | None:
    """The file whose server block nginx picks for ``host``: the first, in sorted order, naming it."""
    for path in sorted(Path(nginx_dir, "sites-enabled").glob("*.conf"), key=lambda p: p.name.encode()):
        names = re.findall(r"^\s*server_name\s+([^;]*);", path.read_text(), re.M)
        if any(host in line.split() for line in names):
            return path
    return None


VHOST = """server {{
  listen 80;
  listen [::]:80;
  listen 443 ssl;
  listen [::]:443 ssl;
  ssl_certificate_key /etc/nginx/ssl-certificates/{domain}.key;
  ssl_certificate /etc/nginx/ssl-certificates/{domain}.crt;
  server_name {domain};
  # certificate: {certificate}
  root {root};
  index index.php index.html;
  location / {{
    try_files $uri $uri/ /index.php?$args;
  }}
}}
"""


def _vhost_path(domain: str) -> Path:
    return Path(os.environ[NGINX_DIR_ENV], "sites-enabled", f"{domain}.conf")


def delete_site(state: dict, opts: dict, interactive: bool) -> str:
    site = _site(state, opts.get("domainName"))
    if not opts.get("force"):
        sys.stdout.write(f'Do you really want to delete the site "{site["domainName"]}"? '
                         'Type "yes" to continue: ')
        sys.stdout.flush()
        answer = sys.stdin.readline().strip() if interactive else ""
        if answer != "yes":
            raise Failure("", "Aborted: the site has not been deleted.")
    del state["sites"][site["domainName"]]
    state["databases"] = {k: v for k, v in state["databases"].items()
                          if v["domainName"] != site["domainName"]}
    for user in state["users"].values():
        user["sites"] = [s for s in user["sites"] if s != site["domainName"]]
    if os.environ.get(HOME_ROOT_ENV):
        shutil.rmtree(Path(os.environ[HOME_ROOT_ENV], site["siteUser"]), ignore_errors=True)
    if os.environ.get(NGINX_DIR_ENV):
        _vhost_path(site["domainName"]).unlink(missing_ok=True)
    return f'Site "{site["domainName"]}" has been deleted.'


def add_user(state: dict, opts: dict) -> str:
    errors: list[str] = []
    name = opts.get("userName")
    if _check(errors, "userName", name, re.compile(r"^[A-Za-z0-9._@-]{1,64}$").match) \
            and name in state["users"]:
        errors.append(f"userName: {EXISTS}")
    _check(errors, "email", opts.get("email"), EMAIL_RE.match, "This value is not a valid email address.")
    _check(errors, "firstName", opts.get("firstName"))
    _check(errors, "lastName", opts.get("lastName"))
    _check(errors, "password", opts.get("password"), lambda v: len(v) >= 8, SHORT)
    role = opts.get("role")
    _check(errors, "role", role, ROLES.__contains__, CHOICE)
    _check(errors, "timezone", opts.get("timezone"), _valid_timezone, "This value is not a valid timezone.")
    _check(errors, "status", opts.get("status"), {"0", "1"}.__contains__, CHOICE)
    sites = [s for s in (opts.get("sites") or "").split(",") if s]
    if role == "user" and _check(errors, "sites", opts.get("sites")):
        if not all(s in state["sites"] for s in sites):
            errors.append(f"sites: {INVALID}")
    if errors:
        raise Failure(*errors)
    state["users"][name] = {"userName": name, "email": opts["email"], "firstName": opts["firstName"],
                            "lastName": opts["lastName"], "password": opts["password"], "role": role,
                            "sites": sites if role == "user" else [], "timezone": opts["timezone"],
                            "status": int(opts["status"])}
    return f'User "{name}" has been created.'


def _valid_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
        return True
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False


def delete_user(state: dict, opts: dict) -> str:
    name = opts.get("userName")
    if name in (None, ""):
        raise Failure(f"userName: {BLANK}")
    if state["users"].pop(name, None) is None:
        raise Failure(f'An error has occurred, error message: User "{name}" does not exist.')
    return f'User "{name}" has been deleted.'


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    line = lambda row: "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    return "\n".join([rule, line(headers), rule, *map(line, rows), rule])


def list_users(state: dict, opts: dict) -> str:
    rows = [[u["userName"], u["firstName"], u["lastName"], u["email"], ROLES[u["role"]],
             "Active" if u["status"] else "Not Active"] for u in state["users"].values()]
    return table(["User Name", "First Name", "Last Name", "E-Mail", "Role", "Status"], rows)


def add_database(state: dict, opts: dict) -> str:
    site = _site(state, opts.get("domainName"))
    errors: list[str] = []
    db, db_user = opts.get("databaseName"), opts.get("databaseUserName")
    if _check(errors, "databaseName", db, DB_NAME_RE.match) and db in state["databases"]:
        errors.append(f"databaseName: {EXISTS}")
    if _check(errors, "databaseUserName", db_user, DB_NAME_RE.match) and \
            any(d["databaseUserName"] == db_user for d in state["databases"].values()):
        errors.append(f"databaseUserName: {EXISTS}")
    _check(errors, "databaseUserPassword", opts.get("databaseUserPassword"), lambda v: len(v) >= 8, SHORT)
    if errors:
        raise Failure(*errors)
    state["databases"][db] = dict(opts, domainName=site["domainName"])
    return f'Database "{db}" has been added.'


def install_certificate(state: dict, opts: dict) -> str:
    site = _site(state, opts.get("domainName"))
    site["certificate"] = True
    _write_vhost(site)   # CloudPanel writes the vhost again with the new certificate
    return f'Certificate for "{site["domainName"]}" has been installed.'


def run(argv: list[str], state_file: Path) -> int:
    """Run one clpctl invocation; returns the exit code."""
    error_exit = int(os.environ.get(ERROR_EXIT_ENV, "1"))
    try:
        command, opts, interactive = parse(argv)
        if not command:
            print("CloudPanel CLI (sandbox)\n\nAvailable commands:\n" +
                  "".join(f"  {name}\n" for name in sorted(COMMANDS)), end="")
            return 0
        if command == "vhost-templates:list":
            print(table(["Name"], [[t] for t in VHOST_TEMPLATES]))
            return 0
        with locked_state(state_file) as state:
            if command.startswith("site:add:"):
                message = add_site(state, command.rsplit(":", 1)[1], opts)
            else:
                operation = {"site:delete": lambda s, o: delete_site(s, o, interactive),
                             "user:add": add_user, "user:delete": delete_user,
                             "user:list": list_users, "db:add": add_database,
                             "lets-encrypt:install:certificate": install_certificate}[command]
                message = operation(state, opts)
        print(message)
        return 0
    except Failure as failure:
        print("\n".join(failure.lines), file=sys.stderr if failure.stderr else sys.stdout)
        return 1 if failure.stderr else error_exit


# -- the usermod shim (provisiond's emulated suspend) -------------------------------------
USERMOD_USAGE = "Usage: usermod [options] LOGIN"


def usermod(argv: list[str], state_file: Path) -> int:
    """``usermod [-L|-U] [-e DATE] USER`` against the site users of the state."""
    args, changes, locks = list(argv), {}, set()
    while len(args) > 1:
        option = args.pop(0)
        if option in ("-L", "--lock", "-U", "--unlock"):
            locks.add(option.lstrip("-")[0].upper())
            changes["suspended"] = option in ("-L", "--lock")
        elif option in ("-e", "--expiredate"):
            date = args.pop(0)
            changes["expiredate"] = "" if date in ("", "-1") else date
        else:
            print(f"usermod: invalid option -- '{option.lstrip('-')}'\n{USERMOD_USAGE}", file=sys.stderr)
            return 2
    if len(args) != 1 or args[0].startswith("-"):
        print(USERMOD_USAGE, file=sys.stderr)
        return 2
    with locked_state(state_file) as state:
        site = next((s for s in state["sites"].values() if s["siteUser"] == args[0]), None)
        if site is None:
            print(f"usermod: user '{args[0]}' does not exist", file=sys.stderr)
            return 6
        problem = ("usermod: no options" if not changes else
                   "usermod: the -L, -p, and -U flags are exclusive" if locks == {"L", "U"} else "")
        if problem:
            print(f"{problem}\n{USERMOD_USAGE}", file=sys.stderr)
            return 2
        site.update(changes)
    return 0


def chpasswd(argv: list[str], stdin, state_file: Path) -> int:
    """``chpasswd`` reading ``user:password`` lines: sets each site user's password.

    As the real chpasswd: a new password replaces a ``usermod -L`` lock, and one bad line (unknown
    user, no colon) is reported and leaves every password as it was (exit 1).
    """
    if argv:
        print(f"chpasswd: invalid option -- '{argv[0].lstrip('-')}'", file=sys.stderr)
        return 2
    errors, changes = [], []
    with locked_state(state_file) as state:
        for number, line in enumerate(stdin.read().splitlines(), 1):
            user, colon, password = line.partition(":")
            site = next((s for s in state["sites"].values() if s["siteUser"] == user), None)
            if not colon:
                errors.append(f"chpasswd: line {number}: missing new password")
            elif site is None:
                errors.append(f"chpasswd: line {number}: user '{user}' does not exist")
            else:
                changes.append((site, password))
        if not errors:
            for site, password in changes:
                site.update(siteUserPassword=password, suspended=False)
    if errors:
        print("\n".join(errors + ["chpasswd: error detected, changes ignored"]), file=sys.stderr)
        return 1
    return 0


# -- wrappers ------------------------------------------------------------------------------
def _write_wrapper(bin_dir: Path, name: str, state_file: Path, program: str) -> Path:
    repo_root = Path(__file__).resolve().parents[2]
    script = Path(bin_dir) / name
    script.write_text(
        "#!/bin/sh\n"
        f"export {STATE_ENV}={shlex.quote(str(Path(state_file).resolve()))}\n"
        f"export {PROGRAM_ENV}={program}\n"
        f'export PYTHONPATH={shlex.quote(str(repo_root))}"${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        f'exec {shlex.quote(sys.executable)} -m provisiond.sandbox.clpctl "$@"\n')
    script.chmod(0o755)
    return script


def install_wrapper(bin_dir: Path, state_file: Path) -> Path:
    """Write an executable ``clpctl`` into ``bin_dir`` that runs this simulator on ``state_file``."""
    return _write_wrapper(bin_dir, "clpctl", state_file, "clpctl")


def install_account_tools(bin_dir: Path, state_file: Path) -> list[Path]:
    """Write the ``usermod`` and ``chpasswd`` shims that act on the site users of ``state_file``."""
    return [_write_wrapper(bin_dir, name, state_file, name) for name in ("usermod", "chpasswd")]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    state = os.environ.get(STATE_ENV)
    if not state:
        print(f"{STATE_ENV} is not set: the clpctl simulator needs a state file.", file=sys.stderr)
        return 2
    if os.environ.get(PROGRAM_ENV) == "usermod":
        return usermod(argv, Path(state))
    if os.environ.get(PROGRAM_ENV) == "chpasswd":
        return chpasswd(argv, sys.stdin, Path(state))
    return run(argv, Path(state))


if __name__ == "__main__":
    sys.exit(main())
