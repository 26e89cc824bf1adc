"""A strict Virtualmin remote.cgi simulator (shared/panels/virtualmin.md).

Like virtualmin-gpl's ``remote.cgi``, it checks Basic auth (Webmin answers 401), turns every
parameter but ``program`` and ``json`` into ``--name value`` (an empty value into a bare
``--name`` flag) and parses them as the command-line program would, so ``dns=1`` fails as
"Unknown option 1". With ``json=1`` the output is converted as ``convert_remote_format`` does
(``status``/``error``/``full_error``/``output``, ``data`` for ``list-*`` with ``multiline``);
without it the raw output ends with ``Exit status: N``. Answers are ``text/plain``, as remote.cgi
prints them. Accounts are keyed by their Unix user; programs find them by domain.

``create-login-link`` (the one-time login link, issue 10) follows virtualmin-gpl's own
``create-login-link.pl`` (github.com/virtualmin/virtualmin-gpl, documented at
https://www.virtualmin.com/documentation/developer/cli/ as "Generates a link that can be used to
login to Virtualmin"): ``--domain NAME`` or ``--user NAME`` (the top-level server that user owns),
its refusals word for word, and one output line,
``<get_virtualmin_url>/session_login.cgi?session=<id>``, a Webmin session made for the server's
owner by ``acl::create_session_user``. ``sessions`` maps each session made to its user.

Usage (issue 11): ``list-domains --multiline`` prints each top-level server's quota, database
and bandwidth lines as virtualmin-gpl's ``list-domains.pl`` does (see ``_usage_lines``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import secrets
import time

from provisiond.sandbox.base import PanelSimulator, Request, Response

FEATURES = ("unix", "dir", "dns", "mail", "web", "ssl", "webmin", "mysql", "postgres",
            "logrotate", "spam", "virus", "webalizer")
DEFAULT_FEATURES = ("unix", "dir", "dns", "mail", "web", "webmin", "logrotate")
SYSTEM_USERS = frozenset({"root", "bin", "daemon", "mail", "www-data", "nobody", "postfix",
                          "mysql", "bind", "dovecot", "sshd", "webmin", "admin", "ftp"})
DOMAIN_PATTERN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
USER_PATTERN = re.compile(r"^[a-z0-9][-a-z0-9._]{0,31}$")
UNAUTHORIZED = (b"<html><head><title>401 Unauthorized</title></head>\n"
                b"<body><h1>Error - Unauthorized</h1>\n</body></html>\n")
HELP = ("This CGI is designed to be invoked by other programs wanting\nto perform some Virtualmin "
        "action programatically, such as\ncreating or modifying domains and users.\n")


class Usage(Exception):
    """The program printed a message and its usage, then called ``exit(1)``."""


@dataclasses.dataclass
class Account:
    user: str
    domain: str
    plan: str
    email: str
    password: str
    features: tuple[str, ...]
    suspended: bool = False
    why: str = ""
    created: int = dataclasses.field(default_factory=lambda: int(time.time()))
    id: str = ""
    # Usage (tests set them): see ``VirtualminSimulator._usage_lines``.
    quota_blocks: int = 0          # Server block quota, 0 = unlimited
    used_bytes: int = 0            # Server byte quota used
    bw_limit_bytes: int = 0        # Bandwidth byte limit, 0 = unlimited
    bw_usage_bytes: int = 0        # Bandwidth byte usage
    databases: int = 0             # Databases count


class VirtualminSimulator(PanelSimulator):
    """``VirtualminSimulator(username="root", password="pw")``; ``sim.accounts`` is the state.

    ``plans`` get numeric IDs from 1001 up; the "Default Plan" (ID 0) always exists and is used
    when ``plan`` is not given. ``content_type`` is what answers are served as (remote.cgi says
    ``text/plain`` even for JSON).
    """

    panel = "virtualmin"

    def __init__(self, username: str = "root", password: str = "sandbox-pass",
                 plans=("basic", "pro", "business"), content_type: str = "text/plain",
                 system_users=SYSTEM_USERS, **kwargs):
        super().__init__(**kwargs)
        self.username, self.password, self.content_type = username, password, content_type
        self.plans = {"0": "Default Plan", **{str(1001 + i): p for i, p in enumerate(plans)}}
        self.system_users = set(system_users)
        self.accounts: dict[str, Account] = {}
        self.sessions: dict[str, str] = {}  # create-login-link: session id -> Unix user

    # -- wire ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path != "/virtual-server/remote.cgi":
            return Response(404, b"<h1>Error - File not found</h1>\n", "text/html")
        if not self._authorized(request.headers.get("authorization", "")):
            return Response(401, UNAUTHORIZED, "text/html",
                            {"WWW-Authenticate": 'Basic realm="Webmin Server"'})
        params = request.form()
        program = params.get("program", "")
        if not program:
            return self._text(HELP)
        if not re.fullmatch(r"[a-z0-9.\-]+", program, re.I):
            return self._text("ERROR: Invalid program name\n")
        runner = getattr(self, "run_" + program.replace("-", "_"), None)
        if runner is None:
            return self._text(f"ERROR: Program {program} does not exist\n")
        args: list[str] = []
        for key, value in params.items():
            if key not in ("program", "json"):
                args += [f"--{key}"] if value == "" else [f"--{key}", value]
        with self.lock:
            try:
                code, out = 0, runner(args)
            except Usage as usage:
                code, out = 1, f"{usage}\n\nvirtualmin {program} (see --help)\n"
        if "json" in params:
            return self._text(json.dumps(self._convert(out, code, program, params)))
        return self._text(f"{out}\nExit status: {code}\n")

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        try:
            credentials = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and credentials == f"{self.username}:{self.password}"

    def _text(self, body: str) -> Response:
        return Response(200, body.encode(), self.content_type)

    @staticmethod
    def _convert(out: str, code: int, program: str, params) -> dict:
        """virtual-server's convert_remote_format, for the JSON format."""
        data = {"command": program, "status": "failure" if code else "success"}
        if code:
            data["error"] = next((line for line in out.splitlines() if line.strip()), None)
            data["full_error"] = out
        elif program.startswith("list-") and "multiline" in params:
            items, obj = [], None
            for line in out.splitlines():
                if obj is None and (m := re.match(r"^(\S[^:]+):\s*(.*)$", line)):
                    items.append({"name": m[1], "value": m[2]})
                elif m := re.match(r"^(\S.*)$", line):
                    obj = {}
                    items.append({"name": m[1], "values": obj})
                elif (m := re.match(r"^\s+(\S[^:]+):\s*(.*)$", line)) and obj is not None:
                    obj.setdefault(re.sub(r"\s", "_", m[1].lower()), []).append(m[2])
            data["data"] = items
        else:
            data["output"] = out
        return data

    # -- argument parsing ------------------------------------------------------------------
    @staticmethod
    def _parse(args: list[str], valued, flags, unknown: str = "Unknown parameter") -> dict:
        opts: dict = {}
        queue = list(args)
        while queue:
            arg = queue.pop(0)
            name = arg[2:] if arg.startswith("--") else None
            if name in valued:
                opts[name] = queue.pop(0) if queue else ""
            elif name in flags:
                opts[name] = True
            else:
                raise Usage(f"{unknown} {arg}")
        return opts

    def _by_domain(self, domain: str) -> Account:
        domain = domain.lower()
        account = next((a for a in self.accounts.values() if a.domain == domain), None)
        if account is None:
            raise Usage(f"Virtual server {domain} does not exist")
        return account

    def _plan(self, wanted: str) -> str:
        for plan_id, name in self.plans.items():
            if wanted in (plan_id, name):
                return name
        raise Usage(f"Plan {wanted} does not exist")

    # -- programs --------------------------------------------------------------------------
    def run_create_domain(self, args):
        flags = {*FEATURES, "default-features", "features-from-plan", "limits-from-plan",
                 "limits-from-template", "skip-warnings", "no-email"}
        opts = self._parse(args, {"domain", "pass", "user", "email", "plan", "desc", "template"},
                           flags, "Unknown option")
        plan = self._plan(opts["plan"]) if "plan" in opts else "Default Plan"
        domain = str(opts.get("domain", "")).lower()
        if not domain:
            raise Usage("Missing domain name")
        if not opts.get("pass"):
            raise Usage("Missing password")
        email = opts.get("email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,63}", email):
            raise Usage("Invalid email address")
        if not DOMAIN_PATTERN.match(domain):
            raise Usage(f"'{domain}' is not a valid domain name")
        if any(a.domain == domain for a in self.accounts.values()):
            raise Usage("You are already hosting this domain")
        user = self._username(domain, opts.get("user"))
        if opts.get("default-features") or opts.get("features-from-plan"):
            features = DEFAULT_FEATURES
        else:
            features = tuple(f for f in FEATURES if opts.get(f))
        if not features:
            raise Usage("No virtual server features enabled")
        account = Account(user, domain, plan, email or "", opts["pass"], features)
        account.id = f"{account.created}{len(self.accounts) + 1:05d}"
        self.accounts[user] = account
        return (f"Beginning server creation ..\n\nCreating administration group {user} ..\n.. done\n\n"
                f"Creating administration user {user} ..\n.. done\n\nAll done!\n")

    def _username(self, domain: str, wanted: str | None) -> str:
        taken = lambda name: name in self.accounts or name in self.system_users  # noqa: E731
        if wanted is not None:
            user = wanted.lower()
            if not USER_PATTERN.match(user):
                raise Usage(f"'{user}' is not a valid Unix username")
            if user == "root":
                raise Usage("The username root cannot be used")
            if taken(user):
                raise Usage(f"A Unix user named {user} already exists")
            return user
        try1, try2 = re.sub(r"[^a-z0-9-]", "", domain.split(".")[0]), domain
        for candidate in (try1, try2):
            if candidate and not taken(candidate):
                return candidate
        raise Usage(f"Could not work out a username automatically: both {try1} and {try2} are taken")

    def run_disable_domain(self, args):
        opts = self._parse(args, {"domain", "why"}, {"multiline", "subservers"})
        if not opts.get("domain"):
            raise Usage("No domain specified")
        account = self._by_domain(opts["domain"])
        if account.suspended:
            raise Usage(f"Virtual server {account.domain} is already disabled")
        account.suspended, account.why = True, opts.get("why", "")
        return (f"Disabling virtual server {account.domain} ..\n\nSaving server details ..\n"
                ".. done\n\nAll done!\n")

    def run_enable_domain(self, args):
        opts = self._parse(args, {"domain"}, {"multiline", "subservers"})
        if not opts.get("domain"):
            raise Usage("No domain specified")
        account = self._by_domain(opts["domain"])
        if not account.suspended:
            raise Usage(f"Virtual server {account.domain} is not disabled")
        account.suspended, account.why = False, ""
        return (f"Enabling virtual server {account.domain} ..\n\nSaving server details ..\n"
                ".. done\n\nAll done!\n")

    def run_delete_domain(self, args):
        opts = self._parse(args, {"domain", "user"}, {"only", "preserve-remote", "multiline"})
        if not opts.get("domain") and not opts.get("user"):
            raise Usage("No users or domains specified")
        if opts.get("domain"):
            account = self._by_domain(opts["domain"])
        elif opts["user"] in self.accounts:
            account = self.accounts[opts["user"]]
        else:
            raise Usage(f"No virtual server owned by {opts['user']} exists")
        del self.accounts[account.user]
        return f"Deleting virtual server {account.domain} ..\n.. deleted\n\n"

    def run_modify_domain(self, args):
        opts = self._parse(args, {"domain", "pass", "email", "desc", "apply-plan", "plan"}, set())
        if not opts.get("domain"):
            raise Usage("No domain specified")
        account = self._by_domain(opts["domain"])
        if not set(opts) - {"domain"}:
            raise Usage("Nothing to do")
        plan = opts.get("apply-plan") or opts.get("plan")
        plan = self._plan(plan) if plan else account.plan
        if "pass" in opts and not opts["pass"]:
            raise Usage("Missing password")
        account.plan = plan
        account.password = opts.get("pass", account.password)
        account.email = opts.get("email", account.email)
        return f"Updating virtual server {account.domain} ..\n.. done\n\nAll done!\n"

    def run_list_domains(self, args):
        opts = self._parse(args, {"domain", "user"}, {"multiline", "name-only", "toplevel"})
        accounts = sorted(self.accounts.values(), key=lambda a: (a.user, a.created))
        if opts.get("domain"):
            accounts = [self._by_domain(opts["domain"])]
        if opts.get("user"):
            accounts = [a for a in accounts if a.user == opts["user"]]
        if opts.get("name-only"):
            return "".join(f"{a.domain}\n" for a in accounts)
        if not opts.get("multiline"):
            rows = [f"{'Domain':<30} {'Username':<15} Description", f"{'-' * 30} {'-' * 15} {'-' * 30}"]
            return "\n".join(rows + [f"{a.domain:<30} {a.user:<15} {a.domain}" for a in accounts]) + "\n"
        lines = []
        for a in accounts:
            plan_id = next(i for i, name in self.plans.items() if name == a.plan)
            lines += [a.domain, f"    ID: {a.id}",
                      "    Type: Top-level server", f"    Description: {a.domain}",
                      f"    Plan ID: {plan_id}", f"    Plan: {a.plan}", f"    Username: {a.user}",
                      "    Password storage: Plain text", f"    Password: {a.password}",
                      f"    Home directory: /home/{a.user}", f"    Contact email: {a.email}",
                      f"    Created on: {time.strftime('%Y-%m-%d %H:%M', time.localtime(a.created))}",
                      f"    Created Unix time: {a.created}"]
            if a.suspended:
                lines.append(f"    Disabled: Manually ({a.why})" if a.why else "    Disabled: Manually")
            lines.append(f"    Features: {' '.join(a.features)}")
            lines += self._usage_lines(a)
        return "".join(f"{line}\n" for line in lines)

    def _usage_lines(self, a: Account) -> list[str]:
        """The quota, database and bandwidth lines of a top-level server in list-domains
        --multiline (virtualmin-gpl list-domains.pl, shown with home quotas on and bandwidth
        monitoring active): block quotas in 1 KiB blocks (quota_bsize on Linux), "Unlimited"
        for none, byte figures in bytes, "Databases count" only when there are databases."""
        def nice(size: int) -> str:
            return f"{size / 1024 / 1024:.2f} MB"
        lines = [f"    Server quota: {nice(a.quota_blocks * 1024) if a.quota_blocks else 'Unlimited'}",
                 f"    Server block quota: {a.quota_blocks or 'Unlimited'}",
                 f"    Server quota used: {nice(a.used_bytes)}",
                 f"    Server block quota used: {a.used_bytes // 1024}",
                 f"    Server byte quota used: {a.used_bytes}",
                 "    User quota: Unlimited", "    User block quota: Unlimited"]
        if a.databases:
            lines += [f"    Databases count: {a.databases}", "    Databases size: 0.00 MB",
                      "    Databases byte size: 0"]
        lines += [f"    Bandwidth limit: {nice(a.bw_limit_bytes) if a.bw_limit_bytes else 'Unlimited'}",
                  f"    Bandwidth byte limit: {a.bw_limit_bytes or 'Unlimited'}",
                  f"    Bandwidth start: {time.strftime('%Y-%m-%d', time.localtime(a.created))}",
                  f"    Bandwidth usage: {nice(a.bw_usage_bytes)}",
                  f"    Bandwidth byte usage: {a.bw_usage_bytes}"]
        return lines

    def run_list_plans(self, args):
        opts = self._parse(args, {"id", "name"}, {"multiline", "name-only", "id-only"})
        plans = [(i, n) for i, n in self.plans.items()
                 if opts.get("id", i) == i and opts.get("name", n) == n]
        if opts.get("name-only") or opts.get("id-only"):
            return "".join(f"{n if opts.get('name-only') else i}\n" for i, n in plans)
        if opts.get("multiline"):
            return "".join(f"{i}\n    Name: {n}\n    Owner: \n" for i, n in plans)
        rows = [f"{'ID':<12} {'Name':<30} Owner", f"{'-' * 12} {'-' * 30} {'-' * 15}"]
        return "\n".join(rows + [f"{i:<12} {n:<30}" for i, n in plans]) + "\n"

    def run_create_login_link(self, args):
        opts = self._parse(args, {"domain", "user", "usermin-user"}, {"multiline"})
        if opts.get("domain"):
            account = next((a for a in self.accounts.values() if a.domain == opts["domain"].lower()), None)
            if account is None:
                raise Usage(f"No virtual server named {opts['domain']} found")
        elif opts.get("user"):
            account = self.accounts.get(opts["user"])
            if account is None:
                raise Usage(f"No virtual server owned by {opts['user']} found")
        else:
            raise Usage("One of --domain or --user must be provided")
        if "webmin" not in account.features:
            raise Usage(f"Virtual server {account.domain} has no Webmin login")
        session = secrets.token_hex(16)
        self.sessions[session] = account.user
        host = self.url.split("://", 1)[1]
        return f"https://{host}/session_login.cgi?session={session}\n"

    def run_list_commands(self, args):
        self._parse(args, set(), {"multiline", "short"})
        names = sorted(m[4:].replace("_", "-") for m in dir(self) if m.startswith("run_"))
        return "Virtual servers:\n" + "".join(f"  virtualmin {n}\n" for n in names)
