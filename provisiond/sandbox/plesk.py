"""A strict Plesk simulator: REST API v2, its CLI gate and the XML API calls provisiond uses.

Sources, per endpoint (the vendor's words decide where shared/panels/plesk.md differs):

- REST API v2 in general (base ``/api/v2``, ``X-API-Key`` or Basic auth, JSON, failures as HTTP
  status with ``{"code", "message"}``): https://docs.plesk.com/en-US/obsidian/api-rpc/about-rest-api.79359/
  and the OpenAPI 3 specification Plesk ships at ``https://HOST:8443/api/v2/swagger.yml`` (as
  generated into github.com/Team-Nifty-GmbH/plesk-sdk, ``src/Requests``, ``src/Dto``).
- ``GET /server``, ``GET /server/ips``: plesk-sdk ``src/Requests/Server/ServerMetaInformation.php``,
  ``ServerIpAddresses.php``.
- ``GET|POST /clients``, ``GET|PUT|DELETE /clients/{id}``, ``PUT /clients/{id}/suspend|activate``:
  plesk-sdk ``src/Requests/Clients/*.php``.
- ``GET /clients/{id}/domains``: plesk-sdk ``ListOfClientDomains.php``. It lists *every* domain
  of the customer: the main domain of each subscription (``base_domain_id`` 0), the additional
  domains added to a subscription and the subdomains (``base_domain_id`` = the subscription's
  main domain), as the XML API's ``customer get-domain-list`` documents ("domains, subdomains, and
  domain aliases", https://docs.plesk.com/en-US/onyx/api-rpc/reference/managing-customer-accounts/retrieving-the-list-of-customers-domains.75309/
  and its ``main`` / ``parent-id`` fields, https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/reference/managing-plesk-server/getting-server-information/response-packet-structure-and-samples/list-of-domains.75294).
- ``GET|POST /domains``, ``GET|PUT|DELETE /domains/{id}``, ``GET /domains/{id}/client``,
  ``GET|PUT /domains/{id}/status``: plesk-sdk ``src/Requests/Domains/*.php`` (``DomainResponse``:
  ``id, name, ascii_name, hosting_type, base_domain_id, www_root, guid, created``, no plan;
  ``UpdateDomain``: ``hosting_settings`` ``ftp_login`` / ``ftp_password``, the subscription's
  system user). Deleting a subscription's main domain removes the subscription with its
  additional domains and subdomains.
- ``POST /cli/{command}/call`` (HTTP 200, ``{"code","stdout","stderr"}``, ``code`` = the utility's
  exit code, 0 success / 1 failure with the reason on stderr): plesk-sdk ``src/Requests/Cli``;
  https://docs.plesk.com/current/cli-linux/getting-started-with-command-line-utilities.37894/ ;
  ``subscription --webspace-off|--webspace-on|--switch-subscription ... -service-plan`` from
  https://docs.plesk.com/en-US/onyx/cli-linux/using-command-line-utilities/subscription-subscriptions.37768
  (the simulator's ``--info`` prints no plan: the page documents no such output line).
- ``POST /enterprise/control/agent.php`` (XML API, ``KEY`` header = a secret key, which is what
  ``POST /api/v2/auth/keys`` makes): see provisiond.sandbox.plesk_xml.

Suspending a customer does not change its subscriptions' own status (the simulator does not
guess at cascading). Texts the contract marks *unverified* (duplicate-login message, CLI output)
are module constants or constructor options.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import re
import time
import uuid

from provisiond.sandbox import plesk_xml
from provisiond.sandbox.base import PanelSimulator, Request, Response

API = "/api/v2"
CLIENT_STATUSES = {0: "active", 16: "disabled by admin", 4: "under backup/restore", 256: "expired"}
CLIENT_FIELDS = {"name", "company", "login", "status", "email", "locale", "owner_login",
                 "external_id", "description", "password", "type"}
DOMAIN_FIELDS = {"name", "description", "hosting_type", "hosting_settings", "base_domain",
                 "parent_domain", "owner_client", "ip_addresses", "ipv4", "ipv6", "plan"}
LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,59}$")
# A subscription's system user on Linux: "only lowercase English letters, numbers, - (dash), and
# . (dot) are allowed. The first character is limited to letters", 1 to 32 symbols
# (https://support.plesk.com/hc/en-us/articles/213395409). So `_`, which a customer login may
# hold, is refused here.
SYSUSER_PATTERN = re.compile(r"^[a-z][a-z0-9.-]{0,31}$")
DOMAIN_PATTERN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DUPLICATE_LOGIN = "Account with this name already exists"  # the OpenAPI example; *unverified*
WEAK_PASSWORD = ("The password is too weak: use at least 8 characters mixing lower- and upper-case "
                 "letters, digits and symbols, and do not include the login.")


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


@dataclasses.dataclass
class Subscription:
    id: int
    name: str
    owner_login: str | None
    plan: str | None
    ftp_login: str
    ftp_password: str
    ip_addresses: list[str]
    hosting_type: str = "virtual"
    status: str = "active"  # active | suspended | disabled
    description: str = ""
    guid: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    created: str = dataclasses.field(default_factory=_today)
    # What the XML API's webspace get reports (plesk_xml): bytes, counts, limits in bytes (-1 unlimited).
    real_size: int = 0
    traffic: int = 0
    mailboxes: int = 0
    databases: int = 0
    disk_space: int = -1
    max_traffic: int = -1

    @property
    def suspended(self) -> bool:
        return self.status != "active"

    base_domain_id = 0  # a subscription's main domain

    def view(self) -> dict:
        return _domain_view(self, f"/var/www/vhosts/{self.name}/httpdocs")


@dataclasses.dataclass
class Site:
    """An additional domain or a subdomain inside a subscription (``base_domain_id`` = its main
    domain's id); it has no system user or plan of its own."""

    id: int
    name: str
    subscription: Subscription
    parent: str | None = None  # the parent domain's name, for a subdomain
    hosting_type: str = "virtual"
    description: str = ""
    guid: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    created: str = dataclasses.field(default_factory=_today)

    @property
    def base_domain_id(self) -> int:
        return self.subscription.id

    def view(self) -> dict:
        return _domain_view(self, f"/var/www/vhosts/{self.subscription.name}/{self.name}")


def _domain_view(domain, www_root: str) -> dict:
    return {"id": domain.id, "name": domain.name, "ascii_name": domain.name,
            "hosting_type": domain.hosting_type, "base_domain_id": domain.base_domain_id,
            "www_root": www_root, "guid": domain.guid, "created": domain.created}


@dataclasses.dataclass
class Customer:
    id: int
    login: str
    name: str
    email: str
    password: str
    type: str = "customer"
    external_id: str = ""
    company: str = ""
    description: str = ""
    locale: str = "en-US"
    status: int = 0
    guid: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    created: str = dataclasses.field(default_factory=_today)
    subscriptions: list[Subscription] = dataclasses.field(default_factory=list)

    # what tests and playbook assertions look at -------------------------------------------
    @property
    def user(self) -> str:
        return self.login

    @property
    def suspended(self) -> bool:
        return self.status == 16

    @property
    def domain(self) -> str:
        return self.subscriptions[0].name if self.subscriptions else ""

    @property
    def plan(self) -> str | None:
        return self.subscriptions[0].plan if self.subscriptions else None

    def view(self) -> dict:
        return {"id": self.id, "created": self.created, "name": self.name, "company": self.company,
                "login": self.login, "status": self.status, "email": self.email,
                "locale": self.locale, "guid": self.guid, "owner_login": "admin",
                "external_id": self.external_id, "description": self.description, "type": self.type}


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class PleskSimulator(PanelSimulator):
    """``PleskSimulator(api_key="k", plans={"basic"})``; ``sim.accounts`` maps login → Customer."""

    panel = "plesk"

    def __init__(self, api_key: str = "sandbox-key", plans=("basic", "pro", "business"),
                 ip_addresses=("127.0.0.1",), admin_password: str | None = None,
                 duplicate_login_message: str = DUPLICATE_LOGIN, panel_version: str = "18.0.61",
                 **kwargs):
        super().__init__(**kwargs)
        self.api_key = api_key
        self.plans = set(plans)
        self.ip_addresses = list(ip_addresses)
        self.admin_password = admin_password
        self.duplicate_login_message = duplicate_login_message
        self.panel_version = panel_version
        self.accounts: dict[str, Customer] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.sites: dict[str, Site] = {}  # additional domains and subdomains, by name
        self.sessions: dict[str, tuple[str, str]] = {}  # XML API create_session: token -> (login, ip)
        self.plan_guids = {plan: str(uuid.uuid4()) for plan in self.plans}
        self._next_client_id = 2  # 1 is the administrator
        self._next_domain_id = 1

    # -- wire ------------------------------------------------------------------------------
    ROUTES = [
        ("GET", r"/server", "server"), ("GET", r"/server/ips", "server_ips"),
        ("GET", r"/clients", "list_clients"), ("POST", r"/clients", "create_client"),
        ("GET", r"/clients/(\d+)", "get_client"), ("PUT", r"/clients/(\d+)", "update_client"),
        ("DELETE", r"/clients/(\d+)", "delete_client"),
        ("GET", r"/clients/(\d+)/domains", "client_domains"),
        ("PUT", r"/clients/(\d+)/suspend", "suspend_client"),
        ("PUT", r"/clients/(\d+)/activate", "activate_client"),
        ("GET", r"/domains", "list_domains"), ("POST", r"/domains", "create_domain"),
        ("GET", r"/domains/(\d+)", "get_domain"), ("PUT", r"/domains/(\d+)", "update_domain"),
        ("DELETE", r"/domains/(\d+)", "delete_domain"),
        ("GET", r"/domains/(\d+)/client", "domain_client"),
        ("GET", r"/domains/(\d+)/status", "get_domain_status"),
        ("PUT", r"/domains/(\d+)/status", "set_domain_status"),
        ("GET", r"/cli/commands", "cli_commands"),
        ("POST", r"/cli/([a-z_]+)/call", "cli_call"),
    ]

    def handle(self, request: Request) -> Response:
        if request.path == plesk_xml.PATH:
            with self.lock:
                return plesk_xml.handle(self, request)
        if not self._authorized(request.headers):
            return self._error(401, "Authentication failed")
        if not request.path.startswith(API + "/"):
            return self._error(404, "Not found")
        path = request.path[len(API):].rstrip("/") or "/"
        matched_path = False
        for method, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if not match:
                continue
            matched_path = True
            if method != request.method:
                continue
            try:
                body = self._json_body(request) if request.body else None
                with self.lock:
                    status, data = getattr(self, f"op_{name}")(request, body, *match.groups())
            except HttpError as exc:
                return self._error(exc.status, exc.message)
            return Response(status, json.dumps(data).encode())
        return self._error(405 if matched_path else 404,
                           "Method not allowed" if matched_path else "Not found")

    def _authorized(self, headers: dict[str, str]) -> bool:
        if "x-api-key" in headers:
            return hmac.compare_digest(headers["x-api-key"].encode(), self.api_key.encode())
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if self.admin_password is None or scheme.lower() != "basic":
            return False
        try:
            return hmac.compare_digest(base64.b64decode(encoded), f"admin:{self.admin_password}".encode())
        except ValueError:  # not base64
            return False

    @staticmethod
    def _error(status: int, message: str) -> Response:
        return Response(status, json.dumps({"code": status, "message": message}).encode())

    @staticmethod
    def _json_body(request: Request):
        if "application/json" not in request.headers.get("content-type", ""):
            raise HttpError(400, "Request body must be JSON (Content-Type: application/json)")
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise HttpError(400, "Invalid JSON in request body") from None
        return body

    # -- lookups ---------------------------------------------------------------------------
    def _client(self, client_id) -> Customer:
        for customer in self.accounts.values():
            if customer.id == int(client_id):
                return customer
        raise HttpError(404, "Client is not found")

    def _domain(self, domain_id) -> Subscription | Site:
        for domain in self._all_domains():
            if domain.id == int(domain_id):
                return domain
        raise HttpError(404, "Domain is not found")

    def _all_domains(self) -> list:
        """Every domain on the server, each subscription's main domain first, then its others."""
        return [d for sub in self.subscriptions.values() for d in (sub, *self._sites_of(sub))]

    def _sites_of(self, sub: Subscription) -> list[Site]:
        return [site for site in self.sites.values() if site.subscription is sub]

    @staticmethod
    def _subscription_of(domain) -> Subscription:
        return domain if isinstance(domain, Subscription) else domain.subscription

    def _check_password(self, password, login: str) -> None:
        if not isinstance(password, str) or not password:
            raise HttpError(400, "password: This value should not be blank.")
        classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z\d]"))
        if len(password) < 8 or classes < 3 or (login and login.lower() in password.lower()):
            raise HttpError(400, WEAK_PASSWORD)

    # -- server ----------------------------------------------------------------------------
    def op_server(self, request, body):
        return 200, {"platform": "Unix", "hostname": "plesk.sandbox.test",
                     "guid": "00000000-0000-4000-8000-000000000000",
                     "panel_version": self.panel_version, "panel_revision": "sandbox",
                     "panel_build_date": "2024-01-01", "panel_update_version": "1",
                     "extension_version": "1.1.0", "extension_release": "1"}

    def op_server_ips(self, request, body):
        return 200, [{"ipv4": ip, "ipv6": "", "netmask": "255.255.255.0", "interface": "eth0",
                      "type": "shared"} for ip in self.ip_addresses]

    # -- clients ---------------------------------------------------------------------------
    def op_list_clients(self, request, body):
        return 200, [c.view() for c in self.accounts.values()]

    def op_get_client(self, request, body, client_id):
        return 200, self._client(client_id).view()

    def op_client_domains(self, request, body, client_id):
        customer = self._client(client_id)
        return 200, [d.view() for d in self._all_domains()
                     if self._subscription_of(d).owner_login == customer.login]

    def op_create_client(self, request, body):
        if not isinstance(body, dict):
            raise HttpError(400, "Request body must be a JSON object")
        unknown = sorted(set(body) - CLIENT_FIELDS)
        if unknown:
            raise HttpError(400, f"Unknown fields: {', '.join(unknown)}")
        for field in ("name", "login", "password", "email", "type"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise HttpError(400, f"{field}: This value should not be blank.")
        login = body["login"]
        if body["type"] not in ("customer", "reseller"):
            raise HttpError(400, "type: The value you selected is not a valid choice.")
        if not LOGIN_PATTERN.match(login):
            raise HttpError(400, "login: The login may contain only lower-case letters, digits, "
                                 "dots, dashes, underscores and @, 1 to 60 characters.")
        if len(body["name"]) > 60:
            raise HttpError(400, "name: This value is too long. It should have 60 characters or less.")
        if not EMAIL_PATTERN.match(body["email"]):
            raise HttpError(400, "email: This value is not a valid email address.")
        if login in self.accounts:
            raise HttpError(400, self.duplicate_login_message)
        self._check_password(body["password"], login)
        customer = Customer(id=self._next_client_id, login=login, name=body["name"],
                            email=body["email"], password=body["password"], type=body["type"],
                            external_id=str(body.get("external_id") or ""),
                            company=str(body.get("company") or ""),
                            description=str(body.get("description") or ""))
        self._next_client_id += 1
        self.accounts[login] = customer
        return 201, {"id": customer.id, "guid": customer.guid}

    def op_update_client(self, request, body, client_id):
        customer = self._client(client_id)
        if not isinstance(body, dict) or not body:
            raise HttpError(400, "Request body must be a non-empty JSON object")
        unknown = sorted(set(body) - (CLIENT_FIELDS - {"type"}))
        if unknown:
            raise HttpError(400, f"Unknown fields: {', '.join(unknown)}")
        login = body.get("login", customer.login)
        if login != customer.login:
            if not isinstance(login, str) or not LOGIN_PATTERN.match(login):
                raise HttpError(400, "login: This value is not valid.")
            if login in self.accounts:
                raise HttpError(400, self.duplicate_login_message)
        if "password" in body:
            self._check_password(body["password"], login)
        if "email" in body and not (isinstance(body["email"], str) and EMAIL_PATTERN.match(body["email"])):
            raise HttpError(400, "email: This value is not a valid email address.")
        if "status" in body and body["status"] not in CLIENT_STATUSES:
            raise HttpError(400, "status: The value you selected is not a valid choice.")
        for field in ("name", "company", "email", "locale", "external_id", "description",
                      "password", "status"):
            if field in body:
                setattr(customer, field, body[field])
        if login != customer.login:
            del self.accounts[customer.login]
            customer.login = login
            self.accounts[login] = customer
            for sub in customer.subscriptions:
                sub.owner_login = login
        return 200, {"id": customer.id, "guid": customer.guid}

    def op_delete_client(self, request, body, client_id):
        customer = self._client(client_id)
        for sub in list(customer.subscriptions):
            self._remove_subscription(sub)
        del self.accounts[customer.login]
        return 200, {"id": customer.id, "guid": customer.guid}

    def op_suspend_client(self, request, body, client_id):
        self._client(client_id).status = 16
        return 200, {"status": "success"}

    def op_activate_client(self, request, body, client_id):
        self._client(client_id).status = 0
        return 200, {"status": "success"}

    # -- domains (subscriptions) -----------------------------------------------------------
    def op_list_domains(self, request, body):
        domains = self._all_domains()
        if "name" in request.query:
            domains = [d for d in domains if d.name == request.query["name"].lower()]
        return 200, [d.view() for d in domains]

    def op_get_domain(self, request, body, domain_id):
        return 200, self._domain(domain_id).view()

    def op_domain_client(self, request, body, domain_id):
        sub = self._subscription_of(self._domain(domain_id))
        if sub.owner_login is None:
            raise HttpError(404, "Client is not found")
        return 200, self.accounts[sub.owner_login].view()

    def op_get_domain_status(self, request, body, domain_id):
        return 200, {"status": self._subscription_of(self._domain(domain_id)).status}

    def op_set_domain_status(self, request, body, domain_id):
        sub = self._subscription_of(self._domain(domain_id))
        status = body.get("status") if isinstance(body, dict) else None
        if status not in ("active", "suspended", "disabled"):
            raise HttpError(400, "status: The value you selected is not a valid choice.")
        sub.status = status
        return 200, {"status": status}

    def op_delete_domain(self, request, body, domain_id):
        """A subscription's main domain takes the subscription with it, sites and all."""
        domain = self._domain(domain_id)
        if isinstance(domain, Site):
            del self.sites[domain.name]
        else:
            self._remove_subscription(domain)
        return 200, {"id": domain.id, "guid": domain.guid}

    def _remove_subscription(self, sub: Subscription) -> None:
        for site in self._sites_of(sub):
            del self.sites[site.name]
        del self.subscriptions[sub.name]
        if sub.owner_login in self.accounts:
            self.accounts[sub.owner_login].subscriptions.remove(sub)

    def op_update_domain(self, request, body, domain_id):
        """``PUT /domains/{id}``: the system user (``hosting_settings``) and the description."""
        domain = self._domain(domain_id)
        if not isinstance(body, dict) or not body:
            raise HttpError(400, "Request body must be a non-empty JSON object")
        unknown = sorted(set(body) - {"description", "hosting_settings"})
        if unknown:
            raise HttpError(400, f"Unknown fields: {', '.join(unknown)}")
        if "hosting_settings" in body:
            if not isinstance(domain, Subscription):
                raise HttpError(400, "hosting_settings: the system user belongs to the subscription's "
                                     "main domain.")
            login, password = self._system_user(body["hosting_settings"], domain)
            domain.ftp_login, domain.ftp_password = login, password
        if "description" in body:
            domain.description = str(body["description"])
        return 200, {"id": domain.id, "guid": domain.guid}

    def _system_user(self, settings, sub: Subscription | None = None) -> tuple[str, str]:
        if not isinstance(settings, dict):
            raise HttpError(400, "hosting_settings: ftp_login and ftp_password are required for "
                                 "virtual hosting.")
        ftp_login, ftp_password = settings.get("ftp_login"), settings.get("ftp_password")
        if not isinstance(ftp_login, str) or not SYSUSER_PATTERN.match(ftp_login):
            raise HttpError(400, "hosting_settings.ftp_login: This value is not a valid system "
                                 "user name.")
        if any(s.ftp_login == ftp_login for s in self.subscriptions.values() if s is not sub):
            raise HttpError(400, f"System user '{ftp_login}' already exists.")
        self._check_password(ftp_password, ftp_login)
        return ftp_login, ftp_password

    def op_create_domain(self, request, body):
        if not isinstance(body, dict):
            raise HttpError(400, "Request body must be a JSON object")
        unknown = sorted(set(body) - DOMAIN_FIELDS)
        if unknown:
            raise HttpError(400, f"Unknown fields: {', '.join(unknown)}")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise HttpError(400, "name: This value should not be blank.")
        name = name.lower()
        if not DOMAIN_PATTERN.match(name):
            raise HttpError(400, f"name: '{name}' is not a valid domain name.")
        if name in self.subscriptions or name in self.sites:
            raise HttpError(400, f"Domain with the name '{name}' already exists.")
        if body.get("base_domain") or body.get("parent_domain"):
            return self._create_site(name, body)
        if body.get("hosting_type") != "virtual":
            raise HttpError(400, "hosting_type: This simulator only provides 'virtual' hosting "
                                 "(subscriptions with physical hosting).")
        owner = self._owner(body.get("owner_client"))
        plan = self._plan(body.get("plan"))
        ips = body.get("ip_addresses")
        if not isinstance(ips, list) or not ips or not all(isinstance(i, str) for i in ips):
            raise HttpError(400, "ip_addresses: At least one IP address of the server is required.")
        for ip in ips:
            if ip not in self.ip_addresses:
                raise HttpError(400, f"IP address {ip} is not in the server's IP pool.")
        ftp_login, ftp_password = self._system_user(body.get("hosting_settings"))
        sub = Subscription(id=self._next_domain_id, name=name,
                           owner_login=owner.login if owner else None, plan=plan,
                           ftp_login=ftp_login, ftp_password=ftp_password, ip_addresses=list(ips))
        self._next_domain_id += 1
        self.subscriptions[name] = sub
        if owner:
            owner.subscriptions.append(sub)
        return 201, {"id": sub.id, "guid": sub.guid}

    def _create_site(self, name: str, body: dict):
        """An additional domain (``base_domain``) or a subdomain (``parent_domain``)."""
        ref = body.get("parent_domain") or body.get("base_domain")
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
            raise HttpError(400, "base_domain: This value is not valid.")
        parent = next((d for d in self._all_domains() if d.name == ref["name"].lower()), None)
        if parent is None:
            raise HttpError(400, f"Domain '{ref['name']}' is not found.")
        if body.get("parent_domain") and not name.endswith("." + parent.name):
            raise HttpError(400, f"name: '{name}' is not a subdomain of '{parent.name}'.")
        site = Site(id=self._next_domain_id, name=name, subscription=self._subscription_of(parent),
                    parent=parent.name if body.get("parent_domain") else None)
        self._next_domain_id += 1
        self.sites[name] = site
        return 201, {"id": site.id, "guid": site.guid}

    def _owner(self, ref) -> Customer | None:
        if ref is None:
            return None  # owned by the administrator
        if not isinstance(ref, dict) or not ref or not set(ref) <= {"id", "login", "guid", "external_id"}:
            raise HttpError(400, "owner_client: This value is not valid.")
        for customer in self.accounts.values():
            if all(str(getattr(customer, key)) == str(value) for key, value in ref.items()):
                return customer
        raise HttpError(400, "owner_client: Client is not found.")

    def _plan(self, ref) -> str | None:
        if ref is None:
            return None
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
            raise HttpError(400, "plan: This value is not valid.")
        if ref["name"] not in self.plans:
            raise HttpError(400, f"Service plan '{ref['name']}' does not exist.")
        return ref["name"]

    # -- CLI gate --------------------------------------------------------------------------
    def op_cli_commands(self, request, body):
        return 200, ["service_plan", "subscription"]

    def op_cli_call(self, request, body, command):
        if command not in ("subscription", "service_plan"):
            raise HttpError(404, "Command is not found")
        body = body if body is not None else {}
        params = body.get("params", []) if isinstance(body, dict) else None
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise HttpError(400, "params: This value should be a list of strings.")
        code, stdout, stderr = getattr(self, f"cli_{command}")(params)
        return 200, {"code": code, "stdout": stdout, "stderr": stderr}

    def cli_service_plan(self, params):
        if params == ["--list"]:
            return 0, "".join(f"{p}\n" for p in sorted(self.plans)), ""
        return 1, "", f"Unknown option or wrong arguments: {' '.join(params)}\n"

    def cli_subscription(self, params):
        if len(params) < 2:
            return 1, "", "An option and a subscription name are required.\n"
        option, name, rest = params[0], params[1].lower(), params[2:]
        if option not in ("--webspace-off", "--webspace-on", "--info", "--switch-subscription"):
            return 1, "", f"Unknown option: {option}\n"
        sub = self.subscriptions.get(name)
        if option == "--switch-subscription":
            if len(rest) != 2 or rest[0] != "-service-plan":
                return 1, "", "Usage: --switch-subscription <name> -service-plan <plan>\n"
        elif rest:
            return 1, "", f"Unexpected arguments: {' '.join(rest)}\n"
        if sub is None:
            return 1, "", f"Unable to find subscription '{name}': object not found.\n"
        if option == "--info":
            owner = sub.owner_login or "admin"
            # No plan line: the subscription utility's page documents none (issue 10).
            return 0, (f"General\n=============================\nDomain name:        {sub.name}\n"
                       f"Owner's login:      {owner}\nStatus:             {sub.status}\n"
                       f"FTP login:          {sub.ftp_login}\n"), ""
        if option == "--switch-subscription":
            if rest[1] not in self.plans:
                return 1, "", f"Unable to find service plan '{rest[1]}'.\n"
            sub.plan = rest[1]
            return 0, f"SUCCESS: The subscription '{name}' was switched to the plan '{rest[1]}'.\n", ""
        sub.status = "suspended" if option == "--webspace-off" else "active"
        return 0, f"SUCCESS: Update of subscription '{name}' completed.\n", ""
