"""The Plesk XML API calls provisiond makes (two reads and create_session), for the Plesk simulator.

``POST /enterprise/control/agent.php``, ``Content-Type: text/xml``, authenticated by a secret key
in the ``KEY`` header (or ``HTTP_AUTH_LOGIN`` / ``HTTP_AUTH_PASSWD`` as admin). Sources:

- transport, packet and ``KEY`` header:
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/xml-api-packets/packet-structure.28722 ,
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/xml-api-packets/a-sample-packet.50169 ,
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/reference/managing-secret-keys.37121
- ``<webspace><get>`` with the ``<subscriptions/>`` dataset, whose ``plan-guid`` is the
  subscription's service plan (and its add-on plans'):
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/reference/managing-subscriptions/getting-information-about-subscriptions.33899/ ,
  https://docs.plesk.com/en-US/onyx/api-rpc/about-xml-api/reference/managing-subscriptions/subscription-settings/subscription-statuses-and-associated-plans.66383 ;
  and the ``<gen_info/>`` dataset (``cr_date``, ``name``, ``ascii-name``, ``status`` — 0 active,
  16 disabled by the administrator —, ``real_size``, ``owner-id``, ``owner-login``, ``htype``,
  ``guid``): https://docs.plesk.com/en-US/onyx/api-rpc/reference/managing-subscriptions/subscription-settings/general-subscription-information/node-gen_info-type-domaingeninfotype.33856/ .
- the ``<limits/>`` dataset (``overuse`` and ``limit`` items of ``name`` / ``value``; the
  subscription limits ``disk_space`` and ``max_traffic`` are in bytes, -1 unlimited):
  https://docs.plesk.com/en-US/onyx/api-rpc/about-xml-api/reference/managing-service-plans/service-plan-settings/limits.66453 ,
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/reference/managing-subscriptions/retrieving-descriptor-of-limits.40131 ;
  the ``<stat/>`` dataset (domainStat: ``traffic`` — bytes spent this month —, ``subdom``, ``wu``,
  ``box`` — mailboxes —, ``redir``, ``mg``, ``resp``, ``maillists``, ``db`` — databases —,
  ``webapps``, ``traffic_prevday``, all required):
  https://docs.plesk.com/en-US/obsidian/api-rpc/reference/managing-subscriptions-webspaces/subscription-settings/statistics-settings.33885 .
  The simulator answers the datasets asked for in a fixed order (gen_info, limits, stat,
  subscriptions; the playbooks read them by element name, not position). ``real_size`` is the
  subscription's actual size in bytes (gen_info page below).
  The filter is by ``<name>``, or blank (``<filter/>``) for every subscription the caller may see
  (https://docs.plesk.com/en-US/obsidian/api-rpc/reference/managing-subscriptions-webspaces/available-filters.33891 ;
  "blank filters to retrieve information about all their subscriptions in a single operation",
  https://docs.plesk.com/en-US/onyx/api-rpc/reference/managing-subscriptions.33852). A result
  of a blank filter carries no ``filter-id``.
- ``<service-plan><get>`` filtered by ``<name>`` (or blank: every plan), answering each plan's
  ``guid`` and ``name``:
  https://docs.plesk.com/en-US/onyx/api-rpc/reference/managing-service-plans/getting-information-on-service-plans.32915 ,
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/reference/managing-service-plans/available-filters.32907
- ``<server><create_session>`` (the one-time login link, issue 10): ``login`` and
  ``data/user_ip`` (plain text or base64) and ``data/source_server`` required, answering
  ``<result><status>ok</status><id>TOKEN</id></result>``; the browser then opens
  ``https://HOST:8443/enterprise/rsession_init.php?PLESKSESSID=TOKEN``, once, from ``user_ip``:
  https://docs.plesk.com/en-US/obsidian/api-rpc/reference/managing-plesk-server/creating-session-tokens.73865 ,
  https://docs.plesk.com/en-US/obsidian/administrator-guide/plesk-administration/automatic-logging-in-to-plesk.80002/ .
  ``sim.sessions`` maps each token to ``(login, ip)``. The text for an unknown login is
  *unverified* (``NO_SUCH_USER``).

The XML API answers HTTP 200 whatever happens: a failed operation is a ``<result>`` with
``<status>error</status>``, ``<errcode>`` and ``<errtext>`` (1013: object not found); a refused
login is ``<system><status>error</status><errcode>1001</errcode>`` for the whole packet.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import secrets
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from provisiond.sandbox.base import Request, Response

PATH = "/enterprise/control/agent.php"
VERSION = "1.6.9.1"
NOT_FOUND = 1013
NO_SUCH_USER = "User does not exist"  # *unverified*


def handle(sim, request: Request) -> Response:
    """Answer one packet; ``sim`` is the PleskSimulator (its lock is held)."""
    if request.method != "POST":
        return _packet(_system_error(1002, "Method not allowed: the XML API takes POST only."))
    if not _authorized(sim, request.headers):
        return _packet(_system_error(1001, "Authentication failed - wrong password."))
    try:
        root = ET.fromstring(request.body or b"")
    except ET.ParseError as exc:
        return _packet(_system_error(1014, f"Parser error: Request is invalid. {exc}"))
    if root.tag != "packet":
        return _packet(_system_error(1014, "Parser error: Request is invalid. The root node must be packet."))
    parts = []
    for operator in root:
        answer = OPERATORS.get((operator.tag, tuple(op.tag for op in operator)))
        if answer is None:
            return _packet(_system_error(1014, f"Parser error: Request is invalid. Unsupported "
                                               f"operator or operation <{operator.tag}>."))
        parts.append(answer(sim, operator[0]))
    return _packet("".join(parts))


def _authorized(sim, headers: dict[str, str]) -> bool:
    if "key" in headers:
        return hmac.compare_digest(headers["key"].encode(), sim.api_key.encode())
    if sim.admin_password is None or headers.get("http_auth_login") != "admin":
        return False
    return hmac.compare_digest(headers.get("http_auth_passwd", "").encode(), sim.admin_password.encode())


def _blank(get) -> bool:
    """A ``<filter/>`` with nothing in it: every object the caller may see."""
    found = get.find("filter")
    return found is not None and len(found) == 0


def _webspace_get(sim, get) -> str:
    if _blank(get):
        wanted = [(None, sub) for sub in sim.subscriptions.values()]
    else:
        wanted = [(n.text or "", sim.subscriptions.get((n.text or "").lower())) for n in get.findall("filter/name")]
    results = []
    for name, sub in wanted:
        if sub is None:
            results.append(_error(name, NOT_FOUND, "webspace does not exist"))
            continue
        data = _gen_info(sim, sub) if get.find("dataset/gen_info") is not None else ""
        if get.find("dataset/limits") is not None:
            data += ("<limits><overuse>normal</overuse>"
                     f"<limit><name>disk_space</name><value>{sub.disk_space}</value></limit>"
                     f"<limit><name>max_traffic</name><value>{sub.max_traffic}</value></limit>"
                     "<limit><name>max_box</name><value>-1</value></limit>"
                     "<limit><name>max_db</name><value>-1</value></limit></limits>")
        if get.find("dataset/stat") is not None:
            data += (f"<stat><traffic>{sub.traffic}</traffic><subdom>0</subdom><wu>0</wu>"
                     f"<box>{sub.mailboxes}</box><redir>0</redir><mg>0</mg><resp>0</resp>"
                     f"<maillists>0</maillists><db>{sub.databases}</db><webapps>0</webapps>"
                     "<traffic_prevday>0</traffic_prevday></stat>")
        if get.find("dataset/subscriptions") is not None:
            guid = sim.plan_guids.get(sub.plan) if sub.plan else None
            plan = f"<plan><plan-guid>{guid}</plan-guid></plan>" if guid else ""
            data += ("<subscriptions><subscription><locked>false</locked>"
                     f"<synchronized>false</synchronized>{plan}</subscription></subscriptions>")
        filter_id = "" if name is None else f"<filter-id>{escape(name)}</filter-id>"
        results.append(f"<result><status>ok</status>{filter_id}<id>{sub.id}</id><data>{data}</data></result>")
    return f"<webspace><get>{''.join(results)}</get></webspace>"


SUBSCRIPTION_STATUS = {"active": 0, "suspended": 16, "disabled": 16}  # objectStatus codes


def _gen_info(sim, sub) -> str:
    owner = sim.accounts.get(sub.owner_login) if sub.owner_login else None
    owner_id, owner_login = (owner.id, owner.login) if owner else (1, "admin")
    return (f"<gen_info><cr_date>{sub.created}</cr_date><name>{escape(sub.name)}</name>"
            f"<ascii-name>{escape(sub.name)}</ascii-name><status>{SUBSCRIPTION_STATUS[sub.status]}</status>"
            f"<real_size>{sub.real_size}</real_size><owner-id>{owner_id}</owner-id>"
            f"<owner-login>{escape(owner_login)}</owner-login>"
            f"<dns_ip_address>{sub.ip_addresses[0] if sub.ip_addresses else ''}</dns_ip_address>"
            f"<htype>vrt_hst</htype><guid>{sub.guid}</guid><description>{escape(sub.description)}</description>"
            "</gen_info>")


def _service_plan_get(sim, get) -> str:
    names = sorted(sim.plan_guids) if _blank(get) else [n.text or "" for n in get.findall("filter/name")]
    results = []
    for name in names:
        if name not in sim.plan_guids:
            results.append(_error(name, NOT_FOUND, "service plan does not exist"))
            continue
        filter_id = "" if _blank(get) else f"<filter-id>{escape(name)}</filter-id>"
        results.append(f"<result><status>ok</status>{filter_id}"
                       f"<id>{sorted(sim.plans).index(name) + 1}</id>"
                       f"<guid>{sim.plan_guids[name]}</guid><name>{escape(name)}</name></result>")
    return f"<service-plan><get>{''.join(results)}</get></service-plan>"


def _create_session(sim, create) -> str:
    login, user_ip = create.findtext("login"), create.findtext("data/user_ip")
    if login is None or user_ip is None or create.find("data/source_server") is None:
        return _system_error(1014, "Parser error: Request is invalid. Element 'create_session': "
                                   "Missing child element(s). Expected is ( login, data/user_ip, "
                                   "data/source_server ).")
    ip = _ip(user_ip.strip())
    if ip is None:
        return _operation("server", "create_session", _failed(1014, f"Invalid user_ip: {user_ip}"))
    if login not in sim.accounts:
        return _operation("server", "create_session", _failed(NOT_FOUND, NO_SUCH_USER))
    token = secrets.token_hex(16)
    sim.sessions[token] = (login, ip)
    return _operation("server", "create_session", f"<result><status>ok</status><id>{token}</id></result>")


def _ip(text: str) -> str | None:
    """user_ip is plain text or base64 (both documented)."""
    for candidate in (text, _b64(text)):
        try:
            return str(ipaddress.ip_address(candidate or ""))
        except ValueError:
            continue
    return None


def _b64(text: str) -> str | None:
    try:
        return base64.b64decode(text, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _operation(operator: str, operation: str, inner: str) -> str:
    return f"<{operator}><{operation}>{inner}</{operation}></{operator}>"


OPERATORS = {("webspace", ("get",)): _webspace_get, ("service-plan", ("get",)): _service_plan_get,
             ("server", ("create_session",)): _create_session}


def _error(filter_id: str, code: int, text: str) -> str:
    return (f"<result><status>error</status><errcode>{code}</errcode><errtext>{escape(text)}</errtext>"
            f"<filter-id>{escape(filter_id)}</filter-id></result>")


def _failed(code: int, text: str) -> str:
    return f"<result><status>error</status><errcode>{code}</errcode><errtext>{escape(text)}</errtext></result>"


def _system_error(code: int, text: str) -> str:
    return f"<system><status>error</status><errcode>{code}</errcode><errtext>{escape(text)}</errtext></system>"


def _packet(inner: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<packet version="{VERSION}">{inner}</packet>'
    return Response(200, body.encode(), "text/xml")
