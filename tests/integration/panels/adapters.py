"""One adapter a panel folder: what the conformance suite (test_conformance.py) needs to know of
a panel to drive it and to read its side.

An adapter starts the panel's simulator (or sshd), registers it as a server with a product,
reads an account as the panel holds it (``state``), and makes the panel misbehave: refuse the
login, fail once with a 5xx, hold an account of the same name for another domain, lose the
answer to a create. What the panel answers then (task and words) is the adapter's data, taken
from the panel's playbooks and simulator. ``after(step, ctx)`` runs the panel's own extra
checks (``after_<step>`` methods) on the runs the suite makes anyway, so a panel-specific
assertion costs no ansible run of its own.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import types
import urllib.parse

from provisiond import catalog
from provisiond.sandbox.base import Response
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.sandbox.directadmin import DirectAdminSimulator
from provisiond.sandbox.hestia import HestiaSimulator
from provisiond.sandbox.opterius import OpteriusSimulator
from provisiond.sandbox.plesk import PleskSimulator
from provisiond.sandbox.virtualmin import DEFAULT_FEATURES, VirtualminSimulator
from tests.conftest import WHM_TOKEN
from tests.helpers import kept_texts

STRONG = "Squatter!Pass-42"   # the password of accounts made behind provisiond's back


@dataclasses.dataclass(frozen=True)
class Seen:
    """An account as the panel holds it."""
    domain: str
    suspended: bool
    package: str | None
    password: str | None


@dataclasses.dataclass(frozen=True)
class Refusal:
    """How a panel refuses: the failed task, the words of the message, the panel's own answer
    (quoted in panel_answer), and the words of a failed ``server test``."""
    task: str
    message: str
    answer: str | None = None
    health: str | None = None
    exact: bool = False   # the message is exactly these words


class Adapter:
    """The common part; a subclass fills in the panel's data and its reads."""

    panel = ""
    server_name = ""
    package, other_package = "basic", "pro"
    package_seen = "basic"   # how the panel shows the product's package
    product_config: dict = {}
    secrets: tuple[str, ...] = ()
    transient_words = "HTTP 503"
    lost_answer_skip: str | None = None   # why the panel has no lost-answer case of its own
    bad_login: Refusal
    taken: Refusal

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.sim = None

    # -- set up ----------------------------------------------------------------------------
    def start(self) -> contextlib.AbstractContextManager:
        raise NotImplementedError

    def credentials(self) -> dict:
        raise NotImplementedError

    def register(self, registry, vault):
        """Group 'web', the server, and product 'starter' on ``package``."""
        catalog.add_group("web")
        server = catalog.add_server(registry, vault, name=self.server_name, panel=self.panel,
                                    host=self.sim.host, port=self.sim.port, group_name="web",
                                    max_accounts=50, credentials=self.credentials())
        product = catalog.add_product(registry, name="starter", panel=self.panel, group_name="web",
                                      package=self.package, config=self.product_config or None)
        return server, product

    # -- the panel's side ------------------------------------------------------------------
    def state(self, user: str) -> Seen | None:
        raise NotImplementedError

    def count(self) -> int:
        """How many accounts the panel has."""
        return len(self.sim.accounts)

    def password_is(self, user: str, password: str) -> bool:
        return self.state(user).password == password

    def remote_id(self, user: str) -> str:
        return user

    def lost_remote_id(self, user: str) -> str:
        return self.remote_id(user)

    # -- misbehaviour ----------------------------------------------------------------------
    def wrong_credentials(self) -> dict:
        raise NotImplementedError

    def break_login(self, registry, vault) -> str:
        """Give the server credentials the panel refuses; returns the wrong secret."""
        wrong = self.wrong_credentials()
        catalog.update_server_credentials(registry, vault, catalog.server(self.server_name), wrong)
        return next(iter(wrong.values()))

    @contextlib.contextmanager
    def unavailable_once(self):
        """The next request is answered with a 5xx."""
        self.sim.fail_next(1, status=503)
        yield
        assert not self.sim._faults, "the run never reached the panel"

    def squat(self, user: str, domain: str) -> None:
        """An account ``user`` of ``domain``, made on the panel behind provisiond's back."""
        raise NotImplementedError

    def is_create(self, request) -> bool:
        raise NotImplementedError

    def lose_create_answers(self, monkeypatch):
        """Every create request is carried out, then its answer replaced by a 503 the first time
        (per path). Returns a function that lists what was lost: (request, real answer) pairs."""
        real, lost = self.sim.handle, []

        def lossy(request):
            answered = real(request)
            if self.is_create(request) and request.path not in [r.path for r, _ in lost]:
                lost.append((request, answered))
                return Response(503, b"Service Unavailable", "text/plain")
            return answered
        monkeypatch.setattr(self.sim, "handle", lossy)
        return lambda: list(lost)

    def lost_product(self, registry) -> str:
        """The product the lost-answer case orders."""
        return "starter"

    # -- panel-specific checks on the suite's own runs -------------------------------------
    def assert_kept_clean(self, row, *more: str) -> None:
        """No panel credential, nor any of ``more``, in the log row or its kept artifacts."""
        for text in kept_texts(row):
            assert not any(secret in text for secret in (*self.secrets, *more)), row.action

    def after(self, step: str, ctx: types.SimpleNamespace) -> None:
        check = getattr(self, "after_" + step.replace(" ", "_"), None)
        if check is not None:
            check(ctx)


