"""A strict Virtualmin remote.cgi simulator, rebuilt from virtualmin-gpl's own code (issue 10).

Every behaviour below follows github.com/virtualmin/virtualmin-gpl (read at commit 69a9c2af, 2026-08),
file and line given; where shared/panels/virtualmin.md says otherwise, the vendor wins.

``remote.cgi`` (the endpoint, ``/virtual-server/remote.cgi``):
  * Webmin's own Basic auth in front (miniserv answers 401 with its "Unauthorized" page).
  * No ``program``: a help text, ``text/plain`` (remote.cgi l.14-31).
  * The format is ``json`` when a ``json`` parameter is there at all (l.35-38). A bad program
    name or a program that does not exist is ``api_error`` (l.43, l.53, l.118-130): served as
    ``text/plain`` even with json, ``{"status": "error", "error": "Invalid remote program name"}``
    / ``"Remote program X does not exist"`` (lang/en ``remote_eprogram``, ``remote_eprogram2``),
    or ``ERROR: <text>`` without a format.
  * Arguments come from the raw parameter list in the order sent (POST body, then query string),
    every name but ``program`` and the format's: an empty value is a bare ``--name``, any other
    ``--name value`` with a multi-line value split into several arguments (l.62-75). So
    ``dns=1`` gives ``--dns 1`` and the program stops at "Unknown parameter 1".
  * With json, ``multiline`` is forced into the parameters the converter sees (not into the
    program's arguments) unless ``simple-multiline`` is given (l.54-58). The answer is
    ``application/json`` (l.82), pretty printed unless ``json=minified`` (json-lib.pl l.171-177).
  * The program runs forked (json-lib.pl ``execute_webmin_script`` l.217); ``$?`` is the raw wait
    status, so a program's ``exit(1)`` is 256: json gives ``status: failure`` (json-lib.pl l.34),
    the raw output ends ``Exit status: 256`` (remote.cgi l.114).
  * ``convert_remote_format`` (json-lib.pl l.28-180): failure -> ``error`` (first non-blank line)
    and ``full_error``; a ``list-*`` command with ``multiline`` defined -> ``data`` of
    ``{name, values: {lower_snake_key: [values]}}`` (so under json a ``name-only`` listing comes
    back as ``[{"name": "example.com", "values": {}}]``); anything else -> ``output``.

Programs (each ``usage()`` prints the message, a blank line, its description and ``exit(1)``):
  * create-domain.pl: arguments l.148-546 (``--plan`` unknown: "Unknown plan name" l.348; an
    ``--email`` that is not an address l.161); "Missing domain name"/"Missing password"
    l.685-686; ``valid_domain_name`` (domainname-lib.pl l.109: letters, digits, dots, dashes
    and underscores); "You are already hosting this domain" (``setup_edomain4``, l.721); the
    username from the first label, else the whole domain (``unixuser_name``,
    virtual-server-lib-funcs.pl l.8164), ``setup_eauto`` when both are taken; a given user that
    exists: "The specified administration user already exists" (``setup_euser``, l.775, also
    for root); features from the flags, or the defaults with ``--default-features`` /
    ``--features-from-plan`` (l.798-828); output "Beginning server creation .." ... "All done!".
  * disable-domain.pl l.51-153, enable-domain.pl l.36-91: "No domain specified", "Virtual server
    X does not exist", "... is already disabled" / "... is not disabled".
  * delete-domain.pl l.44-132 with ``get_domains_by_names_users`` (virtual-server-lib-funcs.pl
    l.463): "No users or domains specified", "Virtual server X does not exist", "No top-level
    domain owned by X exists"; a top-level server goes with its sub-servers.
  * modify-domain.pl l.105-1163: "Virtual server X does not exist." (with the full stop, l.439);
    ``--plan``/``--apply-plan`` with a name or ID that matches no plan is silently ignored
    (l.310-323, l.824): the program still ends "All done"; a bad ``--email``: "Invalid email
    address X" (l.667). There is no "nothing to do" refusal.
  * list-domains.pl: filters l.69-240 (``--toplevel`` l.234; ``--user`` lists the user's
    top-level server and its sub-servers); sorted by user, then creation time (l.239); the
    multiline block l.306-470 (``Password:`` only for the master admin, l.368-370; ``Contact
    email`` is ``emailto`` from ``compute_emailto``, virtual-server-lib-funcs.pl l.374: the
    given address, else user@domain with mail, else user@hostname; ``Disabled: Manually (why)``
    l.417-428); ``--name-only`` l.1003; the table otherwise.
  * list-plans.pl l.32-153: "No plan with name X was found" / "No plan with ID X was found".
  * create-login-link.pl l.40-141: ``--domain``/``--user``, its refusals word for word, and one
    line ``<get_virtualmin_url>/session_login.cgi?session=<id>`` (a Webmin session made for the
    server's owner by ``acl::create_session_user``); ``sessions`` maps each session to its user.
  * list-commands.pl: the command list (the connection test).

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
import urllib.parse

from provisiond.sandbox.base import PanelSimulator, Request, Response

FEATURES = ("unix", "dir", "dns", "mail", "web", "ssl", "webmin", "mysql", "postgres",
            "logrotate", "spam", "virus", "webalizer")
DEFAULT_FEATURES = ("unix", "dir", "dns", "mail", "web", "webmin", "logrotate")
SYSTEM_USERS = frozenset({"root", "bin", "daemon", "mail", "www-data", "nobody", "postfix",
                          "mysql", "bind", "dovecot", "sshd", "webmin", "admin", "ftp"})
UNAUTHORIZED = (b"<html><head><title>401 Unauthorized</title></head>\n"
                b"<body><h1>Error - Unauthorized</h1>\n</body></html>\n")
HELP = ("This CGI is designed to be invoked by other programs wanting\nto perform some Virtualmin "
        "action programatically, such as\ncreating or modifying domains and users.\n\n"
        "You must supply at least the CGI parameter 'program', which\nspecifies which of the "
        "Virtualmin command-line scripts to\nrun.\n\nAll output from the command will be returned "
        "to the caller.\n")
# Each program's usage(): the separator after the message and its description line(s).
USAGE = {
    "create-domain": ("\n\n", "Adds a new Virtualmin virtual server, with the settings and features\n"
                              "specified on the command line.\n"),
    "disable-domain": ("\n", "Disables all features in the specified virtual server.\n"),
    "enable-domain": ("\n", "Enables all disabled features in the specified virtual server.\n"),
    "delete-domain": ("\n\n", "Deletes an existing Virtualmin virtual server and all sub-servers,\n"
                              "mailboxes and alias domains.\n"),
    "modify-domain": ("\n\n", "Changes the settings for a Virtualmin server, based on the specified\n"
                              "command-line parameters.\n"),
    "list-domains": ("\n\n", "Lists the virtual servers on this system.\n"),
    "list-plans": ("\n\n", "Lists the available account plans for virtual servers.\n"),
    "create-login-link": ("\n\n", "Generates a link that can be used to login to Virtualmin.\n"),
    "list-commands": ("\n\n", "Lists API scripts available for the command line.\n"),
}


class Usage(Exception):
    """The program printed a message and its usage, then called ``exit(1)``."""


@dataclasses.dataclass
class Account:
    user: str
    domain: str
    plan: str
    email: str  # the address given at creation ("" for none); list-domains shows emailto
    password: str
    features: tuple[str, ...]
    suspended: bool = False
    why: str = ""
    created: int = dataclasses.field(default_factory=lambda: int(time.time()))
    id: str = ""
    parent: str = ""  # a sub-server's parent domain; "" for a top-level server
    # Usage (tests set them): see ``VirtualminSimulator._usage_lines``.
    quota_blocks: int = 0          # Server block quota, 0 = unlimited
    used_bytes: int = 0            # Server byte quota used
    bw_limit_bytes: int = 0        # Bandwidth byte limit, 0 = unlimited
    bw_usage_bytes: int = 0        # Bandwidth byte usage
    databases: int = 0             # Databases count


class VirtualminSimulator(PanelSimulator):
    """``VirtualminSimulator(username="root", password="pw")``; ``sim.accounts`` is the state.

    ``accounts`` holds the top-level servers by Unix user, ``sub_servers`` the sub-servers by
    domain (``add_sub_server``). ``plans`` get numeric IDs from 1001 up; the "Default Plan"
    (ID 0) always exists and is used when ``--plan`` is not given. ``hostname`` is what
    ``get_system_hostname`` answers (the contact address of a server without mail).
    """

    panel = "virtualmin"

    def __init__(self, username: str = "root", password: str = "sandbox-pass",
                 plans=("basic", "pro", "business"), system_users=SYSTEM_USERS,
                 hostname: str = "vm.sandbox.test", **kwargs):
        super().__init__(**kwargs)
        self.username, self.password, self.hostname = username, password, hostname
        self.plans = {"0": "Default Plan", **{str(1001 + i): p for i, p in enumerate(plans)}}
        self.system_users = set(system_users)
        self.accounts: dict[str, Account] = {}
        self.sub_servers: dict[str, Account] = {}
        self.sessions: dict[str, str] = {}  # create-login-link: session id -> Unix user

    # -- wire ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path != "/virtual-server/remote.cgi":
            return Response(404, b"<h1>Error - File not found</h1>\n", "text/html")
        if not self._authorized(request.headers.get("authorization", "")):
            return Response(401, UNAUTHORIZED, "text/html",
                            {"WWW-Authenticate": 'Basic realm="Webmin Server"'})
        pairs = self._pairs(request)
        given = dict(pairs)
        program = given.get("program", "")
        fmt = "json" if "json" in given else None
        if not program:
            return Response(200, HELP.encode(), "text/plain")
        if not re.fullmatch(r"[a-z0-9.\-]+", program, re.I):
            return self._api_error("Invalid remote program name", fmt)
        runner = getattr(self, "run_" + program.replace("-", "_").replace(".", "_"), None)
        if runner is None or program not in USAGE:
            return self._api_error(f"Remote program {program} does not exist", fmt)
        args: list[str] = []
        for name, value in pairs:
            if name in ("program", fmt):
                continue
            args += [f"--{name}"] if value == "" else [f"--{name}", *value.split("\n")]
        with self.lock:
            try:
                status, out = 0, runner(args)
            except Usage as usage:
                separator, description = USAGE[program]
                message = f"{usage}{separator}" if str(usage) else ""
                status, out = 256, f"{message}{description}\nvirtualmin {program} --help\n"
        if not fmt:
            return Response(200, f"{out}\nExit status: {status}\n".encode(), "text/plain")
        seen = dict(given)
        if "simple-multiline" not in seen:
            seen["multiline"] = ""
        data = self.convert(out, status, program, seen)
        return Response(200, self._json(data, given["json"]).encode(), "application/json")

    @staticmethod
    def _pairs(request: Request) -> list[tuple[str, str]]:
        """Webmin's ReadParse @in: the POST body, then the query string, in order."""
        body = ""
        if request.method == "POST" and "json" not in request.headers.get("content-type", ""):
            body = request.body.decode("utf-8", "replace")
        text = "&".join(part for part in (body, request.raw_query) if part)
        return urllib.parse.parse_qsl(text, keep_blank_values=True)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        try:
            credentials = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and credentials == f"{self.username}:{self.password}"

    def _api_error(self, text: str, fmt: str | None) -> Response:
        body = self._json({"status": "error", "error": text}, "") if fmt else f"ERROR: {text}\n"
        return Response(200, body.encode(), "text/plain")

    @staticmethod
    def _json(data: dict, how: str) -> str:
        if how == "minified":
            return json.dumps(data, separators=(",", ":")) + "\n"
        return json.dumps(data, indent=3, separators=(",", " : ")) + "\n"  # JSON::PP->pretty

    @staticmethod
    def convert(out: str, status: int, program: str, seen: dict) -> dict:
        """json-lib.pl convert_remote_format, for the branches these programs reach."""
        data: dict = {"command": program, "status": "failure" if status else "success"}
        lines = re.split(r"\r?\n", out)
        if status:
            data["error"] = next((line for line in lines if line.strip()), None)
            data["full_error"] = out
        elif program.startswith("list-") and "multiline" in seen:
            items, obj = [], None
            for line in lines:
                if obj is None and (m := re.match(r"^(\S[^:]+):\s*(.*)$", line)):
                    items.append({"name": m[1], "value": m[2]})
                elif m := re.match(r"^(\S.*)$", line):
                    obj = {}
                    items.append({"name": m[1], "values": obj})
                elif (m := re.match(r"^\s+(\S[^:]+):\s*(.*)$", line)) and obj is not None:
                    obj.setdefault(re.sub(r"\s", "_", m[1].lower()), []).append(m[2])
            data["data"] = items
        elif program.startswith("list-") and ("name-only" in seen or "id-only" in seen):
            data["data"] = out.split("\n")[:-1] if out.endswith("\n") else out.split("\n")
        else:
            data["output"] = out
        return data

    # -- state helpers ---------------------------------------------------------------------
    def domains(self) -> list[Account]:
        """Every virtual server, top-level and sub-servers."""
        return [*self.accounts.values(), *self.sub_servers.values()]

    def _get(self, domain: str) -> Account | None:
        return next((a for a in self.domains() if a.domain == domain), None)

    def _top_of(self, user: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.user == user), None)

    def add_sub_server(self, parent_domain: str, domain: str) -> Account:
        """A sub-server under a top-level server (same Unix user), as create-domain --parent makes."""
        parent = self._get(parent_domain)
        sub = Account(parent.user, domain, parent.plan, "", parent.password, ("dir", "web", "dns"),
                      parent=parent.domain)
        sub.id = f"{sub.created}{len(self.domains()) + 1:05d}"
        self.sub_servers[domain] = sub
        return sub

    def emailto(self, account: Account) -> str:
        """compute_emailto: what list-domains shows as the contact email."""
        if account.parent:
            return self.emailto(self._get(account.parent))
        if account.email:
            return account.email
        if "mail" in account.features:
            return f"{account.user}@{account.domain}"
        return f"{account.user}@{self.hostname}"

    def _plan_id(self, wanted: str) -> str | None:
        return next((i for i, name in self.plans.items() if wanted in (i, name)), None)

    @staticmethod
    def _take(queue: list[str]) -> str | None:
        """Perl's shift(@ARGV): the next argument, or undef."""
        return queue.pop(0) if queue else None

    # -- programs --------------------------------------------------------------------------
    def run_create_domain(self, args):
        queue, opts, flags = list(args), {}, set()
        while queue:
            arg = queue.pop(0)
            name = arg[2:] if arg.startswith("--") else None
            if name in ("domain", "desc", "pass", "template"):
                opts[name] = self._take(queue)
            elif name == "user":
                opts["user"] = (self._take(queue) or "").lower()
            elif name == "email":
                if queue and not queue[0].startswith("-"):
                    opts["email"] = queue.pop(0)
                    if not re.fullmatch(r"[^@\s]+@[^@\s]+", opts["email"]):
                        raise Usage("--email must be followed by a valid email address")
            elif name == "plan":
                plan_id = self._plan_id(self._take(queue) or "")
                if plan_id is None:
                    raise Usage("Unknown plan name")
                opts["plan"] = plan_id
            elif name in FEATURES:
                flags.add(name)
            elif name in ("default-features", "features-from-plan", "features-from-template",
                          "skip-warnings", "no-email", "limits-from-plan"):
                opts[name] = True
            else:
                raise Usage(f"Unknown parameter {arg}")
        plan = self.plans[opts.get("plan", "0")]
        if not opts.get("domain"):
            raise Usage("Missing domain name")
        if not opts.get("pass"):
            raise Usage("Missing password")
        domain = opts["domain"].lower()
        problem = self.domain_problem(domain)
        if problem:
            raise Usage(problem)
        if self._get(domain):
            raise Usage("You are already hosting this domain")
        user = self._username(domain, opts.get("user"))
        if opts.get("default-features") or opts.get("features-from-plan") \
                or opts.get("features-from-template"):
            features = DEFAULT_FEATURES
        else:
            features = tuple(f for f in FEATURES if f in flags)
        if not features:
            raise Usage("No virtual server features enabled")
        account = Account(user, domain, plan, opts.get("email") or "", opts["pass"], features)
        account.id = f"{account.created}{len(self.domains()) + 1:05d}"
        self.accounts[user] = account
        return (f"Beginning server creation ..\n\nCreating administration group {user} ..\n.. done\n\n"
                f"Creating administration user {user} ..\n.. done\n\nAll done!\n")

    @staticmethod
    def domain_problem(name: str) -> str:
        """domainname-lib.pl valid_domain_name (lang/en setup_edomain*)."""
        if name.startswith("*."):
            return ("A domain name cannot start with *. To create a wildcard domain, first create "
                    "it without the * and then go to Web Configuration ⇾ Website Options page")
        if not re.fullmatch(r"[A-Za-z0-9.\-_]+", name):
            return ("Domain names cannot include anything other than letters, numbers, dots, "
                    "and dashes")
        if name.startswith(".") or name.endswith("."):
            return "Domain names cannot start or end with a dot"
        if ".." in name:
            return "Domain names cannot contain consecutive dots"
        if name.lower().startswith("www."):
            return "The domain name does not need to have www at the start"
        if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", name):
            return "A domain name cannot be an IP address"
        return ""

    def _username(self, domain: str, wanted: str | None) -> str:
        taken = lambda name: name in self.system_users or self._top_of(name)  # noqa: E731
        if wanted:
            if not re.fullmatch(r"[^\s:/@&|%]+", wanted) or re.match(r"\d", wanted):
                raise Usage("Missing or invalid administrator username")
            if taken(wanted):
                raise Usage("The specified administration user already exists")
            return wanted
        try1 = domain.split(".")[0]
        if not taken(try1):
            return try1
        if not taken(domain):
            return domain
        raise Usage("A free automatically chosen administration username could not be found "
                    f"(both {try1} and {domain} already exist)")

    def run_disable_domain(self, args):
        opts = self._parse(args, {"domain", "why", "feature", "schedule"}, {"multiline", "subservers"})
        domain = (opts.get("domain") or "").lower()
        if not domain:
            raise Usage("No domain specified")
        account = self._get(domain)
        if account is None:
            raise Usage(f"Virtual server {domain} does not exist")
        if account.suspended:
            raise Usage(f"Virtual server {domain} is already disabled")
        account.suspended, account.why = True, opts.get("why") or ""
        return (f"Disabling virtual server {account.domain} ..\n\n"
                "Disabling website ..\n.. done\n\nAll done!\n")

    def run_enable_domain(self, args):
        opts = self._parse(args, {"domain"}, {"multiline", "subservers"})
        domain = (opts.get("domain") or "").lower()
        if not domain:
            raise Usage("No domain specified")
        account = self._get(domain)
        if account is None:
            raise Usage(f"Virtual server {domain} does not exist")
        if not account.suspended:
            raise Usage(f"Virtual server {domain} is not disabled")
        account.suspended, account.why = False, ""
        return (f"Enabling virtual server {account.domain} ..\n\n"
                "Re-enabling website ..\n.. done\n\nAll done!\n")

    @staticmethod
    def _parse(args: list[str], valued, flags) -> dict:
        """The usual argument loop: ``--name value`` or a flag, else "Unknown parameter"."""
        opts: dict = {}
        queue = list(args)
        while queue:
            arg = queue.pop(0)
            name = arg[2:] if arg.startswith("--") else None
            if name in valued:
                opts.setdefault(name + "[]", []).append(queue[0] if queue else None)
                opts[name] = queue.pop(0) if queue else None
            elif name in flags:
                opts[name] = True
            else:
                raise Usage(f"Unknown parameter {arg}")
        return opts

    def _by_names_users(self, domains, users) -> list[Account]:
        """get_domains_by_names_users: named domains, then each user's top-level server and subs."""
        found: list[Account] = []
        for name in dict.fromkeys(domains):
            account = self._get(name)
            if account is None:
                raise Usage(f"Virtual server {name} does not exist")
            found.append(account)
        for user in dict.fromkeys(users):
            top = self._top_of(user)
            if top is None:
                raise Usage(f"No top-level domain owned by {user} exists")
            found += [top, *(s for s in self.sub_servers.values() if s.parent == top.domain)]
        return list({id(a): a for a in found}.values())

    def run_delete_domain(self, args):
        opts = self._parse(args, {"domain", "user", "pre-command", "post-command"},
                           {"only", "preserve-remote", "multiline"})
        domains, users = opts.get("domain[]", []), opts.get("user[]", [])
        if not domains and not users:
            raise Usage("No users or domains specified")
        chosen = self._by_names_users(domains, users)
        chosen_domains = {a.domain for a in chosen}
        out = ""
        for account in [a for a in chosen if not a.parent or a.parent not in chosen_domains]:
            out += f"Deleting virtual server {account.domain} ..\n.. deleted\n\n"
            if account.parent:
                del self.sub_servers[account.domain]
                continue
            del self.accounts[account.user]
            for sub in [s for s in self.sub_servers.values() if s.parent == account.domain]:
                del self.sub_servers[sub.domain]
        return out

    def run_modify_domain(self, args):
        opts = self._parse(args, {"domain", "desc", "pass", "email", "plan", "apply-plan"},
                           {"skip-warnings"})
        domain = (opts.get("domain") or "").lower()
        if not domain:
            raise Usage("No domain specified")
        account = self._get(domain)
        if account is None:
            raise Usage(f"Virtual server {domain} does not exist.")
        wanted = opts.get("apply-plan") or opts.get("plan")
        plan_id = self._plan_id(wanted) if wanted else None  # an unknown plan is ignored
        if account.parent and opts.get("pass") is not None:
            raise Usage("The password cannot be changed for a sub-domain")
        if account.parent and plan_id is not None:
            raise Usage("--plan can only be used with top level virtual servers")
        email = opts.get("email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
            raise Usage(f"Invalid email address {email}")
        if opts.get("pass") is not None:
            account.password = opts["pass"]
        if email is not None:
            account.email = email
        if plan_id is not None:
            account.plan = self.plans[plan_id]
        return f"Updating virtual server {account.domain} ..\n\n.. done\n\nAll done\n"

    def run_list_domains(self, args):
        queue, mode = [], ""
        for arg in args:  # parse_common_cli_flags (commands-lib.pl l.345)
            if arg in ("--multiline", "--simple-multiline", "--name-only", "--id-only"):
                mode = mode if mode in ("--multiline", "--simple-multiline") else arg
            else:
                queue.append(arg)
        opts = self._parse(queue, {"domain", "user", "plan", "id"},
                           {"toplevel", "subserver", "disabled", "enabled", "user-only"})
        plan_id = None
        if opts.get("plan") is not None:
            plan_id = self._plan_id(opts["plan"])
            if plan_id is None:
                raise Usage(f"No plan with name or ID {opts['plan']} found")
        if opts.get("domain[]") or opts.get("user[]"):
            found = self._by_names_users(opts.get("domain[]", []), opts.get("user[]", []))
        else:
            found = self.domains()
        if plan_id is not None:
            found = [a for a in found if a.plan == self.plans[plan_id]]
        if opts.get("toplevel"):
            found = [a for a in found if not a.parent]
        if opts.get("subserver"):
            found = [a for a in found if a.parent]
        if opts.get("disabled"):
            found = [a for a in found if a.suspended]
        if opts.get("enabled"):
            found = [a for a in found if not a.suspended]
        found.sort(key=lambda a: (a.user, a.created))
        if mode in ("--multiline", "--simple-multiline"):
            return "".join(self._block(a) for a in found)
        if mode == "--name-only" or opts.get("user-only"):
            return "".join(f"{a.user if opts.get('user-only') else a.domain}\n" for a in found)
        if mode == "--id-only":
            return "".join(f"{a.id}\n" for a in found)
        fmt = "{:<30.30} {:<15.15} {:<30.30}\n"
        return (fmt.format("Domain", "Username", "Description") + fmt.format("-" * 30, "-" * 15, "-" * 30)
                + "".join(fmt.format(a.domain, a.user, a.domain) for a in found))

    def _block(self, a: Account) -> str:
        plan_id = self._plan_id(a.plan)
        lines = [a.domain, f"ID: {a.id}", f"File: /etc/webmin/virtual-server/domains/{a.id}",
                 "Type: " + ("Sub-server" if a.parent else "Top-level server")]
        if "web" in a.features:
            lines.append(f"URL: http://{a.domain}/")
        if a.parent:
            lines.append(f"Parent domain: {a.parent}")
        lines += [f"Description: {a.domain}", "Template ID: 0", "Template: Default Settings",
                  f"Plan ID: {plan_id}", f"Plan: {a.plan}", f"Username: {a.user}",
                  f"Group name: {a.user}", f"Mailbox username prefix: {a.user}",
                  "Password storage: Plain text", f"Password: {a.password}"]
        if "mysql" in a.features:
            lines += [f"Username for mysql: {a.user}", f"Password for mysql: {a.password}"]
        lines += [f"Home directory: /home/{a.user}" + (f"/domains/{a.domain}" if a.parent else ""),
                  f"Contact email: {self.emailto(a)}",
                  f"Created on: {time.strftime('%Y-%m-%d %H:%M', time.localtime(a.created))}",
                  f"Created Unix time: {a.created}"]
        if a.suspended:
            lines.append(f"Disabled: Manually ({a.why})" if a.why else "Disabled: Manually")
        lines += [f"Features: {' '.join(a.features)}", "Plugins: "]
        if not a.parent:
            lines += [line.strip() for line in self._usage_lines(a)]
        return f"{lines[0]}\n" + "".join(f"    {line}\n" for line in lines[1:])

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
        mode = next((a for a in args if a in ("--multiline", "--name-only", "--id-only")), "")
        opts = self._parse([a for a in args if a != mode], {"id", "name"}, set())
        plans = list(self.plans.items())
        if opts.get("id") is not None:
            plans = [(i, n) for i, n in plans if i == opts["id"]]
            if not plans:
                raise Usage(f"No plan with ID {opts['id']} was found")
        elif opts.get("name") is not None:
            plans = [(i, n) for i, n in plans if n == opts["name"]]
            if not plans:
                raise Usage(f"No plan with name {opts['name']} was found")
        if mode in ("--name-only", "--id-only"):
            return "".join(f"{n if mode == '--name-only' else i}\n" for i, n in plans)
        if mode == "--multiline":
            return "".join(f"{i}\n    Name: {n}\n    Server block quota: Unlimited\n"
                           "    Allowed features: Automatic\n" for i, n in plans)
        fmt = "{:<18.18} {:<40.40} {:<10.10} {:<8.8}\n"
        return (fmt.format("ID", "Name", "Quota", "Domains") + fmt.format("-" * 18, "-" * 40, "-" * 10, "-" * 8)
                + "".join(fmt.format(i, n, "Unlimited", "Unlimited") for i, n in plans))

    def run_create_login_link(self, args):
        opts = self._parse(args, {"domain", "user", "usermin-user", "lifetime"}, {"root"})
        if opts.get("lifetime") is not None and not str(opts["lifetime"]).isdigit():
            raise Usage("--lifetime must be followed by a number of seconds")
        if opts.get("domain"):
            account = self._get(opts["domain"])
            if account is None:
                raise Usage(f"No virtual server named {opts['domain']} found")
        elif opts.get("user"):
            account = self._top_of(opts["user"])
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
        self._parse([a for a in args if a not in ("--multiline", "--name-only")], set(),
                    {"short", "long"})
        names = sorted(USAGE)
        return "Virtual servers:\n" + "".join(f"  virtualmin {n}\n" for n in names)