class HttpAdapter(Adapter):
    simulator: type
    simulator_args: dict = {}

    def start(self):
        self.sim = self.simulator(**self.simulator_args)
        return self.sim


# -- cPanel (WHM API 1) ------------------------------------------------------------------------

class CpanelAdapter(HttpAdapter):
    panel, server_name, simulator = "cpanel", "whm1", WhmSimulator
    simulator_args = {"token": WHM_TOKEN}
    secrets = (WHM_TOKEN,)
    bad_login = Refusal("Look the account up (accountsummary)", "Access denied")
    taken = Refusal("Refuse an existing account of another domain",
                    "the account taken exists on the panel for elsewhere.example.com, not taken.example.com",
                    exact=True)

    def credentials(self):
        return {"api_token": WHM_TOKEN, "scheme": "http"}

    def wrong_credentials(self):
        return {"api_token": "wrong-token-123"}

    def state(self, user):
        a = self.sim.accounts.get(user)
        return a and Seen(a.domain, a.suspended, a.plan, a.password)

    def squat(self, user, domain):
        self.sim.op_createacct({"username": user, "domain": domain, "plan": "basic", "password": STRONG,
                                "contactemail": f"x@{domain}"})

    def is_create(self, request):
        return request.path.endswith("/createacct")

    def after_created(self, ctx):
        assert self.sim.accounts["shop"].email == "owner@shop.example.com"

    def after_suspend(self, ctx):
        assert self.sim.accounts["shop"].suspendreason == "overdue"

    def after_suspend_again(self, ctx):   # read first: already suspended, nothing to send
        assert len([r for r in self.sim.requests if r.path.endswith("/suspendacct")]) == 1

    def after_change_package(self, ctx):
        assert ctx.service.status_reason is None


# -- DirectAdmin (legacy CMD_API) --------------------------------------------------------------

DA_PASSWORD = "canary-da-password-4Hq8Wm"


class DirectAdminAdapter(HttpAdapter):
    panel, server_name, simulator = "directadmin", "da1", DirectAdminSimulator
    simulator_args = {"password": DA_PASSWORD}
    secrets = (DA_PASSWORD, base64.b64encode(f"admin:{DA_PASSWORD}".encode()).decode())
    bad_login = Refusal("List the accounts (CMD_API_SHOW_USERS)", "refused the login", "DirectAdmin Login",
                        "refused the login")
    taken = Refusal("Refuse an existing account of another domain",
                    "the account taken exists on the panel for elsewhere.example.com, not taken.example.com",
                    exact=True)

    def credentials(self):
        return {"password": DA_PASSWORD, "scheme": "http"}

    def wrong_credentials(self):
        return {"password": "wrong-password-123"}

    def state(self, user):
        a = self.sim.accounts.get(user)
        return a and Seen(a.domain, a.suspended, a.package, a.password)

    def squat(self, user, domain):
        self.sim.op_account_user({"action": "create", "add": "Submit", "username": user, "email": f"x@{domain}",
                                  "passwd": STRONG, "passwd2": STRONG, "domain": domain, "package": "basic",
                                  "ip": "shared"})

    def is_create(self, request):
        return request.path == "/CMD_API_ACCOUNT_USER"

    def after_created(self, ctx):
        account = self.sim.accounts["shop"]
        assert (account.email, account.ip) == ("owner@shop.example.com", "127.0.0.1")

    def mutations(self) -> list:
        return [r for r in self.sim.requests if r.path in ("/CMD_API_SELECT_USERS", "/CMD_API_MODIFY_USER")]

    def after_connected(self, ctx):
        assert ctx.report["reported"] == {"login": "Login OK"}

    def after_created_again(self, ctx):   # already on the package: nothing to change
        job = ctx.settle(ctx.request("change_package", package="basic"))
        assert job.status == "succeeded", job.last_error
        assert self.mutations() == []

    def after_suspend_again(self, ctx):   # DirectAdmin would refuse a second suspend: nothing is sent
        assert len([r for r in self.mutations() if r.path == "/CMD_API_SELECT_USERS"]) == 1

    def after_suspend(self, ctx):
        assert self.sim.accounts["shop"].suspend_reason == "billing"   # provisiond's overdue

    def after_unsuspend(self, ctx):
        assert not self.sim.accounts["shop"].suspend_reason

    def after_unsuspend_again(self, ctx):
        """Suspended for abuse, then changed while suspended: the account stays suspended."""
        first_password = ctx.vault.decrypt(ctx.service.password)
        steps = [("suspend", {"reason": "abuse"}, lambda a: a.suspended and a.suspend_reason == "other"),
                 ("change_package", {"package": "pro"}, lambda a: a.suspended and a.package == "pro"),
                 ("change_password", {}, lambda a: a.suspended and a.password != first_password)]
        for action, kwargs, on_panel in steps:
            job = ctx.settle(ctx.request(action, **kwargs))
            assert job.status == "succeeded", (action, job.last_error)
            assert job.service.status == "suspended", action
            assert on_panel(self.sim.accounts["shop"]), action
        service = type(ctx.service).get_by_id(ctx.service.id)
        assert service.package == "pro"
        assert ctx.vault.decrypt(service.password) == self.sim.accounts["shop"].password

    def after_refused_login(self, ctx):
        assert ctx.report["failed_task"] == "Log in (CMD_API_LOGIN_TEST)"


# -- HestiaCP (/api/ v-* commands, billing key) ------------------------------------------------

ACCESS_KEY = "PROVISIONDACCESS0001"
HESTIA_SECRET = "canary-hestia-secret-5Rt8Yv-0123456789ab"  # 40 characters, as v-add-access-key makes
BILLING = {"v-add-user", "v-delete-user", "v-suspend-user", "v-unsuspend-user", "v-change-user-shell",
           "v-list-user", "v-list-users", "v-make-tmp-file", "v-add-domain", "v-change-user-package",
           "v-change-user-password"}  # hestiacp/hestiacp install/common/api/billing


def hestia_commands(sim: HestiaSimulator) -> list[str]:
    """The v-* commands the simulator was asked to run, in order."""
    return [dict(urllib.parse.parse_qsl(r.body.decode())).get("cmd", "") for r in sim.requests]


class HestiaAdapter(HttpAdapter):
    panel, server_name, simulator = "hestia", "hst1", HestiaSimulator
    simulator_args = {"access_key": ACCESS_KEY, "secret_key": HESTIA_SECRET, "permissions": "billing",
                      "packages": {"basic": {}, "pro": {}, "tiny": {"DISK_QUOTA": 10}}}
    secrets = (HESTIA_SECRET,)
    bad_login = Refusal("Look the user up (v-list-user)", f"HTTP 401: Error: Invalid secret key for key {ACCESS_KEY}",
                        f"Error: Invalid secret key for key {ACCESS_KEY}", "Invalid secret key")
    taken = Refusal("Refuse an existing user that is not this service's",
                    "the account taken exists on the panel as 'elsewhere.example.com' <x@elsewhere.example.com>, "
                    "not taken.example.com <owner@taken.example.com>")

    def credentials(self):
        return {"access_key": ACCESS_KEY, "secret_key": HESTIA_SECRET, "scheme": "http"}

    def wrong_credentials(self):
        return {"secret_key": "wrong-secret-" + "x" * 27}

    def state(self, user):
        a = self.sim.accounts.get(user)
        return a and Seen(a.name, a.suspended, a.package, a.password)

    def squat(self, user, domain):
        self.sim.run("v-add-user", [user, STRONG, f"x@{domain}", "basic", domain])
        self.sim.run("v-add-domain", [user, domain])

    def is_create(self, request):
        return b"cmd=v-add-user" in request.body

    def after_created(self, ctx):
        account = self.sim.accounts["shop"]
        assert (account.domains, account.dns_domains, account.mail_domains) == (
            ["shop.example.com"], ["shop.example.com"], ["shop.example.com"])
        assert account.email == "owner@shop.example.com"

    def after_created_again(self, ctx):
        assert hestia_commands(self.sim).count("v-add-user") == 1

    def after_connected(self, ctx):
        assert ctx.report["reported"] == {"users": 1}  # the admin

    def after_terminate_again(self, ctx):
        # The billing key was enough: every command sent is in the preset, none was refused.
        sent = hestia_commands(self.sim)
        assert set(sent) <= BILLING
        assert "v-add-domain" in sent and "v-add-web-domain" not in sent

    def after_lost(self, ctx):
        assert self.sim.accounts["lost"].domains == ["lost.example.com"]


# -- Plesk (REST API v2 and XML API) -----------------------------------------------------------

PLESK_KEY = "canary-plesk-key-4Hn8Wq1Zt"
PLESK_IP = "203.0.113.10"


def plesk_calls(plesk: PleskSimulator, method: str, suffix: str) -> list:
    return [r for r in plesk.requests if r.method == method and r.path.endswith(suffix)]


class PleskAdapter(HttpAdapter):
    panel, server_name, simulator = "plesk", "plesk1", PleskSimulator
    simulator_args = {"api_key": PLESK_KEY, "plans": ("basic", "pro"), "ip_addresses": (PLESK_IP,)}
    secrets = (PLESK_KEY,)
    bad_login = Refusal("List the customers (GET /clients)", "HTTP 401: Authentication failed",
                        health="Authentication failed")
    taken = Refusal("Refuse a customer of this login that is not this service's",
                    "the customer taken exists on the panel with elsewhere.example.com")

    def credentials(self):
        return {"api_key": PLESK_KEY, "scheme": "http"}

    def wrong_credentials(self):
        return {"api_key": "wrong-key-123"}

    def state(self, user):
        c = self.sim.accounts.get(user)
        return c and Seen(c.domain, c.suspended, c.plan, c.password)

    def remote_id(self, user):
        return str(self.sim.accounts[user].id)

    def squat(self, user, domain, external_id="", plan="basic"):
        status, _ = self.sim.op_create_client(None, {"name": user, "login": user, "password": STRONG,
                                                     "email": f"{user}@example.org", "type": "customer",
                                                     "external_id": external_id})
        assert status == 201
        if domain:
            status, _ = self.sim.op_create_domain(None, {
                "name": domain, "hosting_type": "virtual", "owner_client": {"login": user},
                "hosting_settings": {"ftp_login": user, "ftp_password": STRONG},
                "ip_addresses": [PLESK_IP], "plan": {"name": plan}})
            assert status == 201
        self.squatted_id = self.sim.accounts[user].id

    def is_create(self, request):
        return request.method == "POST" and request.path.endswith(("/clients", "/domains"))

    def after_created(self, ctx):
        customer, subscription = self.sim.accounts["shop"], self.sim.subscriptions["shop.example.com"]
        assert (customer.email, customer.external_id, customer.type) == ("owner@shop.example.com", "INV-100",
                                                                         "customer")
        assert (subscription.owner_login, subscription.plan, subscription.ftp_login) == ("shop", "basic", "shop")
        assert subscription.ip_addresses == [PLESK_IP] and subscription.status == "active"
        assert subscription.ftp_password == customer.password

    def after_suspend(self, ctx):
        assert self.sim.subscriptions["shop.example.com"].status == "suspended"

    def after_unsuspend(self, ctx):
        assert self.sim.accounts["shop"].status == 0
        assert self.sim.subscriptions["shop.example.com"].status == "active"

    def after_connected(self, ctx):
        assert ctx.report["reported"] == {"version": self.sim.panel_version}

    def add_site(self, name: str, **ref) -> None:
        """An additional domain (base_domain=) or a subdomain (parent_domain=), behind provisiond's back."""
        status, _ = self.sim.op_create_domain(None, {"name": name, "hosting_type": "virtual", **ref})
        assert status == 201

    def after_unsuspend_again(self, ctx):
        # The customer added a domain and a subdomain to the subscription: they are not
        # subscriptions, so this is its last one, and the customer goes with it at terminate.
        self.add_site("shop.example.net", base_domain={"name": "shop.example.com"})
        self.add_site("blog.shop.example.com", parent_domain={"name": "shop.example.com"})

    def after_terminate(self, ctx):
        assert self.sim.accounts == {} and self.sim.subscriptions == {} and self.sim.sites == {}

    def after_change_password(self, ctx):
        # the subscription's system user (FTP, SSH) got it too, through PUT /domains/{id}
        new_password = self.sim.accounts["shop"].password
        subscription = self.sim.subscriptions["shop.example.com"]
        assert subscription.ftp_password == new_password
        assert [json.loads(r.body) for r in plesk_calls(self.sim, "PUT", f"/domains/{subscription.id}")][-1] == {
            "hosting_settings": {"ftp_login": "shop", "ftp_password": new_password}}

    def after_change_package(self, ctx):
        assert ctx.service.status_reason is None

    def after_refused_login(self, ctx):
        assert json.loads(ctx.log.panel_answer)["message"] in self.bad_login.message

    def after_refused_taken(self, ctx):
        assert self.sim.accounts["taken"].id == self.squatted_id

    def after_lost(self, ctx):
        assert [(r.path.rsplit("/", 1)[1], a.status) for r, a in ctx.lost] == [("clients", 201), ("domains", 201)]
        assert self.sim.subscriptions["lost.example.com"].owner_login == "lost"


# -- Opterius (provisioning API v1, Bearer key) ------------------------------------------------

OPTERIUS_KEY = "opt_canaryOpteriusKey" + "x" * 27


class OpteriusAdapter(HttpAdapter):
    panel, server_name, simulator = "opterius", "opt1", OpteriusSimulator
    simulator_args = {"api_key": OPTERIUS_KEY, "packages": ("basic", "pro")}
    secrets = (OPTERIUS_KEY,)
    bad_login = Refusal("Look the account up (POST /api/v1/accounts/usage)", "HTTP 401: Invalid API key.",
                        "Invalid API key.", "HTTP 401: Invalid API key.", exact=True)
    taken = Refusal("Refuse an existing account of another domain",
                    "the account taken exists on the panel for elsewhere.example.com, not taken.example.com",
                    exact=True)

    def credentials(self):
        return {"api_key": OPTERIUS_KEY, "scheme": "http"}

    def wrong_credentials(self):
        return {"api_key": "opt_wrong-key-that-was-revoked"}

    def state(self, user):
        a = self.sim.accounts.get(user)
        if a is None:
            return None
        # The first password is the panel login's (users, by email); accounts/password sets the system one.
        login = self.sim.users.get(a.owner_email)
        password = a.system_password or (login and login.password)
        return Seen(a.domain, a.suspended, a.package, password)

    def remote_id(self, user):
        return str(self.sim.accounts[user].id)

    def lost_remote_id(self, user):
        return user   # the panel's id was in the lost answer; the API addresses accounts by username

    def squat(self, user, domain):
        self.sim.add_account(user, domain)

    def is_create(self, request):
        return request.path.endswith("/create")

    def paths(self) -> list[str]:
        return [r.path for r in self.sim.requests]

    def after_created(self, ctx):
        user = self.sim.users["owner@shop.example.com"]
        assert user.name == "owner"   # client_name: the email's local part
        assert self.sim.accounts["shop"].owner_email == "owner@shop.example.com"

    def after_created_again(self, ctx):
        assert self.paths().count("/api/v1/accounts/create") == 1

    def after_suspend(self, ctx):
        assert self.sim.accounts["shop"].suspend_reason == "overdue"

    def after_connected(self, ctx):
        from provisiond import actions
        assert ctx.report["reported"] == {"version": "2.8.14"}
        server = catalog.server(self.server_name)
        listed = actions.run(ctx.settings, ctx.vault, ctx.registry, action="list_packages", server=server)
        assert listed == {"packages": ["basic", "pro"]}

    def after_unsuspend_again(self, ctx):
        # The repeats were sent and their 200 "Account is already ..." counted as done.
        assert [p for p in self.paths() if p.endswith("suspend")] == [
            "/api/v1/accounts/suspend", "/api/v1/accounts/suspend",
            "/api/v1/accounts/unsuspend", "/api/v1/accounts/unsuspend"]

    def after_terminate_again(self, ctx):
        assert self.paths().count("/api/v1/accounts/terminate") == 1   # gone: nothing to send
        # Every call carried the key as a Bearer header and asked for JSON; none was HMAC-signed.
        assert {r.headers.get("authorization") for r in self.sim.requests} == {f"Bearer {OPTERIUS_KEY}"}
        assert {r.headers.get("accept") for r in self.sim.requests} == {"application/json"}
        assert not any("x-signature" in r.headers for r in self.sim.requests)

    def after_refused_login(self, ctx):
        assert "/api/v1/accounts/create" not in self.paths()

    def after_refused_taken(self, ctx):
        assert "/api/v1/accounts/create" not in self.paths()

    def after_lost(self, ctx):
        assert list(self.sim.accounts) == ["lost"]
        assert self.paths().count("/api/v1/accounts/create") == 1


# -- Virtualmin (remote.cgi, JSON) -------------------------------------------------------------

VM_PASSWORD = "canary-webmin-pass-8Tz3Kd"


class VirtualminAdapter(HttpAdapter):
    panel, server_name, simulator = "virtualmin", "vm1", VirtualminSimulator
    simulator_args = {"username": "root", "password": VM_PASSWORD, "plans": ("basic", "pro")}
    secrets = (VM_PASSWORD, base64.b64encode(f"root:{VM_PASSWORD}".encode()).decode(), STRONG)
    bad_login = Refusal("Look the domain up (list-domains)", "the panel refused the login", "Unauthorized",
                        "refused the login")
    taken = Refusal("Create the virtual server (create-domain)", "The specified administration user already exists")

    def credentials(self):
        return {"password": VM_PASSWORD, "scheme": "http"}

    def wrong_credentials(self):
        return {"password": "wrong-pass-123"}

    def state(self, user):
        a = self.sim.accounts.get(user)
        return a and Seen(a.domain, a.suspended, a.plan, a.password)

    def remote_id(self, user):
        return self.sim.accounts[user].id

    def squat(self, user, domain):
        self.sim.run_create_domain(["--domain", domain, "--user", user, "--pass", STRONG, "--plan", "basic",
                                    "--features-from-plan"])
        self.squatted = dict(self.sim.accounts)

    def is_create(self, request):
        return request.form().get("program") == "create-domain"

    def programs(self) -> list[str]:
        return [r.form().get("program") for r in self.sim.requests]

    def lost_product(self, registry):
        catalog.add_product(registry, name="lean", panel="virtualmin", group_name="web", package="basic",
                            config={"features": "unix dir web"})
        return "lean"

    def after_created(self, ctx):
        account = self.sim.accounts["shop"]
        assert account.email == "owner@shop.example.com"
        assert account.features == DEFAULT_FEATURES  # the plan's features

    def after_created_again(self, ctx):
        assert self.programs().count("create-domain") == 1

    def after_suspend(self, ctx):
        assert self.sim.accounts["shop"].why == "overdue"

    def after_change_package(self, ctx):
        assert ctx.service.status_reason is None

    def after_terminate_again(self, ctx):
        # Passwords go in POST bodies, never in a URL a web server would log.
        assert not any("pass" in r.query for r in self.sim.requests)

    def after_refused_taken(self, ctx):
        assert json.loads(ctx.log.panel_answer)["error"] == self.taken.message
        assert self.sim.accounts == self.squatted

    def after_lost(self, ctx):
        assert [json.loads(answer.body)["status"] for _, answer in ctx.lost] == ["success"]
        assert self.sim.accounts["lost"].features == ("unix", "dir", "web")  # the product's, not the plan's


def http_adapters() -> dict[str, type[Adapter]]:
    return {a.panel: a for a in (CpanelAdapter, DirectAdminAdapter, HestiaAdapter, PleskAdapter,
                                 OpteriusAdapter, VirtualminAdapter)}


def all_adapters() -> dict[str, type[Adapter]]:
    """Every panel folder's adapter, by panel id."""
    from tests.integration.panels.ssh_adapters import CloudPanelAdapter, LinuxAdapter
    return {**http_adapters(), "cloudpanel": CloudPanelAdapter, "linux": LinuxAdapter}
